"""Benchmark: segmentkit's SegFormer and Mask2Former plugins vs transformers' pipeline.

Full-size SegFormer-B0 (ADE20k head, 512x512 input) and Mask2Former Swin-Tiny (COCO
panoptic head, 100 queries, 384x384 input) configs with seeded random weights, saved to disk
and loaded by both sides. For each image size, end-to-end time per image (decode a PNG from
disk, preprocess, forward, postprocess into masks) is measured for:

- transformers' ``image-segmentation`` pipeline (semantic for SegFormer, panoptic for
  Mask2Former, the pipeline's default thresholds 0.9 / 0.5 / 0.5 on both sides);
- segmentkit on torch; for SegFormer also on ONNX Runtime (exported once, before timing).

Repetitions are interleaved (the order rotates every round); medians and the ratios
pipeline / segmentkit are printed, with the agreement of the two answers: the share of pixels
with the same SegFormer label, and for Mask2Former the share of segments matched (same
label, mask IoU >= 0.9), their mean IoU and the largest relative area difference.

torchvision is not installed here (segmentkit does not use it), so the pipeline runs
transformers' PIL-backend image processors (``*ImageProcessorPil``); where torchvision is
importable the pipeline picks its torchvision processors instead. Pillow's bilinear kernel
is one grey level off torch's (which the torchvision processors and segmentkit use) in a few
per cent of pixels when an image is shrunk, so the answers differ slightly here. Random Mask2Former
classification heads are flat, so its class head is scaled by 60 (see TESTING.md).

``--profile`` adds, per Mask2Former size, where each side's time goes (medians over the same
interleaved repetitions): the forward's backbone, pixel decoder and transformer decoder (timed
by hooks on the shared model class), and the rest of the call (decode, preprocess and
post-processing) as "other".

    python bench/fixed_label.py [--reps 3] [--sizes 640x480,1280x720,1920x1080] [--threads N]
                                [--models segformer,mask2former] [--profile]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

WORK = Path("/tmp/segmentkit-bench-fixed-label")


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def build_segformer(folder: Path) -> Path:
    import torch
    from segmentkit.label_sets import ADE20K
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessorPil

    if not (folder / "config.json").exists():
        torch.manual_seed(0)
        config = SegformerConfig(num_labels=150, id2label=dict(enumerate(ADE20K)),  # defaults: MiT-B0
                                 label2id={n: i for i, n in enumerate(ADE20K)})
        SegformerForSemanticSegmentation(config).eval().save_pretrained(folder)
        SegformerImageProcessorPil(size={"height": 512, "width": 512}).save_pretrained(folder)
    return folder


SWIN_TINY = {"embed_dim": 96, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24], "window_size": 7}


def build_mask2former(folder: Path, swin: dict[str, Any] | None = None, num_queries: int = 100) -> Path:
    """Mask2Former with a Swin backbone (default Swin-T, 100 queries: mask2former-swin-tiny-coco-panoptic's layout)."""
    import torch
    from segmentkit_mask2former.labels import COCO_PANOPTIC
    from transformers import (
        Mask2FormerConfig,
        Mask2FormerForUniversalSegmentation,
        Mask2FormerImageProcessorPil,
        SwinConfig,
    )

    if not (folder / "config.json").exists():
        torch.manual_seed(0)
        backbone = SwinConfig(**(swin or SWIN_TINY), out_features=["stage1", "stage2", "stage3", "stage4"])
        config = Mask2FormerConfig(backbone_config=backbone, num_labels=133, num_queries=num_queries,
                                   id2label=dict(enumerate(COCO_PANOPTIC)),
                                   label2id={n: i for i, n in enumerate(COCO_PANOPTIC)})
        model = Mask2FormerForUniversalSegmentation(config).eval()
        with torch.no_grad():
            model.class_predictor.weight.mul_(60.0)
        model.save_pretrained(folder)
        Mask2FormerImageProcessorPil(size={"height": 384, "width": 384}, size_divisor=32).save_pretrained(folder)
    return folder


def street_like(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random photo-like image (sky-to-ground gradient, blobs, texture)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 40 + 2, width // 40 + 2, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    ramp = np.linspace(-40, 40, height, dtype=np.float32)[:, None, None]
    noise = rng.normal(0, 6, (height, width, 3)).astype(np.float32)
    return np.clip(base + ramp + noise, 0, 255).astype(np.uint8)


def label_map_from_pipeline(answer: list[dict[str, Any]], label2id: dict[str, int],
                            size: tuple[int, int]) -> np.ndarray:
    out = np.full(size, -1, dtype=np.int64)
    for item in answer:
        out[np.asarray(item["mask"]) > 0] = label2id[item["label"]]
    return out


def segment_match(ours: Any, answer: list[dict[str, Any]]) -> tuple[int, float, float]:
    """(segments whose best same-label pipeline mask has IoU >= 0.9, mean best IoU, max area rel. diff)."""
    theirs = [(item["label"], np.asarray(item["mask"]) > 0) for item in answer]
    ious, diffs = [], []
    for mask, label in zip(ours.masks.masks, ours.masks.labels):
        best, area = 0.0, 0
        for their_label, their_mask in theirs:
            union = np.logical_or(mask, their_mask).sum()
            iou = np.logical_and(mask, their_mask).sum() / union if union else 0.0
            if their_label == label and iou > best:
                best, area = float(iou), int(their_mask.sum())
        ious.append(best)
        diffs.append(abs(int(mask.sum()) - area) / max(area, 1))
    if not ious:
        return 0, 1.0, 0.0
    return sum(i >= 0.9 for i in ious), float(np.mean(ious)), max(diffs)


def interleaved(runs: dict[str, Callable[[], Any]], reps: int,
                stages: StageTimer | None = None) -> dict[str, float]:
    """Median seconds per run, the order rotating every round; ``stages`` (optional) records
    each run's stage split under the run's name."""
    names = list(runs)
    times: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            if stages is not None:
                stages.begin()
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)
            if stages is not None:
                stages.end(name, times[name][-1])
    return {n: statistics.median(t) for n, t in times.items()}


class StageTimer:
    """Seconds spent in named submodules of models during one run (forward pre/post hooks)."""

    def __init__(self) -> None:
        self.current: dict[str, float] = {}
        self.runs: dict[str, list[dict[str, float]]] = {}
        self._started: dict[str, float] = {}

    def watch(self, modules: dict[str, Any]) -> None:
        for stage, module in modules.items():
            module.register_forward_pre_hook(lambda *_, s=stage: self._start(s))
            module.register_forward_hook(lambda *_, s=stage: self._add(s))

    def _start(self, stage: str) -> None:
        self._started[stage] = time.perf_counter()

    def _add(self, stage: str) -> None:
        self.current[stage] = self.current.get(stage, 0.0) + time.perf_counter() - self._started.pop(stage)

    def begin(self) -> None:
        self.current = {}

    def end(self, name: str, total: float) -> None:
        self.current["other"] = total - sum(self.current.values())
        self.runs.setdefault(name, []).append(self.current)

    def summary(self, name: str) -> str:
        rows = self.runs.get(name, [])
        stages = list(rows[0]) if rows else []
        med = {s: statistics.median(r.get(s, 0.0) for r in rows) for s in stages}
        total = sum(med.values()) or 1.0
        return "  ".join(f"{s} {med[s]:.3f}s ({med[s] / total:.0%})" for s in stages)


def mask2former_stages(model: Any) -> dict[str, Any]:
    """The forward's three stages in a ``Mask2FormerForUniversalSegmentation``."""
    return {"backbone": model.model.pixel_level_module.encoder,
            "pixel-decoder": model.model.pixel_level_module.decoder,
            "transformer-decoder": model.model.transformer_module}


def start(args: argparse.Namespace, work: Path) -> list[tuple[int, int]]:
    """The common start of the fixed-label benches: torch threads (``--threads``), the work
    folder, one header line (CPU, load, versions) and the ``--sizes`` as (width, height)."""
    import torch
    import transformers

    if args.threads:
        torch.set_num_threads(args.threads)
    work.mkdir(parents=True, exist_ok=True)
    print(f"CPU: {cpu_name()} | load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} | torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads) | transformers {transformers.__version__} | "
          f"reps {args.reps}, interleaved, medians")
    return [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sizes", default="640x480,1280x720,1920x1080")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch and ONNX Runtime threads (0: their defaults)")
    parser.add_argument("--models", default="segformer,mask2former", help="which of segformer, mask2former to run")
    parser.add_argument("--profile", action="store_true", help="Mask2Former: each side's time per stage")
    args = parser.parse_args()

    import segmentkit as sk
    from PIL import Image
    from transformers import pipeline

    sizes = start(args, WORK)
    models = set(args.models.split(","))

    if "segformer" in models:
        segformer_dir = build_segformer(WORK / "segformer-b0")
        ours_sf = sk.load("segformer-b0-ade", weights=segformer_dir)
        ours_sf_onnx = sk.load("segformer-b0-ade", weights=segformer_dir, runtime="onnxruntime",
                               onnx_cache=str(WORK / "onnx"), ort_threads=args.threads or None)
        ref_sf = pipeline("image-segmentation", model=str(segformer_dir))
        print(f"pipeline image processor: {type(ref_sf.image_processor).__name__}")
        label2id = {v: k for k, v in ours_sf.id2label.items()}
    if "mask2former" in models:
        m2f_dir = build_mask2former(WORK / "mask2former-swin-tiny")
        ours_m2f = sk.load("mask2former-swin-tiny-coco-panoptic", weights=m2f_dir, threshold=0.9, mask_threshold=0.5,
                           overlap_mask_area_threshold=0.5, label_ids_to_fuse=())
        ref_m2f = pipeline("image-segmentation", model=str(m2f_dir))
        print(f"pipeline image processor: {type(ref_m2f.image_processor).__name__}")
        stages = StageTimer() if args.profile else None
        if stages is not None:
            stages.watch(mask2former_stages(ours_m2f.raw.model))
            if ref_m2f.model is not ours_m2f.raw.model:
                stages.watch(mask2former_stages(ref_m2f.model))

    rows = []
    for i, (width, height) in enumerate(sizes):
        path = WORK / f"street-{width}x{height}.png"
        Image.fromarray(street_like(height, width, seed=i)).save(path)
        if "segformer" not in models:
            continue
        # warm-up + agreement
        ours, onnx, theirs = ours_sf.segment(path), ours_sf_onnx.segment(path), ref_sf(str(path))
        ref_map = label_map_from_pipeline(theirs, label2id, (height, width))
        agree = float(np.mean(ours.label_map == ref_map))
        agree_onnx = float(np.mean(onnx.label_map == ours.label_map))
        t = interleaved({
            "pipeline": lambda p=path: ref_sf(str(p)),
            "ours": lambda p=path: ours_sf.segment(p),
            "ours-onnx": lambda p=path: ours_sf_onnx.segment(p),
        }, args.reps)
        rows.append(f"segformer-b0   {width}x{height:<5} pipeline {t['pipeline']:6.2f}s  ours {t['ours']:6.2f}s "
                    f"(x{t['pipeline'] / t['ours']:.2f})  onnx {t['ours-onnx']:6.2f}s "
                    f"(x{t['pipeline'] / t['ours-onnx']:.2f})  pixels equal to pipeline {agree:.4%}, "
                    f"onnx vs torch {agree_onnx:.4%}, {len(ref_map.ravel()) and len(np.unique(ref_map))} labels")
        print(rows[-1], flush=True)

    for width, height in sizes if "mask2former" in models else ():
        path = WORK / f"street-{width}x{height}.png"
        pan, theirs = ours_m2f.segment(path, task="panoptic"), ref_m2f(str(path), subtask="panoptic")
        matched, mean_iou, worst = segment_match(pan, theirs)
        t = interleaved({
            "pipeline": lambda p=path: ref_m2f(str(p), subtask="panoptic"),
            "ours": lambda p=path: ours_m2f.segment(p, task="panoptic"),
        }, args.reps, stages)
        rows.append(f"mask2former-t  {width}x{height:<5} pipeline {t['pipeline']:6.2f}s  ours {t['ours']:6.2f}s "
                    f"(x{t['pipeline'] / t['ours']:.2f})  segments {len(pan.masks)} ours / {len(theirs)} pipeline, "
                    f"{matched} matched (same label, IoU >= 0.9), mean IoU {mean_iou:.3f}, "
                    f"max area diff {worst:.2%}")
        print(rows[-1], flush=True)
        if stages is not None:
            for side in ("pipeline", "ours"):
                print(f"  profile {side:<8} {stages.summary(side)}", flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
