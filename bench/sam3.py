"""Benchmark: SAM 3 concept segmentation vs Grounded-SAM 2 on the same image and text (speed only).

Both answer "every instance of this phrase" from a text prompt: SAM 3 in one model (ViT-L
at 1008^2, text encoder, DETR detector, mask head), Grounded-SAM 2 by composing Grounding
DINO (Swin-T + BERT-base, shortest edge 800) with SAM 2.1 Hiera-Tiny (1024^2) for one mask
per box. Full-size configs with seeded random weights (transformers' defaults are the
released architectures), saved to disk and loaded through ``segmentkit.load`` like real
checkpoints. Random weights say nothing about quality; to compare like with like, each
model's threshold is set so it returns the same number of instances (``--instances``) where
the scores allow it: random Grounding DINO scores saturate at 1.0, so its threshold can keep
none (the printed counts say so); its time is then its encoders and detector, a lower bound
(a few SAM 2 box decodes add milliseconds to seconds of encoders).

Timed per call, end to end from the decoded image: ``embed`` + ``predict([Text])``.
Repetitions interleave the two models; medians and the ratio Grounded-SAM 2 / SAM 3 are
printed with the CPU model and the load average (the machine is shared: read ratios, not
absolute times).

    python bench/sam3.py [--reps 3] [--size 1024x768] [--instances 5] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
from fixed_label import cpu_name  # bench/ is on sys.path when this script runs

WORK = Path("/tmp/segmentkit-bench-sam3")
TEXT = "a red square"


def build_sam3(folder: Path) -> Path:
    """The released SAM 3 architecture (transformers' default ``Sam3VideoConfig``) with random weights."""
    import torch
    from segmentkit_sam3.testing import tokenizer_vocab
    from transformers import CLIPTokenizer, Sam3VideoConfig, Sam3VideoModel

    if not (folder / "config.json").exists():
        torch.manual_seed(0)
        Sam3VideoModel(Sam3VideoConfig()).eval().save_pretrained(folder)
        vocab, merges = tokenizer_vocab()  # a small offline vocabulary; ids stay inside CLIP's 49408
        CLIPTokenizer(vocab=vocab, merges=merges).save_pretrained(folder)
    return folder


def build_grounding_dino(folder: Path) -> Path:
    """Grounding DINO with transformers' default config (Swin-T + BERT-base, as grounding-dino-tiny)."""
    import torch
    from segmentkit_grounded_sam2.testing import grounding_vocab
    from transformers import BertTokenizerFast, GroundingDinoConfig, GroundingDinoForObjectDetection

    if not (folder / "config.json").exists():
        torch.manual_seed(0)
        GroundingDinoForObjectDetection(GroundingDinoConfig()).eval().save_pretrained(folder)
        BertTokenizerFast(vocab=grounding_vocab()).save_pretrained(folder)
    return folder


def build_sam2(folder: Path) -> Path:
    """SAM 2.1 Hiera-Tiny (transformers' default ``Sam2VideoConfig``) with random weights."""
    import torch
    from transformers import Sam2VideoConfig, Sam2VideoModel

    if not (folder / "config.json").exists():
        torch.manual_seed(0)
        Sam2VideoModel(Sam2VideoConfig()).eval().save_pretrained(folder)
    return folder


def photo(size: tuple[int, int]) -> np.ndarray:
    h, w = size
    rng = np.random.default_rng(0)
    image = rng.integers(0, 160, (h, w, 3), dtype=np.uint8)
    image[h // 4 : h // 2, w // 5 : w // 2] = (220, 40, 40)
    return image


def kth_score(scores: np.ndarray, k: int) -> float:
    """A threshold that keeps the ``k`` best scores (just below the k-th)."""
    ordered = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    return float(np.nextafter(ordered[min(k, len(ordered)) - 1], -1.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--size", default="1024x768", help="image WxH")
    parser.add_argument("--instances", type=int, default=5, help="instances each model returns")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    import segmentkit as sk
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    w, h = map(int, args.size.split("x"))
    image = photo((h, w))
    sam3_dir, dino_dir, sam2_dir = (build_sam3(WORK / "sam3"), build_grounding_dino(WORK / "dino"),
                                    build_sam2(WORK / "sam2"))

    sam3 = sk.load("sam3", weights=sam3_dir, device="cpu")
    emb = sam3.embed(image)
    sam3_threshold = kth_score(sam3.predict(emb, [sk.Text(TEXT)], threshold=0.0).scores, args.instances)
    dino = sk.load("grounding-dino-tiny", weights=dino_dir, device="cpu")
    box_threshold = kth_score(dino.detect(image, TEXT + ".", box_threshold=0.0, text_threshold=0.0).scores,
                              args.instances)
    grounded = sk.load("grounded-sam2", detector_weights=dino_dir, sam_weights=sam2_dir, sam="sam2.1-hiera-tiny",
                       box_threshold=max(box_threshold, 0.0), text_threshold=0.0, device="cpu")

    def run_sam3() -> int:
        return len(sam3.predict(sam3.embed(image), [sk.Text(TEXT)], threshold=sam3_threshold))

    def run_grounded() -> int:
        return len(grounded.predict(grounded.embed(image), [sk.Text(TEXT + ".")]))

    times: dict[str, list[float]] = {"sam3": [], "grounded-sam2": []}
    counts: dict[str, int] = {}
    runs = {"sam3": run_sam3, "grounded-sam2": run_grounded}
    for rep in range(args.reps + 1):  # the first round warms up and is not counted
        for name in (list(runs) if rep % 2 else list(runs)[::-1]):
            start = time.perf_counter()
            counts[name] = runs[name]()
            if rep:
                times[name].append(time.perf_counter() - start)

    print(f"CPU: {cpu_name()}, torch threads {torch.get_num_threads()}, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} (shared machine)")
    print(f"image {w}x{h}, text {TEXT!r}, {args.reps} reps, median seconds per call (embed + predict):")
    for name, values in times.items():
        print(f"  {name:14s} {statistics.median(values):7.2f} s  ({counts[name]} instances)")
    ratio = statistics.median(times["grounded-sam2"]) / statistics.median(times["sam3"])
    print(f"sam3 vs grounded-sam2: x{ratio:.2f} (grounded-sam2 time / sam3 time; > 1: SAM 3 is faster)")


if __name__ == "__main__":
    main()
