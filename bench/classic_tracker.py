"""Benchmark: the weightless ``classic`` tracker against re-prompting every frame.

A synthetic ellipse crosses a striped background (with a look-alike blob of its colour)
at ``--size``; the tracker gets one box on frame 0 and propagates. The reference is the
classic *prompter* run on every frame from the object's true box (an oracle no tracker
has). Frames/s of both, their ratio (reference time / tracker time) and each one's mean
and lowest mask IoU against the true masks are printed, with the load average.

    python bench/classic_tracker.py [--frames 30] [--size 360x640]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import segmentkit as sk
from segmentkit.testing.scenes import synthetic_scene


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", default="360x640", help="HxW")
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    step = 0.5 * w / args.frames
    scenes = [synthetic_scene((h, w), center=(0.28 * w + step * i, 0.47 * h + 0.1 * step * i), seed=i,
                              distractor=True) for i in range(args.frames)]
    tracker = sk.load("classic", role="tracker")
    prompter = sk.load("classic", role="prompter")

    start = time.perf_counter()
    with tracker.start([s.image for s in scenes]) as session:
        session.add_prompts(0, 1, [sk.Box(*scenes[0].box)])
        tracked = [iou(fm.masks.masks[0], scenes[fm.frame_index].mask) for fm in session.propagate()]
    tracker_s = time.perf_counter() - start

    start = time.perf_counter()
    oracle = [iou(prompter.predict(prompter.embed(s.image), [sk.Box(*s.box)]).masks[0], s.mask) for s in scenes]
    oracle_s = time.perf_counter() - start

    n = args.frames
    print(f"{n} frames {w}x{h}, load average {os.getloadavg()[0]:.1f}")
    print(f"classic tracker (one box on frame 0): {n / tracker_s:.2f} frames/s, "
          f"IoU mean {np.mean(tracked):.3f} min {min(tracked):.3f}")
    print(f"prompter on every frame from the true box: {n / oracle_s:.2f} frames/s, "
          f"IoU mean {np.mean(oracle):.3f} min {min(oracle):.3f}")
    print(f"tracker speed vs re-prompting: {oracle_s / tracker_s:.2f}x")


if __name__ == "__main__":
    main()
