"""This machine for the benchmarks: which precisions run here, its measured peak FLOP/s, and
the work (GFLOP) of one item of each speed goal, so a figure can be read as a fraction of peak.

- **Precisions**: bf16 sides run only where the CPU computes bf16 natively (or
  ``SEGMENTKIT_CAPABILITIES=bf16=on`` forces it, to measure emulated bf16); elsewhere
  ``precision="bf16"`` is refused at load, so the benchmarks leave those sides out.
- **Peak**: the best rate of a 2048^3 ``torch.mm`` over a few seconds at the benchmarks'
  thread count: the *measured* matrix-product peak of this CPU, in fp32 (and bf16 where it is
  native). It is below the datasheet peak (cores x clock x FLOP per cycle), which no real
  kernel reaches; the note states which was used.
- **Work**: counted by ``torch.utils.flop_counter.FlopCounterMode`` on segmentkit's own path
  for one item (one tracked frame, one click, one image), with oneDNN's fused linear forced
  off so that every product is an ATen op the counter sees.

    python bench/_machine.py [--threads 2]   # prints one JSON object: peak and work per goal
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

CACHE = Path("/tmp/segmentkit-bench-weights")


def precisions() -> tuple[str, ...]:
    """The precisions segmentkit loads in on this CPU: bf16 only where it is native (or forced)."""
    from segmentkit.capabilities import native_bf16

    return ("fp32", "bf16") if native_bf16("cpu") else ("fp32",)


def skipped_precisions_note() -> str:
    """One line saying which sides a benchmark leaves out here, and why (empty if none)."""
    if "bf16" in precisions():
        return ""
    return ("note: no bf16 sides: this CPU has no AVX512-BF16 or AMX, so precision='bf16' is refused "
            "(SEGMENTKIT_CAPABILITIES=bf16=on measures emulated bf16)")


def peak_gflops(dtype: Any, seconds: float = 3.0, size: int = 2048) -> float:
    """Best GFLOP/s of ``size``^3 matrix products in ``dtype`` over about ``seconds``."""
    import torch

    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    torch.mm(a, b)
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def counted_gflop(fn) -> float:
    """GFLOP of one call of ``fn`` as torch's flop counter sees it (fused linears forced off)."""
    from segmentkit.testing.pytest_plugin import capabilities_forced
    from torch.utils.flop_counter import FlopCounterMode

    with capabilities_forced(onednn_linear=False):
        counter = FlopCounterMode(display=False)
        with counter:
            fn()
    return counter.get_total_flops() / 1e9


def work() -> dict[str, float]:
    """GFLOP per item of each goal whose model can be built here (EdgeTAM's checkpoint is built
    by bench/edgetam.py in the reference venv: counted once it exists)."""
    import numpy as np
    import segmentkit as sk
    from sam2_image import build_weights

    found: dict[str, float] = {}
    with_fp32 = {"precision": "fp32"}
    image = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    prompter = sk.load("sam2.1-hiera-tiny", weights=build_weights("tiny", CACHE / "tiny"), **with_fp32)
    embedding = prompter.embed(image)
    found["sam2 click"] = counted_gflop(lambda: prompter.predict(embedding, [sk.Point(400, 300), sk.Point(900, 500)]))
    edgetam = CACHE / "edgetam"
    if (edgetam / "config.json").exists():
        from sam2_video import clip

        tracker = sk.load("edgetam", role="tracker", weights=edgetam, **with_fp32)
        frames = clip(3, 360, 640)

        def track() -> None:
            with tracker.start(frames) as session:
                session.add_prompts(0, 1, [sk.Point(190, 160)])
                list(session.propagate())

        found["edgetam tracked frame"] = counted_gflop(track) / len(frames)
    from fixed_label import build_mask2former

    m2f = sk.load("mask2former-swin-tiny-coco-panoptic",
                  weights=build_mask2former(Path("/tmp/segmentkit-bench-fixed-label") / "mask2former-swin-tiny"))
    for width, height in ((640, 480), (1920, 1080)):
        street = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
        found[f"mask2former panoptic {width}x{height}"] = counted_gflop(
            lambda s=street: m2f.segment(s, task="panoptic"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    peak = {"fp32": peak_gflops(torch.float32)}
    if "bf16" in precisions():
        peak["bf16"] = peak_gflops(torch.bfloat16)
    print(json.dumps({"threads": args.threads, "peak_gflops": peak, "gflop_per_item": work()}))


if __name__ == "__main__":
    main()
