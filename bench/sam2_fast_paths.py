"""Benchmark: SAM 2 fast paths (torch bf16, ONNX Runtime fp32) vs transformers and our fp32.

Full-size Hiera-Tiny config with random weights (built once, shared with
``bench/sam2_image.py``), one process, repetitions interleaved with a rotating order,
medians and ratios printed:

- encoder: one image -> embedding. transformers ``Sam2Model.get_image_embeddings`` on
  the same pixel values (reference, fp32) vs ours: torch fp32, torch bf16 (first Hiera stages in bf16),
  ONNX Runtime fp32 (ours include preprocessing; the reference does not);
- decode: a click, 2 points -> one mask at image size + its COCO RLE (what a client gets back)
  on a cached embedding, transformers
  (``Sam2Model(image_embeddings=...)`` + one bilinear upscale) vs ours on each path;
- grid: 64 single-point prompts -> 3 low-res masks each in one decoder call (what the
  automatic generator repeats 16 times for a 32x32 grid), transformers vs each path;
- agreement: the masks of each fast path vs torch fp32 for 16 single-point prompts,
  multimask (48 masks): minimum and mean mask IoU. A fast path that disagrees is a bug.

``--click-profile`` instead times each step of one click on a cached embedding (torch
fp32, and bf16 where the CPU computes it natively): prompt validation, prompt encoder, decoder
transformer, upscaling convs (masks in sub-pixel order), output choice, reorder to pixel order,
output choice, resize to the image, threshold, stability score, numpy copy, COCO RLE.

The ONNX export is cached under ``$SEGMENTKIT_CACHE`` (first run: about a minute).
The machine may be shared: compare the ratios, not the absolute times.

    python bench/sam2_fast_paths.py [--reps 7] [--quick] [--threads N] [--click-profile]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import precisions, skipped_precisions_note
from sam2_image import build_weights, iou, photo


def cpu_line() -> str:
    """The CPU's model name and its bf16 / AMX flags (from lscpu)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown CPU"
    name = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in out.splitlines() if line.startswith("Flags")), [])
    wanted = [f for f in flags if f in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8", "avx512_vnni")]
    return f"{name}; flags: {' '.join(wanted) or 'no avx512 / amx'}"


def interleaved(reps: int, fns: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    """Run every function ``reps`` times, rotating the order each round (after one warm-up each)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for name in names:
        fns[name]()
    for r in range(reps):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


def table(stage: str, title: str, times: dict[str, list[float]], reference: str) -> None:
    base = statistics.median(times[reference])
    print(f"\n{title}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"  {stage} {name:<28} {med * 1000:9.1f} ms   vs transformers x{base / med:5.2f}", flush=True)


def click_profile(prompter, embedding, prompt, reps: int) -> None:
    """Median time of each step of ``prompter.predict(embedding, prompt)`` + RLE, run one by one."""
    import torch
    from segmentkit import rle
    from segmentkit.types import Masks
    from segmentkit_sam2.postprocess import above, stability_score
    from segmentkit_sam2.preprocess import upscale_masks
    from segmentkit_sam2.prompts import encode_prompts, stack

    engine, features = prompter.engine, embedding.data
    decoder, hw = engine._decoder, features.original_size
    state: dict[str, object] = {}

    def step(name: str, fn: Callable[[], object]) -> tuple[str, Callable[[], object]]:
        def run() -> None:
            with torch.inference_mode():
                state[name] = fn()
        return name, run

    steps = dict([
        step("prompts -> model coordinates", lambda: stack([encode_prompts(
            prompt, hw, engine.input_size, engine.mask_input_size)])),
        step("prompt encoder (transformers)", lambda: engine._prompt_embeddings(
            state["prompts -> model coordinates"].points, state["prompts -> model coordinates"].labels, None, None)),
        step("decoder transformer + heads", lambda: decoder._transformer(
            features.decoder_image, state["prompt encoder (transformers)"][0].flatten(0, 1), None)),
        step("upscaling convs + mask product", lambda: decoder._upscale_and_mask(
            features.decoder_image, *state["decoder transformer + heads"][:2])),
        step("output choice (stability fallback)", lambda: decoder._select(
            state["upscaling convs + mask product"], state["decoder transformer + heads"][2], False)),
        step("sub-pixel -> pixel order", lambda: decoder._to_image(state["output choice (stability fallback)"][0])),
        step("low-res -> image size (bilinear)", lambda: upscale_masks(
            state["sub-pixel -> pixel order"].float(), hw)[0]),
        step("threshold", lambda: above(state["low-res -> image size (bilinear)"], 0.0)),
        step("stability score", lambda: stability_score(state["low-res -> image size (bilinear)"], 0.0, 1.0)),
        step("Masks (numpy copies)", lambda: Masks(masks=state["threshold"].numpy().copy(),
                                                   scores=state["output choice (stability fallback)"][1][0].numpy())),
        step("COCO RLE of the mask", lambda: rle.encode(state["Masks (numpy copies)"].masks[0])),
    ])
    for run in steps.values():  # fill the state in order
        run()
    times = interleaved(reps, steps)
    whole = interleaved(reps, {"predict + RLE": lambda: rle.encode(prompter.predict(embedding, prompt).masks[0])})
    total = statistics.median(whole["predict + RLE"]) * 1000
    parts = {name: statistics.median(t) * 1000 for name, t in times.items()}
    print(f"  {'step':<38}{'ms':>8}{'share':>8}")
    for name, ms in parts.items():
        print(f"  {name:<38}{ms:8.2f}{ms / sum(parts.values()):8.1%}")
    print(f"  {'sum of steps':<38}{sum(parts.values()):8.2f}\n  {'predict() + RLE, end to end':<38}{total:8.2f}",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 repetitions")
    parser.add_argument("--threads", type=int, default=0, help="torch and ONNX Runtime threads (0: defaults)")
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/segmentkit-bench-weights"))
    parser.add_argument("--click-profile", action="store_true", help="only the per-step profile of one click")
    args = parser.parse_args()
    reps = 3 if args.quick else args.reps

    import numpy as np
    import segmentkit
    import torch
    import torch.nn.functional as F
    from segmentkit import Point, rle
    from segmentkit.runtime.onnx import physical_cores
    from segmentkit_sam2.preprocess import preprocess_image
    from transformers import Sam2Model

    if args.threads:
        torch.set_num_threads(args.threads)
    ort_threads = args.threads or physical_cores()
    print(f"CPU: {cpu_line()}")
    print(f"{os.cpu_count()} logical CPUs, {physical_cores()} physical cores; torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), ONNX Runtime intra-op threads {ort_threads}; load average "
          f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])}", flush=True)
    weights = build_weights("tiny", args.cache / "tiny")
    model_id = "sam2.1-hiera-tiny"
    registry = segmentkit.Registry()
    if args.click_profile:
        image = photo(args.image_size)
        w, h = image.shape[1], image.shape[0]
        prompt = [Point(w * 0.4, h * 0.5), Point(w * 0.1, h * 0.1, positive=False)]
        for precision in precisions():
            prompter = registry.load(model_id, weights=weights, cache_bytes=0, precision=precision).raw
            print(f"\none click (2 points -> 1 mask of {w}x{h}) on a cached embedding, torch {precision}, "
                  f"median of {reps * 10}; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
            click_profile(prompter, prompter.embed(image), prompt, reps * 10)
        return
    if skipped_precisions_note():
        print(skipped_precisions_note())
    start = time.perf_counter()
    paths = {
        **{f"ours torch {p}": registry.load(model_id, weights=weights, cache_bytes=0, precision=p)
           for p in precisions()},
        "ours onnxruntime fp32": registry.load(model_id, weights=weights, cache_bytes=0, runtime="onnxruntime",
                                               ort_threads=ort_threads),
    }
    print(f"loaded (ONNX export or cache check included) in {time.perf_counter() - start:.1f} s", flush=True)
    reference = Sam2Model.from_pretrained(weights).eval()
    image = photo(args.image_size)
    hw = image.shape[:2]
    size = paths["ours torch fp32"].engine.input_size
    pixel_values = preprocess_image(image, size)

    def ref_encode():
        with torch.inference_mode():
            return reference.get_image_embeddings(pixel_values)

    encoders: dict[str, Callable[[], object]] = {"transformers fp32": ref_encode}
    encoders.update({name: (lambda p=p: p.embed_array(image)) for name, p in paths.items()})
    table("encoder", f"encoder, 1 image ({hw[1]}x{hw[0]}), median of {reps}", interleaved(reps, encoders),
          "transformers fp32")

    ref_emb = ref_encode()
    embeddings = {name: p.embed(image) for name, p in paths.items()}
    w, h = hw[1], hw[0]
    prompt = [Point(w * 0.4, h * 0.5), Point(w * 0.1, h * 0.1, positive=False)]
    in_points = torch.tensor([[[[w * 0.4 * size / w, h * 0.5 * size / h], [w * 0.1 * size / w, h * 0.1 * size / h]]]])

    def ref_decode():
        with torch.inference_mode():
            out = reference(image_embeddings=ref_emb, input_points=in_points, input_labels=torch.tensor([[[1, 0]]]),
                            multimask_output=False)
            return F.interpolate(out.pred_masks[0], size=hw, mode="bilinear", align_corners=False)[0, 0] > 0

    decoders: dict[str, Callable[[], object]] = {"transformers fp32": lambda: rle.encode(ref_decode().numpy())}
    decoders.update({name: (lambda p=p, e=embeddings[name]: rle.encode(p.predict(e, prompt).masks[0]))
                     for name, p in paths.items()})
    table("decode", "a click on a cached embedding: 2 points -> 1 mask at image size -> COCO RLE "
          "(ms = the click)", interleaved(reps * 5, decoders), "transformers fp32")
    grid = torch.rand(1, 64, 1, 2, generator=torch.Generator().manual_seed(1)) * size
    grid_labels = torch.ones(1, 64, 1, dtype=torch.int64)

    def ref_grid():
        with torch.inference_mode():
            return reference(image_embeddings=ref_emb, input_points=grid, input_labels=grid_labels,
                             multimask_output=True).pred_masks

    grid_decoders: dict[str, Callable[[], object]] = {"transformers fp32": ref_grid}
    grid_decoders.update({name: (lambda p=p, e=embeddings[name]: p.engine.decode(
        e.data, grid, grid_labels, None, None, multimask=True)) for name, p in paths.items()})
    table("grid", "64 single-point prompts, 3 low-res masks each, in one call (the automatic generator's unit of work)",
          interleaved(max(2, reps // 2), grid_decoders), "transformers fp32")
    ref_mask = ref_decode().numpy()
    ours_mask = paths["ours torch fp32"].predict(embeddings["ours torch fp32"], prompt).masks[0]
    print(f"  mask IoU ours fp32 vs transformers: {iou(ours_mask, ref_mask):.4f}")

    rng = np.random.default_rng(0)
    sets = [[Point(float(x), float(y))] for x, y in rng.uniform(0.05, 0.95, (16, 2)) * [w, h]]
    base = paths["ours torch fp32"].predict_batch(embeddings["ours torch fp32"], sets, multimask=True)
    print("\nagreement with ours torch fp32 (16 single-point prompts, 3 masks each)")
    for name in ("ours torch bf16", "ours onnxruntime fp32"):
        got = paths[name].predict_batch(embeddings[name], sets, multimask=True)
        ious = [iou(g.masks[k], b.masks[k]) for g, b in zip(got, base) for k in range(len(b))]
        score = max(float(np.abs(g.scores - b.scores).max()) for g, b in zip(got, base))
        verdict = "ok" if min(ious) >= 0.99 else "BELOW the 0.99 target"
        print(f"  {name:<28} mask IoU min {min(ious):.4f} mean {statistics.mean(ious):.4f}   "
              f"max |dIoU score| {score:.4f}   {verdict}")


if __name__ == "__main__":
    main()
