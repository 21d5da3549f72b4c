"""Benchmark: segmentkit's EoMT vs transformers' ``image-segmentation`` pipeline, and vs our Mask2Former.

Full-size EoMT-L (``tue-mps/coco_panoptic_eomt_large_640``'s layout: DINOv2 ViT-L/16, 200
queries, 4 query blocks, COCO panoptic head, 640x640 padded input) and Mask2Former Swin-L (the
layout of ``facebook/mask2former-swin-large-coco-panoptic``: 200 queries, 384x384 input) with
seeded random weights, saved to disk and loaded by every side. Random heads are flat, so the class
heads are scaled by 60 and EoMT's mask head by 20 (TESTING.md; the plugin's tests do the same).
For each image size, end-to-end time per image (decode a PNG, preprocess, forward, panoptic
post-processing; the pipeline's thresholds 0.9 / 0.5 but an overlap-area threshold of 0.1 on every
side, no stuff fusion: random queries overlap so much that at 0.5 no segment survives) is measured for:

- transformers' pipeline on EoMT-L (fp32);
- segmentkit's EoMT-L in fp32 and in bf16 (the ViT in bfloat16);
- segmentkit's Mask2Former Swin-L (fp32), the model of comparable size EoMT is meant to replace.

Repetitions are interleaved (the order rotates every round); medians and ratios pipeline /
segmentkit (and Mask2Former / EoMT) are printed with the agreement of each EoMT path with the
pipeline: segments matched (same label, mask IoU >= 0.9), their mean IoU and the largest area
difference. torchvision is not installed here, so the pipeline runs ``EomtImageProcessorPil``.

    python bench/eomt.py [--reps 3] [--sizes 640x480,1280x720] [--threads N] [--no-mask2former]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from _machine import precisions, skipped_precisions_note
from fixed_label import build_mask2former, interleaved, segment_match, start, street_like

WORK = Path("/tmp/segmentkit-bench-eomt")
SWIN_LARGE = {"embed_dim": 192, "depths": [2, 2, 18, 2], "num_heads": [6, 12, 24, 48], "window_size": 12}


def build_eomt_large(folder: Path) -> Path:
    import torch
    from segmentkit_mask2former.labels import COCO_PANOPTIC
    from transformers import EomtConfig, EomtForUniversalSegmentation, EomtImageProcessorPil

    if not (folder / "config.json").exists():
        torch.manual_seed(0)
        config = EomtConfig(num_labels=133, id2label=dict(enumerate(COCO_PANOPTIC)),  # defaults: EoMT-L 640
                            label2id={n: i for i, n in enumerate(COCO_PANOPTIC)})
        model = EomtForUniversalSegmentation(config).eval()
        with torch.no_grad():
            model.class_predictor.weight.mul_(60.0)
            model.mask_head.fc3.weight.mul_(20.0)
            model.mask_head.fc3.bias.mul_(20.0)
        model.save_pretrained(folder)
        EomtImageProcessorPil(size={"shortest_edge": 640, "longest_edge": 640}, do_pad=True).save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sizes", default="640x480,1280x720")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    parser.add_argument("--no-mask2former", action="store_true", help="skip the Mask2Former Swin-L comparison")
    args = parser.parse_args()

    import segmentkit as sk
    from PIL import Image
    from transformers import pipeline

    sizes = start(args, WORK)

    eomt_dir = build_eomt_large(WORK / "eomt-large-640")
    pipeline_thresholds = {"threshold": 0.9, "mask_threshold": 0.5, "overlap_mask_area_threshold": 0.1}
    thresholds = {**pipeline_thresholds, "label_ids_to_fuse": ()}
    ours = {precision: sk.load("eomt-large-640-coco-panoptic", weights=eomt_dir, precision=precision, **thresholds)
            for precision in precisions()}
    if skipped_precisions_note():
        print(skipped_precisions_note())
    ref = pipeline("image-segmentation", model=str(eomt_dir))
    print(f"pipeline image processor: {type(ref.image_processor).__name__}")
    m2f = None
    if not args.no_mask2former:
        m2f_dir = build_mask2former(WORK / "m2f-swin-large", SWIN_LARGE, num_queries=200)
        m2f = sk.load("mask2former-swin-large-coco-panoptic", weights=m2f_dir, **thresholds)

    for i, (width, height) in enumerate(sizes):
        path = WORK / f"street-{width}x{height}.png"
        Image.fromarray(street_like(height, width, seed=i)).save(path)
        theirs = ref(str(path), subtask="panoptic", **pipeline_thresholds)  # warm-up + agreement
        answers = {precision: model.segment(path, task="panoptic") for precision, model in ours.items()}
        runs = {"pipeline": lambda p=path: ref(str(p), subtask="panoptic", **pipeline_thresholds)}
        runs |= {precision: (lambda p=path, m=model: m.segment(p, task="panoptic"))
                 for precision, model in ours.items()}
        if m2f is not None:
            m2f.segment(path, task="panoptic")
            runs["mask2former"] = lambda p=path: m2f.segment(p, task="panoptic")
        t = interleaved(runs, args.reps)
        for precision, answer in answers.items():
            matched, mean_iou, worst = segment_match(answer, theirs)
            print(f"eomt-l {width}x{height:<5} ours {precision} {t[precision]:6.2f}s pipeline {t['pipeline']:6.2f}s "
                  f"(x{t['pipeline'] / t[precision]:.2f})  segments {len(answer.masks)} ours / {len(theirs)} pipeline, "
                  f"{matched} matched (same label, IoU >= 0.9), mean IoU {mean_iou:.3f}, max area diff {worst:.2%}",
                  flush=True)
        if m2f is not None:
            best = min(ours, key=lambda p: t[p])
            print(f"eomt-l vs mask2former-swin-l {width}x{height:<5} mask2former ours fp32 {t['mask2former']:6.2f}s, "
                  f"eomt ours fp32 {t['fp32']:6.2f}s (x{t['mask2former'] / t['fp32']:.2f}), eomt ours {best} "
                  f"{t[best]:6.2f}s (x{t['mask2former'] / t[best]:.2f})", flush=True)
    print(f"load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
