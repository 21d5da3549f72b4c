"""Benchmark: SAM 2's image encoder stage by stage in fp32, bf16 and int8 -- time and final-mask error.

Full-size Hiera-Tiny with random weights (``bench/sam2_image.py``'s checkpoint), 1024^2.
For each Hiera stage, its blocks run on that stage's real input (from the fp32 forward)
in three precisions of the lean encoder (:mod:`segmentkit_sam2.hiera`):

- fp32: oneDNN linear layers, fp32 attention (what ``precision="fp32"`` runs);
- bf16: bf16 weight copies and bf16 attention products, fp32 residual stream and norms
  (what ``precision="bf16"`` runs in stages ``IMAGE_BF16_STAGES``);
- int8: torch's dynamic int8 quantisation of every linear layer of the stage (weights
  per output channel, activations per tensor, fbgemm/VNNI kernels), attention in fp32.

The error column is the final-mask agreement with fp32 when only that stage runs in the
reduced precision (min / mean mask IoU over 16 single-point prompts x 3 masks, fp32
decoder), then for the stage sets that matter. ``--ort-int8`` adds ONNX Runtime's own
dynamic int8 quantisation of the whole exported encoder (time and agreement vs ORT fp32).
Times are medians of interleaved repetitions; the machine may be shared.

    python bench/sam2_encoder_stages.py [--reps 3] [--threads 2] [--ort-int8]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sam2_fast_paths import cpu_line, interleaved
from sam2_image import build_weights, iou, photo

if TYPE_CHECKING:
    import torch


class Int8Linear:
    """A linear layer on torch's dynamic int8 kernel (``quantized::linear_dynamic``)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        import torch

        weight = weight.float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-8) / 127
        qweight = torch.quantize_per_channel(weight, scale, torch.zeros_like(scale, dtype=torch.long), 0, torch.qint8)
        self.packed = torch.ops.quantized.linear_prepack(qweight, None if bias is None else bias.float())

    def __call__(self, x, gelu: bool = False):
        import torch
        import torch.nn.functional as F

        flat = x.float().reshape(-1, x.shape[-1]).contiguous()
        out = torch.ops.quantized.linear_dynamic(flat, self.packed, True).reshape(*x.shape[:-1], -1)
        return F.gelu(out) if gelu else out


def int8_block(block):
    """An fp32 lean block whose linear layers run on the int8 kernel."""
    for name in ("qkv", "attn_proj", "fc1", "fc2", "proj"):
        linear = getattr(block, name)
        if linear is not None:
            setattr(block, name, Int8Linear(linear.weight, linear.bias))
    return block


def stage_ranges(model) -> list[range]:
    ends = [int(e) for e in model.vision_encoder.backbone.stage_ends]
    starts = [0] + [e + 1 for e in ends[:-1]]
    return [range(s, e + 1) for s, e in zip(starts, ends)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch / ONNX Runtime threads (0: defaults)")
    parser.add_argument("--ort-int8", action="store_true", help="also ONNX Runtime dynamic int8 of the whole encoder")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/segmentkit-bench-weights"))
    args = parser.parse_args()

    import numpy as np
    import segmentkit
    import torch
    from segmentkit import Point
    from segmentkit.roles import Embedding
    from segmentkit_sam2.hiera import IMAGE_BF16_STAGES, LeanImageEncoder, _Block, bf16_fp32_blocks
    from segmentkit_sam2.preprocess import preprocess_image

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_line()}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"quantized engine {torch.backends.quantized.engine}; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    weights = build_weights("tiny", args.cache / "tiny")
    prompter = segmentkit.Registry().load("sam2.1-hiera-tiny", weights=weights, cache_bytes=0).raw
    engine = prompter.engine
    model = engine.model
    image = photo(1024)
    h, w = image.shape[:2]
    rng = np.random.default_rng(0)
    prompts = [[Point(float(x), float(y))] for x, y in rng.uniform(0.05, 0.95, (16, 2)) * [w, h]]

    def masks(encoder) -> list[np.ndarray]:
        engine._encoder = encoder
        features = prompter.embed_array(image)
        emb = Embedding(model_id="bench", image_size=features.original_size, key="x", data=features)
        return [m for r in prompter.predict_batch(emb, prompts, multimask=True) for m in r.masks]

    fp32 = LeanImageEncoder(model)
    base = masks(fp32)

    def agreement(encoder) -> str:
        ious = [iou(a, b) for a, b in zip(masks(encoder), base)]
        return f"{min(ious):.4f}/{statistics.mean(ious):.4f}"

    def with_stages(bf16: tuple[int, ...] = (), int8: tuple[int, ...] = ()) -> LeanImageEncoder:
        encoder = LeanImageEncoder(model, torch.bfloat16, fp32_blocks=bf16_fp32_blocks(model, bf16))
        for i in (i for stage in int8 for i in ranges[stage]):
            encoder.blocks[i] = (int8_block(_Block(backbone[i], torch.float32, None)), encoder.blocks[i][1])
        return encoder

    ranges = stage_ranges(model)
    backbone = model.vision_encoder.backbone.blocks
    # each stage's input from the fp32 forward
    with torch.inference_mode():
        pixel_values = preprocess_image(image, engine.input_size)
        x = (fp32.patch_embed(pixel_values.contiguous(memory_format=torch.channels_last)).permute(0, 2, 3, 1)
             + fp32.pos_embed)
        inputs = []
        for stage in ranges:
            inputs.append(x)
            for i in stage:
                x = fp32.blocks[i][0](x)
    print(f"\nper stage, 1 image 1024^2, median of {args.reps} interleaved runs; IoU = min/mean final-mask IoU vs fp32 "
          "(16 points x 3 masks) with only that stage reduced")
    print(f"{'stage':<6}{'blocks':>7}{'fp32 ms':>9}{'bf16 ms':>9}{'int8 ms':>9}{'bf16 IoU':>16}{'int8 IoU':>16}")
    totals = {"fp32": 0.0, "bf16": 0.0, "int8": 0.0}
    for stage, (blocks, x) in enumerate(zip(ranges, inputs)):
        variants = {
            "fp32": [_Block(backbone[i], torch.float32, None) for i in blocks],
            "bf16": [_Block(backbone[i], torch.bfloat16, None) for i in blocks],
            "int8": [int8_block(_Block(backbone[i], torch.float32, None)) for i in blocks],
        }

        def run(chain, x=x):
            with torch.inference_mode():
                y = x
                for block in chain:
                    y = block(y)
                return y

        times = interleaved(args.reps, {name: (lambda c=c: run(c)) for name, c in variants.items()})
        med = {name: statistics.median(t) * 1000 for name, t in times.items()}
        for name in totals:
            totals[name] += med[name]
        print(f"{stage:<6}{len(blocks):>7}{med['fp32']:>9.0f}{med['bf16']:>9.0f}{med['int8']:>9.0f}"
              f"{agreement(with_stages(bf16=(stage,))):>16}{agreement(with_stages(int8=(stage,))):>16}", flush=True)
    print(f"{'all':<6}{len(backbone):>7}{totals['fp32']:>9.0f}{totals['bf16']:>9.0f}{totals['int8']:>9.0f}")

    print("\nwhole encoder (backbone + neck), stage sets; IoU = min/mean vs fp32")
    sets = {
        "fp32": fp32,
        f"bf16 {IMAGE_BF16_STAGES} (shipped)": with_stages(bf16=IMAGE_BF16_STAGES),
        "bf16 all stages": with_stages(bf16=(0, 1, 2, 3)),
        "int8 all stages": with_stages(int8=(0, 1, 2, 3)),
        "int8 stage 0 + bf16 1, 3": with_stages(bf16=(1, 3), int8=(0,)),
    }
    with torch.inference_mode():
        times = interleaved(args.reps, {name: (lambda e=e: e(pixel_values)) for name, e in sets.items()})
    fp32_ms = statistics.median(times["fp32"]) * 1000
    for name, encoder in sets.items():
        ms = statistics.median(times[name]) * 1000
        print(f"  {name:<28}{ms:8.0f} ms  x{fp32_ms / ms:4.2f} vs fp32   IoU {agreement(encoder)}", flush=True)
    if args.ort_int8:
        ort_int8(args, prompter, weights, model, pixel_values, masks, base)
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def ort_int8(args, prompter, weights, model, pixel_values, masks, base) -> None:
    """ONNX Runtime's dynamic int8 quantisation of the exported encoder vs its fp32 graph."""
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from segmentkit.runtime import onnx
    from segmentkit.runtime.onnx import physical_cores
    from segmentkit.weights import weights_identity
    from segmentkit_sam2 import onnx_export

    threads = args.threads or physical_cores()
    key = [onnx_export.FORMAT, weights_identity(weights), int(model.config.prompt_encoder_config.image_size),
           onnx_export.DEFAULT_OPSET]
    graphs = onnx.ensure_exported(onnx.export_dir("sam2.1-hiera-tiny", key), onnx_export.GRAPHS,
                                  lambda staging: onnx_export.export_all(model, staging, onnx_export.DEFAULT_OPSET))
    fp32_session = onnx.session(graphs["encoder"], "cpu", threads)
    logging.getLogger().setLevel(logging.ERROR)  # the quantiser warns per tensor it leaves in fp32
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        target = Path(tmp) / "encoder-int8.onnx"
        quantize_dynamic(graphs["encoder"], target, weight_type=QuantType.QInt8, per_channel=True)
        print(f"\nONNX Runtime {onnxruntime.__version__} dynamic int8 of the whole encoder "
              f"(quantised in {time.perf_counter() - start:.0f} s)")
        int8_session = onnx.session(target, "cpu", threads)
    feed = {"pixel_values": pixel_values.numpy()}
    times = interleaved(args.reps, {"ORT fp32": lambda: fp32_session.run(None, feed),
                                    "ORT int8": lambda: int8_session.run(None, feed)})

    class OrtEncoder:
        def __init__(self, session):
            self.session = session

        def __call__(self, pv):
            import torch

            return tuple(torch.from_numpy(a) for a in self.session.run(None, {"pixel_values": pv.numpy()}))

    for name, session in (("ORT fp32", fp32_session), ("ORT int8", int8_session)):
        ious = [iou(a, b) for a, b in zip(masks(OrtEncoder(session)), base)]
        print(f"  {name:<28}{statistics.median(times[name]) * 1000:8.0f} ms   IoU vs torch fp32 "
              f"{min(ious):.4f}/{statistics.mean(ious):.4f}", flush=True)


if __name__ == "__main__":
    main()
