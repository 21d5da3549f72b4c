"""Benchmark: SAM 2 video tracking, segmentkit's tracker vs transformers' own, same run.

1. Throughput, agreement and peak RSS. Full-size hiera-tiny (random weights with the
   object-score head biased, 1024 input, the transformers default config) tracks one
   object through ``--frames`` frames of a ``--height`` x ``--width`` synthetic clip:
   segmentkit (``tracker.start(frames)``, ``add_prompts``, ``propagate``; fp32, bf16, and
   bf16 with 3 memory frames) against ``Sam2VideoModel`` + ``Sam2VideoInferenceSession``
   as its docs use it (the whole clip preprocessed up front, then
   ``propagate_in_video_iterator``); ratios and the worst per-frame mask IoU against
   transformers come from the same run (``--reps N``: N interleaved rounds of all sides,
   medians, and each round's ratios). Each side runs in its own subprocess so that peak
   RSS (VmHWM) is its own; frames/s excludes model loading.
2. Memory on a long stream. The same architecture at a reduced input size
   (``--stream-size``, default 256) is fed ``--stream-frames`` (default 1,000) frames one
   at a time (``push_frame`` vs transformers' streaming ``model(frame=...)``); RSS is
   sampled every 50 frames. The point is the growth curve.

    python bench/sam2_video.py [--frames 24] [--reps 3] [--stream-frames 1000] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _machine import precisions, skipped_precisions_note

MODEL = "sam2.1-hiera-tiny"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def clip(count: int, height: int, width: int) -> list[Any]:
    from segmentkit_sam2.video_testing import moving_frames

    return moving_frames(count, (height, width), seed=0)


# --------------------------------------------------------------------------- workers (subprocesses)


def worker(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    frames = clip(args.count, args.height, args.width)
    point = (0.3 * args.width, 0.45 * args.height)
    if args.side == "ours":
        import segmentkit as sk
        from segmentkit.registry import Registry

        options = {"precision": args.precision}
        if args.memory_frames:
            options["memory_frames"] = args.memory_frames
        tracker = Registry().load(MODEL, role="tracker", weights=args.weights, **options)
    else:
        from segmentkit_sam2.video_testing import ReferenceTracker
        from transformers import Sam2VideoModel

        model = Sam2VideoModel.from_pretrained(args.weights).eval()
    parts = time_parts(tracker.raw._fast) if args.side == "ours" and args.profile else {}
    base = status_mb("VmRSS")
    curve: list[tuple[int, float]] = []
    masks: dict[int, Any] = {}
    start = time.perf_counter()
    if args.mode == "clip":
        from segmentkit import rle

        if args.side == "ours":
            with tracker.start(frames) as session:
                session.add_prompts(0, 1, [sk.Point(*point)])
                masks = {fm.frame_index: rle.encode(fm.masks.masks[0]) for fm in session.propagate()}
        else:
            ref = ReferenceTracker(model, frames)
            ref.add(0, 1, points=[point], labels=[1])
            ref.run(0)
            masks = {frame: rle.encode(by_id[1]) for frame, by_id in ref.propagate()}
        done = len(masks)
    else:  # stream
        if args.side == "ours":
            session = tracker.start(stream=True)
            for i, frame in enumerate(frames):
                session.push_frame(frame)
                if i == 0:
                    session.add_prompts(0, 1, [sk.Point(*point)])
                if i % 50 == 0 or i == len(frames) - 1:
                    curve.append((i + 1, round(status_mb("VmRSS") - base, 1)))
        else:
            ref = ReferenceTracker(model, frame_size=(args.height, args.width))
            for i, frame in enumerate(frames):
                if i == 0:
                    ref.add(0, 1, points=[point], labels=[1])
                ref.push(frame)
                if i % 50 == 0 or i == len(frames) - 1:
                    curve.append((i + 1, round(status_mb("VmRSS") - base, 1)))
        done = len(frames)
    seconds = time.perf_counter() - start
    return {"side": args.side, "frames": done, "seconds": seconds, "fps": done / seconds,
            "peak_rss_mb": status_mb("VmHWM"), "rss_after_load_mb": base, "curve": curve, "masks": masks,
            "parts": parts}


def time_parts(view: Any) -> dict[str, float]:
    """Wrap the tracker view's parts so that their seconds add up in the returned dict."""
    parts: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        def call(*a: Any, **k: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                parts[name] = parts.get(name, 0.0) + time.perf_counter() - start
        return call

    view.get_image_features = timed("image encoder", view.get_image_features)
    for name in ("memory_attention", "memory_encoder", "mask_decoder", "prompt_encoder"):
        module = view._modules[name]
        module.forward = timed(name.replace("_", " "), module.forward)
    return parts


def run_worker(side: str, mode: str, weights: Path, count: int, height: int, width: int,
               threads: int, *extra: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", side, "--mode", mode, "--weights", str(weights),
           "--count", str(count), "--height", str(height), "--width", str(width), "--threads", str(threads),
           *extra]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TRANSFORMERS_VERBOSITY": "error"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{side} {mode} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=24, help="frames of the throughput clip")
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--stream-frames", type=int, default=1000)
    parser.add_argument("--stream-size", type=int, default=256, help="model input size for the stream test")
    parser.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("--reps", type=int, default=1, help="interleaved repetitions of the clip; medians reported")
    parser.add_argument("--profile", action="store_true",
                        help="also print where segmentkit's tracking time goes (first round)")
    parser.add_argument("--skip-clip", action="store_true")
    parser.add_argument("--skip-stream", action="store_true")
    parser.add_argument("--stream-sides", choices=("both", "segmentkit"), default="both",
                        help="segmentkit: stream only ours (transformers' stream grows without bound)")
    # worker mode (internal)
    parser.add_argument("--worker", choices=("ours", "reference"))
    parser.add_argument("--mode", choices=("clip", "stream"))
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--count", type=int)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--memory-frames", type=int, default=0)
    args = parser.parse_args()
    if args.worker:
        args.side = args.worker
        print(json.dumps(worker(args)))
        return

    from segmentkit import rle
    from segmentkit.testing.compare import iou
    from segmentkit_sam2.video_testing import build_tiny_video_checkpoint

    print(f"load average: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(f"CPU: {cpu_name()} ({os.cpu_count()} cores), torch threads: {args.threads}")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_clip:
            weights = build_tiny_video_checkpoint(Path(tmp) / "full-1024", image_size=1024, full=True)
            print(f"\n1. full-size hiera-tiny (random weights), 1024 input, {args.frames} frames of "
                  f"{args.width}x{args.height}, one object")
            sides = {
                "transformers": ("reference",),
                "segmentkit fp32": ("ours", "--precision", "fp32"),
                "segmentkit bf16": ("ours", "--precision", "bf16"),
                "bf16, 3 memory frames": ("ours", "--precision", "bf16", "--memory-frames", "3"),
            }
            if "bf16" not in precisions():
                print(skipped_precisions_note())
                sides = {name: side for name, side in sides.items() if "bf16" not in side}
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
            for _ in range(args.reps):  # interleaved, so that a drifting load hits every side alike
                for name, side in sides.items():
                    profile = ("--profile",) if args.profile and side[0] == "ours" else ()
                    runs[name].append(run_worker(side[0], "clip", weights, args.frames, args.height, args.width,
                                                 args.threads, *side[1:], *profile))
            ref_masks = runs["transformers"][0]["masks"]
            ref_fps = statistics.median(r["fps"] for r in runs["transformers"])
            print(f"median of {args.reps} interleaved run(s); "
                  "per-run ratios against the same repetition's transformers")
            print(f"{'':24}{'frames/s':>10}{'ratio':>8}{'min IoU':>9}{'peak RSS MB':>13}  per-run ratios")
            for name, results in runs.items():
                worst = min(iou(rle.decode(r["masks"][f]), rle.decode(m))
                            for r in results for f, m in ref_masks.items())
                fps = statistics.median(r["fps"] for r in results)
                per_run = " ".join(f"{r['fps'] / t['fps']:.2f}" for r, t in zip(results, runs["transformers"]))
                print(f"{name:24}{fps:>10.3f}{fps / ref_fps:>7.2f}x{worst:>9.4f}"
                      f"{max(r['peak_rss_mb'] for r in results):>13.0f}  {per_run}")
            if args.profile:
                print("\nwhere the tracking time goes (first round; seconds, share of the run):")
                for name, results in runs.items():
                    if results[0]["parts"]:
                        total = results[0]["seconds"]
                        split = ", ".join(f"{part} {sec:.1f} s ({100 * sec / total:.0f} %)"
                                          for part, sec in sorted(results[0]["parts"].items(), key=lambda kv: -kv[1]))
                        print(f"  {name} ({total:.1f} s): {split}")
        if not args.skip_stream:
            size = args.stream_size
            weights = build_tiny_video_checkpoint(Path(tmp) / f"full-{size}", image_size=size, full=True)
            print(f"\n2. stream of {args.stream_frames} frames of {args.width}x{args.height}, hiera-tiny at "
                  f"{size} input: RSS growth over the RSS after loading (MB)")
            sides = ("reference", "ours") if args.stream_sides == "both" else ("ours",)
            curves = {side: run_worker(side, "stream", weights, args.stream_frames, args.height, args.width,
                                       args.threads) for side in sides}
            names = {"reference": "transformers", "ours": "segmentkit"}
            by_frame = {side: dict(c["curve"]) for side, c in curves.items()}
            print(f"{'frames':>8}" + "".join(f"{names[side]:>14}" for side in sides))
            for n in by_frame["ours"]:
                print(f"{n:>8}" + "".join(f"{by_frame[side].get(n, float('nan')):>14.1f}" for side in sides))
            for side, c in curves.items():
                points = c["curve"]
                mid = next(p for p in points if p[0] >= points[-1][0] // 2)
                slope = (points[-1][1] - mid[1]) / max(1, points[-1][0] - mid[0]) * 1000
                first = c["rss_after_load_mb"] + points[1][1]  # after the first 50 frames (warm-up)
                last = c["rss_after_load_mb"] + points[-1][1]
                print(f"{names[side]}: {c['fps']:.2f} frames/s, growth over the second half {slope:+.1f} MB per "
                      f"1,000 frames; RSS after loading {c['rss_after_load_mb']:.0f} MB, at frame {points[1][0]} "
                      f"{first:.0f} MB, at frame {points[-1][0]} {last:.0f} MB: {100 * (last - first) / first:+.1f} %")
    print(f"load average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
