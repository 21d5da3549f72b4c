"""Benchmark: segmentkit's EdgeTAM vs transformers' EdgeTamModel / EdgeTamVideoModel, same run.

Full-size EdgeTAM config (transformers' defaults, RepViT-M1 backbone) with random weights
(object-score head biased to "object", the no-memory embedding random: TESTING.md), saved
in the hub layout (``edgetam_video``, ``timm_wrapper`` backbone) and loaded by both sides.
transformers builds the backbone with timm, which needs torchvision: the script re-runs
itself in the reference environment (``--venv``, see bench/sam2_image.py, which creates it)
and runs both sides there, on that environment's torch; segmentkit's side runs its own
RepViT (printed), not timm's. Repetitions are interleaved; medians and ratios printed:

- image encoder: image -> embedding, preprocessing included, 1024 input;
- decode: one prompt set (a click and a background click) on a cached embedding;
- tracking: one object through ``--frames`` frames of a ``--width`` x ``--height`` clip at
  1024 input: segmentkit's tracker (fp32, bf16) vs transformers' video model with its
  inference session as its docs use it; frames/s and the worst per-frame mask IoU.

    python bench/edgetam.py [--reps 3] [--frames 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import precisions, skipped_precisions_note
from sam2_image import ensure_torchvision, interleave, photo, registry_with_sam2, report
from sam2_video import clip, cpu_name

MODEL = "edgetam"


def build_weights(path: Path) -> Path:
    """A full-size random EdgeTAM checkpoint in the hub layout (transformers + timm build it)."""
    import torch
    from transformers import EdgeTamVideoConfig, EdgeTamVideoModel

    if (path / "config.json").exists():
        return path
    torch.manual_seed(0)
    backbone = dict(model_type="timm_wrapper", architecture="repvit_m1", num_classes=0,
                    model_args=dict(in_chans=3, features_only=True, out_indices=[0, 1, 2, 3]))
    model = EdgeTamVideoModel(EdgeTamVideoConfig(vision_config=dict(model_type="edgetam_vision_model",
                                                                    backbone_config=backbone))).eval()
    with torch.no_grad():
        model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(10.0)
        model.no_memory_embedding.normal_(0.0, 0.5)
    model.save_pretrained(path)
    return path


def bench_image(args, weights: Path) -> None:
    import torch
    from segmentkit import Point
    from segmentkit.testing.compare import iou
    from transformers import EdgeTamModel, Sam2ImageProcessor, Sam2Processor

    prompter = registry_with_sam2().load(MODEL, weights=weights, cache_bytes=0, precision=args.precision)
    backbone = type(prompter.raw.engine.model.vision_encoder.backbone).__name__
    print(f"segmentkit's backbone: {backbone} (ours; transformers': TimmWrapperModel)", flush=True)
    reference = EdgeTamModel.from_pretrained(weights).eval()
    processor = Sam2Processor(image_processor=Sam2ImageProcessor())
    image = photo(args.image_size)
    h, w = image.shape[:2]
    points = [[[[w * 0.4, h * 0.5], [w * 0.1, h * 0.1]]]]

    def ref_encode():
        with torch.inference_mode():
            return reference.get_image_embeddings(processor(images=image, return_tensors="pt")["pixel_values"])

    t_ref, t_ours, ref_emb, emb = interleave(args.reps, ref_encode, lambda: prompter.embed(image))
    report("image encoder (preprocessing included)", t_ref, t_ours)

    def ref_decode():
        with torch.inference_mode():
            enc = processor(original_sizes=[[h, w]], input_points=points, input_labels=[[[1, 0]]], return_tensors="pt")
            out = reference(image_embeddings=ref_emb, input_points=enc["input_points"],
                            input_labels=enc["input_labels"], multimask_output=False)
            return processor.image_processor.post_process_masks(out.pred_masks, [[h, w]])[0][0, 0].numpy()

    def our_decode():
        return prompter.predict(emb, [Point(*points[0][0][0]), Point(*points[0][0][1], positive=False)]).masks[0]

    t_ref, t_ours, ref_mask, our_mask = interleave(args.reps * 3, ref_decode, our_decode)
    report("decode (1 prompt, cached embedding)", t_ref, t_ours)
    print(f"{'':<34} mask IoU ours vs transformers: {iou(ref_mask, our_mask):.4f}", flush=True)


def bench_tracking(args, weights: Path) -> None:
    import segmentkit as sk
    from segmentkit.testing.compare import iou
    from segmentkit_sam2.video_testing import ReferenceTracker
    from transformers import EdgeTamVideoModel

    frames = clip(args.frames, args.height, args.width)
    point = (0.3 * args.width, 0.45 * args.height)
    trackers = {p: registry_with_sam2().load(MODEL, role="tracker", weights=weights, precision=p) for p in precisions()}
    if skipped_precisions_note():
        print(skipped_precisions_note())
    reference = EdgeTamVideoModel.from_pretrained(weights).eval()

    def ours(precision):
        with trackers[precision].start(frames) as session:
            session.add_prompts(0, 1, [sk.Point(*point)])
            return {fm.frame_index: fm.masks.masks[0] for fm in session.propagate()}

    def theirs():
        ref = ReferenceTracker(reference, frames)
        ref.add(0, 1, points=[point], labels=[1])
        ref.run(0)
        return {frame: by_id[1] for frame, by_id in ref.propagate()}

    runs = {"transformers": theirs, **{f"segmentkit {p}": lambda p=p: ours(p) for p in trackers}}
    timings: dict[str, list[float]] = {name: [] for name in runs}
    answers = {}
    for rep in range(args.track_reps):
        for name in (list(runs) if rep % 2 == 0 else list(runs)[::-1]):
            start = time.perf_counter()
            answers[name] = runs[name]()
            timings[name].append(time.perf_counter() - start)
    print(f"\ntracking: {args.frames} frames of {args.width}x{args.height} at 1024 input, one object "
          f"(median of {args.track_reps}, interleaved)")
    ref_fps = args.frames / statistics.median(timings["transformers"])
    print(f"{'':24}{'frames/s':>10}{'ratio':>8}{'min IoU':>9}")
    for name, times in timings.items():
        fps = args.frames / statistics.median(times)
        worst = min(iou(answers["transformers"][f], m) for f, m in answers[name].items())
        print(f"{name:24}{fps:>10.3f}{fps / ref_fps:>7.2f}x{worst:>9.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--track-reps", type=int, default=2)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--image-size", type=int, default=1024, help="longest side of the test photo")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="segmentkit's image side")
    parser.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("--only", choices=("all", "image", "track"), default="all")
    parser.add_argument("--venv", type=Path, default=Path("/tmp/segmentkit-bench-venv"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/segmentkit-bench-weights"))
    args = parser.parse_args()
    ensure_torchvision(args.venv)

    import torch

    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_name()} ({os.cpu_count()} cores, torch threads {args.threads}); torch {torch.__version__}; "
          f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)
    weights = build_weights(args.cache / "edgetam")
    print(f"model: full-size EdgeTAM config, random weights ({weights})", flush=True)
    if args.only in ("all", "image"):
        bench_image(args, weights)
    if args.only in ("all", "track"):
        bench_tracking(args, weights)
    print(f"load average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)


if __name__ == "__main__":
    main()
