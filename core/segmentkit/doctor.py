"""What ``segmentkit doctor`` reports: the CPU and its features, the torch build, the devices,
which fast paths run here (probed now), and what ``precision="auto"`` resolves to per model.

Imports torch (to probe), unlike ``segmentkit models``; nothing is loaded.
"""

from __future__ import annotations

import importlib.util
import platform
from typing import Any

from . import capabilities
from .devices import resolve_device


def report(registry: Any) -> dict[str, Any]:
    """A JSON-able report for ``registry``'s installed models on this machine."""
    flags = capabilities.cpu_flags()
    has_torch = importlib.util.find_spec("torch") is not None
    device = resolve_device("auto", "torch" if has_torch else "numpy")
    return {
        "cpu": {"model": capabilities.cpu_model(), "machine": platform.machine(),
                "features": {flag: flag in flags for flag in capabilities.CPU_FLAGS_OF_INTEREST},
                "native_bf16": capabilities.cpu_native_bf16()},
        "torch": _torch() if has_torch else None,
        "forced": capabilities.forced(),
        "fast_paths": _fast_paths() if has_torch else {},
        "device": device,
        "models": [_auto_precision(info.card, device) for info in registry.models()],
    }


def _torch() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    return {"version": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(), "mkldnn": torch.backends.mkldnn.is_available(),
            "cuda": torch.version.cuda if cuda else None,
            "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
            "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())}


def _fast_paths() -> dict[str, bool]:
    import torch

    from .runtime.fused_linear import onednn_linear_runs

    for dtype in (torch.float32, torch.bfloat16):
        onednn_linear_runs(dtype)
    return {**capabilities.probed(), "bf16": capabilities.native_bf16("cpu")}


def _auto_precision(card: Any, device: str) -> dict[str, Any]:
    runtime = card.runtimes[0]
    model_device = device if runtime != "numpy" else "cpu"
    auto = capabilities.resolve_precision("auto", card.precisions, model_device, runtime, card.id)
    return {"id": card.id, "precisions": list(card.precisions), "auto": auto}
