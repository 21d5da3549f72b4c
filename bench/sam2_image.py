"""Benchmark: segmentkit's SAM 2 image path vs transformers on the same random weights.

Full-size Hiera-Tiny (or Base+) configs with random weights, saved in the hub layout
(``sam2_video``) and loaded by both sides. Measured in one process, repetitions of the
reference and of ours interleaved (order alternating), medians and ratios printed:

- encoder: image -> embedding (preprocessing included on both sides: transformers'
  ``Sam2Processor`` vs ours);
- decode: one prompt set (2 points) on a cached embedding -> masks at image size;
- automatic masks: transformers' ``mask-generation`` pipeline vs ours, same grid and
  thresholds, plus the mask IoU between the two answers.

transformers' SAM 2 image processor and the pipeline need torchvision, which segmentkit
does not use. Without it, the script re-runs itself in a virtual environment that has it
(``--venv``, created on first use: ``pip install torch==2.14.1 torchvision==0.29.1
transformers==5.24.0`` plus segmentkit's pure-Python deps). segmentkit and the SAM 2 plugin
are not installed there: the re-run imports them from this checkout (``PYTHONPATH``) and
registers the plugin in-process. Both sides then run on that environment's torch.

    python bench/sam2_image.py [--config tiny|base-plus] [--reps 5] [--points-per-side 32]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REF_PACKAGES = ["torch==2.14.1", "torchvision==0.29.1", "transformers==5.24.0"]
CORE_DEPS = ["pluggy>=1.5,<2", "pydantic>=2.7,<3", "pillow", "numpy", "pycocotools>=2.0.8,<3", "scipy>=1.11,<2",
             "huggingface_hub", "typer>=0.12,<1", "rich>=13.7"]

BACKBONES = {
    # Hiera-Tiny is transformers' default SAM 2 config; Base+ per the SAM 2.1 release configs.
    "tiny": {},
    "base-plus": dict(
        backbone=dict(hidden_size=112, num_attention_heads=2, blocks_per_stage=[2, 3, 16, 3],
                      embed_dim_per_stage=[112, 224, 448, 896], num_attention_heads_per_stage=[2, 4, 8, 16],
                      global_attention_blocks=[12, 16, 20], window_positional_embedding_background_size=[14, 14],
                      window_size_per_stage=[8, 4, 14, 7]),
        backbone_channel_list=[896, 448, 224, 112],
    ),
}


def ensure_torchvision(venv: Path) -> None:
    """Re-exec in ``venv`` (created if needed) unless torchvision imports here."""
    try:
        import torchvision  # noqa: F401
        return
    except ImportError:
        pass
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating the reference environment in {venv} (torch + torchvision + transformers)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run(pip + REF_PACKAGES + CORE_DEPS, check=True)
    paths = [str(ROOT / "core"), str(ROOT / "plugins" / "sam2"), os.environ.get("PYTHONPATH", "")]
    os.execve(str(python), [str(python), *sys.argv], {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))})


def registry_with_sam2():
    """A registry with the SAM 2 plugin: from its entry point, or registered in-process when
    this environment has segmentkit on ``PYTHONPATH`` only (the reference venv)."""
    import segmentkit

    reg = segmentkit.Registry()
    if not any(info.card.id == "sam2.1-hiera-tiny" for info in reg.models()):
        import segmentkit_sam2

        reg.register(segmentkit_sam2, "sam2")
    return reg


def build_weights(name: str, path: Path) -> Path:
    """Save a random-weight full-size checkpoint (hub layout); rescale the output heads so
    that masks and predicted IoUs are not trivial (as the tests do, see TESTING.md)."""
    import torch
    from transformers import Sam2Config, Sam2Model, Sam2VideoConfig, Sam2VideoModel

    if (path / "config.json").exists():
        return path
    spec = BACKBONES[name]
    vision = {}
    if spec:
        vision = dict(backbone_config=dict(model_type="sam2_hiera_det_model", **spec["backbone"]),
                      backbone_channel_list=spec["backbone_channel_list"])
    torch.manual_seed(0)
    config = Sam2VideoConfig(vision_config=vision or None)
    model = Sam2VideoModel(config).eval()
    parts = {k: {kk: vv for kk, vv in getattr(config, k).to_dict().items() if kk != "model_type"}
             for k in ("vision_config", "prompt_encoder_config", "mask_decoder_config")}
    image_model = Sam2Model(Sam2Config(**parts)).eval()
    image_model.load_state_dict(model.state_dict(), strict=False)
    with torch.inference_mode():
        out = image_model(pixel_values=torch.randn(1, 3, 1024, 1024), input_points=torch.rand(1, 16, 1, 2) * 1024,
                          input_labels=torch.ones(1, 16, 1, dtype=torch.long))
    mask_gain = 4.0 / float(out.pred_masks.std())
    iou_gain = 1.5 / float(torch.logit(out.iou_scores.clamp(1e-6, 1 - 1e-6)).std())
    with torch.no_grad():
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.proj_out.weight.mul_(mask_gain)
            mlp.proj_out.bias.mul_(mask_gain)
        model.mask_decoder.iou_prediction_head.proj_out.weight.mul_(iou_gain)
    model.save_pretrained(path)
    return path


def photo(size: int):
    import numpy as np
    from segmentkit.testing.scenes import synthetic_scene

    return np.ascontiguousarray(synthetic_scene((size, size), seed=7).image)


def timed(fn, results: list[float]):
    start = time.perf_counter()
    value = fn()
    results.append(time.perf_counter() - start)
    return value


def interleave(reps: int, ref, ours) -> tuple[list[float], list[float], object, object]:
    t_ref: list[float] = []
    t_ours: list[float] = []
    ref(), ours()  # warm-up
    for r in range(reps):
        pair = [(ref, t_ref), (ours, t_ours)]
        for fn, bucket in (pair if r % 2 == 0 else pair[::-1]):
            out = timed(fn, bucket)
            if fn is ref:
                ref_out = out
            else:
                our_out = out
    return t_ref, t_ours, ref_out, our_out


def report(name: str, t_ref: list[float], t_ours: list[float]) -> None:
    ref, ours = statistics.median(t_ref), statistics.median(t_ours)
    print(f"{name:<34} transformers {ref * 1000:9.1f} ms   segmentkit {ours * 1000:9.1f} ms   "
          f"speed-up x{ref / ours:5.2f}", flush=True)


def iou(a, b) -> float:
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(BACKBONES), default="tiny")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=1024, help="square: the pipeline maps grid points "
                        "with SAM 1's aspect-keeping rule, which is wrong for SAM 2 on non-square images")
    parser.add_argument("--pred-iou-thresh", type=float, default=0.7)
    parser.add_argument("--stability-thresh", type=float, default=0.6)
    parser.add_argument("--only", choices=("all", "encoder", "decode", "automatic"), default="all")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="segmentkit's side")
    parser.add_argument("--venv", type=Path, default=Path("/tmp/segmentkit-bench-venv"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/segmentkit-bench-weights"))
    args = parser.parse_args()
    ensure_torchvision(args.venv)

    import torch
    from transformers import Sam2ImageProcessor, Sam2Model, Sam2Processor

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
               platform.processor())
    print(f"CPU: {cpu} ({os.cpu_count()} cores, torch threads {torch.get_num_threads()}); torch {torch.__version__}",
          flush=True)
    weights = build_weights(args.config, args.cache / args.config)
    model_id = f"sam2.1-hiera-{args.config}"
    print(f"model: full-size {model_id} config, random weights ({weights}); segmentkit in {args.precision}", flush=True)
    registry = registry_with_sam2()
    prompter = registry.load(model_id, weights=weights, cache_bytes=0, precision=args.precision)
    reference = Sam2Model.from_pretrained(weights).eval()
    processor = Sam2Processor(image_processor=Sam2ImageProcessor())
    image = photo(args.image_size)

    def ref_encode():
        with torch.inference_mode():
            pv = processor(images=image, return_tensors="pt")["pixel_values"]
            return reference.get_image_embeddings(pv)

    if args.only in ("all", "encoder"):
        t_ref, t_ours, _, _ = interleave(args.reps, ref_encode, lambda: prompter.embed(image))
        report("encoder (1 image, preprocessing included)", t_ref, t_ours)
    if args.only in ("all", "decode"):
        bench_decode(args.reps * 4, prompter, reference, processor, image, ref_encode())
    if args.only in ("all", "automatic"):
        bench_automatic(args, registry.load(
            model_id, role="segmenter", weights=weights, cache_bytes=0, precision=args.precision,
            points_per_side=args.points_per_side,
            points_per_batch=64, pred_iou_thresh=args.pred_iou_thresh, stability_score_thresh=args.stability_thresh,
            box_nms_thresh=0.7,
        ), reference, processor, image)


def bench_decode(reps: int, prompter, reference, processor, image, ref_emb) -> None:
    """One prompt set (a click and a background click) on a cached embedding -> image-size mask."""
    import torch
    from segmentkit import Point

    hw = image.shape[:2]
    emb = prompter.embed(image)
    h, w = hw
    points = [[[[w * 0.4, h * 0.5], [w * 0.1, h * 0.1]]]]

    def ref_decode():
        with torch.inference_mode():
            enc = processor(original_sizes=[list(hw)], input_points=points, input_labels=[[[1, 0]]],
                            return_tensors="pt")
            out = reference(image_embeddings=ref_emb, input_points=enc["input_points"],
                            input_labels=enc["input_labels"], multimask_output=False)
            return processor.image_processor.post_process_masks(out.pred_masks, [hw])[0][0, 0].numpy()

    def our_decode():
        return prompter.predict(emb, [Point(*points[0][0][0]), Point(*points[0][0][1], positive=False)]).masks[0]

    t_ref, t_ours, ref_mask, our_mask = interleave(reps, ref_decode, our_decode)
    report("decode (1 prompt, cached embedding)", t_ref, t_ours)
    print(f"{'':<34} mask IoU ours vs transformers: {iou(ref_mask, our_mask):.4f}", flush=True)


def bench_automatic(args, segmenter, reference, processor, image) -> None:
    """transformers' mask-generation pipeline vs ours, same grid and thresholds."""
    import numpy as np
    import torch
    from PIL import Image
    from transformers import pipeline

    hw = image.shape[:2]
    generator = pipeline("mask-generation", model=reference, image_processor=processor.image_processor,
                         device="cpu")
    pil = Image.fromarray(image)

    def ref_amg():
        with torch.inference_mode():
            return generator(pil, points_per_batch=64, points_per_crop=args.points_per_side,
                             pred_iou_thresh=args.pred_iou_thresh, stability_score_thresh=args.stability_thresh,
                             crops_nms_thresh=0.7)

    t_ref, t_ours, ref_out, our_out = interleave(max(1, args.reps // 2), ref_amg, lambda: segmenter.segment(image))
    report(f"automatic masks ({args.points_per_side}x{args.points_per_side} grid)", t_ref, t_ours)
    ref_masks = np.stack([np.asarray(m, dtype=bool) for m in ref_out["masks"]]) if ref_out["masks"] else \
        np.zeros((0, *hw), dtype=bool)
    ours_masks = our_out.masks.masks
    best = [max((iou(r, o) for o in ours_masks), default=0.0) for r in ref_masks]
    print(f"{'':<34} masks: transformers {len(ref_masks)}, segmentkit {len(ours_masks)}; "
          f"best-match IoU per reference mask: min {min(best, default=float('nan')):.4f}, "
          f"mean {float(np.mean(best)) if best else float('nan'):.4f}", flush=True)


if __name__ == "__main__":
    main()
