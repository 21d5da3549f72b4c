"""Benchmark: `segmentkit batch` throughput (images/s), local engine and Ray, same set and model.

Measured in one run, on one generated set of seeded scenes (PNG), with the same model
(default ``classic``, automatic masks):

- reference: a plain loop in this process, ``model.segment(load_image(path))`` per image,
  no records, no hashing, no fsync (what a script without ``batch`` would do);
- local engine, 1 worker (in process) and 2 workers (processes);
- Ray engine, 2 actors: with the Ray start counted (what ``--engine ray`` costs from a
  cold command line) and on a Ray already running (the steady rate).

Every engine run writes into a fresh folder, so nothing is skipped. Wall-clock times
include model loading and pool start-up; ratios are against the reference loop.

    python bench/batch.py [--images 200] [--size 256] [--model classic] [--reps 1]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from PIL import Image
from segmentkit.batch import run_batch
from segmentkit.io.image import load_image
from segmentkit.jobs.ray_engine import RayOptions
from segmentkit.registry import default_registry
from segmentkit.testing.scenes import synthetic_scene


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        line = next(line for line in out.splitlines() if line.startswith("Model name"))
        return line.split(":", 1)[1].strip()
    except (OSError, StopIteration, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"


def make_set(root: Path, count: int, size: int) -> None:
    for i in range(count):
        scene = synthetic_scene((size, size * 4 // 3), shape=("ellipse", "rectangle")[i % 2],
                                background=("textured", "plain")[i // 2 % 2], seed=i)
        Image.fromarray(scene.image).save(root / f"img{i:04d}.png")


def reference(images: list[Path], model: str) -> float:
    """Seconds for a plain loop: load the model, then decode and segment every image."""
    start = time.perf_counter()
    segmenter = default_registry().load(model, role="segmenter")
    for path in images:
        segmenter.segment(load_image(path))
    return time.perf_counter() - start


def engine_run(src: Path, work: Path, model: str, **kw: object) -> float:
    out = Path(tempfile.mkdtemp(dir=work))
    start = time.perf_counter()
    summary = run_batch([src], out, model=model, **kw)
    seconds = time.perf_counter() - start
    if summary.done != summary.total:
        raise SystemExit(f"benchmark run did not finish every image: {summary}")
    shutil.rmtree(out)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=256, help="image height; width is 4/3 of it")
    parser.add_argument("--model", default="classic")
    parser.add_argument("--reps", type=int, default=1, help="repetitions; the median is reported")
    args = parser.parse_args()

    import ray

    logging.getLogger("ray").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = work / "images"
        src.mkdir()
        make_set(src, args.images, args.size)
        images = sorted(src.glob("*.png"))
        runs: dict[str, list[float]] = {k: [] for k in (
            "reference loop", "local, 1 worker", "local, 2 workers", "ray, 2 actors (start counted)",
            "ray, 2 actors (running)")}
        for _ in range(args.reps):
            runs["reference loop"].append(reference(images, args.model))
            runs["local, 1 worker"].append(engine_run(src, work, args.model, workers=1))
            runs["local, 2 workers"].append(engine_run(src, work, args.model, workers=2))
            runs["ray, 2 actors (start counted)"].append(
                engine_run(src, work, args.model, engine="ray", workers=2, ray=RayOptions(batch_size=4)))
            ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
            try:
                runs["ray, 2 actors (running)"].append(
                    engine_run(src, work, args.model, engine="ray", workers=2, ray=RayOptions(batch_size=4)))
            finally:
                ray.shutdown()

    base = statistics.median(runs["reference loop"])
    print(f"CPU: {cpu_name()} ({os.cpu_count()} cores); model {args.model}; "
          f"{args.images} PNG images of {args.size * 4 // 3}x{args.size}; median of {args.reps}")
    print(f"{'':32s} {'seconds':>8s} {'images/s':>9s} {'vs reference':>13s}")
    for name, seconds in runs.items():
        median = statistics.median(seconds)
        print(f"{name:32s} {median:8.2f} {args.images / median:9.2f} {base / median:12.2f}x")


if __name__ == "__main__":
    main()
