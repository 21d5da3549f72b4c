"""What this machine can run fast: CPU features, native bf16, and the fast paths' probes.

A fast path (a fused oneDNN kernel, bf16 arithmetic) runs only where a capability says it
works on this device and dtype, never because an operator merely exists: CPUs differ between
machines (an AMD Zen 3 has no bf16 instructions, and torch's private oneDNN linear fails
there for every shape). Each probe runs once per process, on a tiny input, and is cached.

``precision="auto"`` (the default of :class:`~segmentkit.cards.ModelOptions`) is resolved
here for every face: bf16 where the device computes it natively (a CPU with AVX512-BF16 or
AMX, a CUDA GPU with bf16), fp32 elsewhere. An explicit ``precision="bf16"`` on a device
without native bf16 is refused: emulated bf16 runs several times slower than fp32.

``SEGMENTKIT_CAPABILITIES`` forces capabilities on or off, for debugging and for tests that
cover a fallback on any machine: ``bf16=off,onednn_linear=off`` (``bf16=on`` runs bf16 paths
through torch's public ops on a CPU without native bf16, slowly but correctly).

Torch-free at import: torch is imported by the functions that need it.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import OptionsError

log = logging.getLogger(__name__)

ENV = "SEGMENTKIT_CAPABILITIES"
AUTO = "auto"
BF16 = "bf16"
# CPU flags (as Linux's /proc/cpuinfo names them) that decide which paths run well.
CPU_FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def forced() -> dict[str, bool]:
    """Capabilities forced by ``SEGMENTKIT_CAPABILITIES`` (``name=on|off``, comma-separated)."""
    return _parse_forced(os.environ.get(ENV, ""))


@functools.cache
def _parse_forced(text: str) -> dict[str, bool]:
    values = {"on": True, "1": True, "true": True, "off": False, "0": False, "false": False}
    out: dict[str, bool] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if value.strip().lower() not in values:
            raise OptionsError(f"{ENV}: {item!r} is not NAME=on or NAME=off")
        out[name.strip()] = values[value.strip().lower()]
    return out


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux's /proc/cpuinfo; elsewhere what torch reports)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return _torch_cpu_flags()


def _torch_cpu_flags() -> frozenset[str]:
    try:
        import torch
    except ImportError:
        return frozenset()
    probes = {"avx2": "_is_avx2_supported", "avx512f": "_is_avx512_supported",
              "avx512_bf16": "_is_avx512_bf16_supported", "amx_bf16": "_is_amx_tile_supported"}
    return frozenset(flag for flag, name in probes.items() if getattr(torch.cpu, name, lambda: False)())


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (``lscpu``'s), or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def native_bf16(device: str) -> bool:
    """Whether ``device`` computes bf16 natively (``SEGMENTKIT_CAPABILITIES`` may force it)."""
    override = forced().get(BF16)
    if override is not None:
        return override
    kind = device.split(":")[0]
    if kind == "cpu":
        return cpu_native_bf16()
    if kind == "cuda":
        return _cuda_bf16()
    return False  # MPS and others: not measured, so fp32


def cpu_native_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX), whatever is forced."""
    return any(flag in cpu_flags() for flag in NATIVE_BF16_CPU_FLAGS)


def _cuda_bf16() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def probe(name: str, check: Callable[[], bool], *, variant: str = "") -> bool:
    """Whether the fast path ``name`` runs here: ``check()`` once per process and ``variant``
    (e.g. a dtype); an exception counts as no. ``SEGMENTKIT_CAPABILITIES`` may force it."""
    override = forced().get(name)
    if override is not None:
        return override
    return _probed(name, variant, check)


_RESULTS: dict[tuple[str, str], bool] = {}


def _probed(name: str, variant: str, check: Callable[[], bool]) -> bool:
    key = (name, variant)
    if key not in _RESULTS:
        try:
            _RESULTS[key] = bool(check())
        except Exception as exc:  # a fast path that fails here is off, whatever the reason
            log.debug("fast path %s[%s] is off: %s", name, variant, exc)
            _RESULTS[key] = False
        log.debug("fast path %s[%s]: %s", name, variant, "on" if _RESULTS[key] else "off")
    return _RESULTS[key]


def probed() -> dict[str, bool]:
    """Every probe run in this process so far, as ``name/variant`` -> result."""
    return {f"{name}/{variant}" if variant else name: ok for (name, variant), ok in sorted(_RESULTS.items())}


def resolve_precision(requested: str, allowed: Sequence[str], device: str, runtime: str, model_id: str) -> str:
    """The concrete precision for ``requested`` on ``device``: ``"auto"`` becomes bf16 where
    ``allowed`` has it, the runtime is torch and the device computes bf16 natively, else fp32
    (or the first allowed); an explicit bf16 without native bf16 is an :class:`OptionsError`."""
    if requested == AUTO:
        if BF16 in allowed and runtime == "torch" and native_bf16(device):
            return BF16
        return "fp32" if "fp32" in allowed else allowed[0]
    if requested not in allowed:
        raise OptionsError(f"{model_id!r} supports precision {', '.join(allowed)} here, not {requested!r}")
    if requested == BF16 and runtime == "torch" and not native_bf16(device):
        raise OptionsError(
            f"{model_id!r}: precision 'bf16' needs native bf16 arithmetic, and {_describe(device)} has none "
            f"(on a CPU: AVX512-BF16 or AMX; emulated bf16 is several times slower than fp32). Use "
            f"precision 'auto' or 'fp32', or set {ENV}=bf16=on to run bf16 anyway (slowly)"
        )
    return requested


def _describe(device: str) -> str:
    if device.split(":")[0] != "cpu":
        return f"device {device!r}"
    flags = cpu_flags()
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"this CPU ({cpu_model()}, {vector})"
