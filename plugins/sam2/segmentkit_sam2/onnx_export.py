"""Export SAM 2's image encoder and prompt decoder to ONNX, once, into a verified cache.

Two graphs per model, traced from a loaded SAM-family image model (``Sam2Model``, or a
family's class with the same parts) with the TorchScript-based exporter (``dynamo=False``:
no ``onnxscript`` needed):

- ``encoder.onnx``: pixel values (1, 3, S, S) -> the embedding (no-memory embedding
  added) and the two high-res feature maps (:class:`~.image_encoder.TransformersImageEncoder`);
- ``decoder_single.onnx`` / ``decoder_multi.onnx``: cached features + prompts -> low-res
  mask logits and predicted IoU (single-mask output with SAM 2's stability fallback, or
  the 3 candidates). Prompts arrive as SAM's point tokens: points with labels 1 / 0, box
  corners with labels 2 / 3, a padding token with label -1; the dense prompt comes from
  ``mask_input`` when ``has_mask_input`` is 1, else the learnt no-mask embedding.

The graphs are kept in the verified export cache of :mod:`segmentkit.runtime.onnx`, keyed by
model id, this file's format number, the weights' identity (hub commit, or a content hash
of a local checkpoint), the input size, the opset and torch's version.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from .image_encoder import TransformersImageEncoder

FORMAT = 2  # bump when the exported graphs change (2: the kit's manifest)
DEFAULT_OPSET = 17
GRAPHS = ("encoder", "decoder_single", "decoder_multi")


class DecoderGraph(torch.nn.Module):
    """Features + point tokens + optional mask prompt -> (low-res logits (B, P, C, h, w), IoU (B, P, C))."""

    def __init__(self, model: Any, multimask: bool):
        super().__init__()
        self.prompt_encoder = model.prompt_encoder
        self.mask_decoder = model.mask_decoder
        self.multimask = multimask
        with torch.no_grad():
            self.register_buffer("image_pe", model.get_image_wide_positional_embeddings().clone())

    def forward(
        self,
        embedding: torch.Tensor,  # (1, C, h, w)
        high_res_0: torch.Tensor,  # (1, C/8, 4h, 4w)
        high_res_1: torch.Tensor,  # (1, C/4, 2h, 2w)
        point_coords: torch.Tensor,  # (B, P, K, 2) in model input coordinates
        point_labels: torch.Tensor,  # (B, P, K) int64: 1, 0, 2, 3 or -1
        mask_input: torch.Tensor,  # (B or 1, 1, 4h, 4w) logits
        has_mask_input: torch.Tensor,  # (1,) float: 1 uses mask_input
    ) -> tuple[torch.Tensor, torch.Tensor]:
        encoder = self.prompt_encoder
        sparse = encoder._embed_points(point_coords, point_labels, pad=False)
        no_mask = encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        dense = has_mask_input.reshape(1, 1, 1, 1) * encoder.mask_embed(mask_input) \
            + (1.0 - has_mask_input.reshape(1, 1, 1, 1)) * no_mask
        batch = point_coords.shape[0]
        dense = dense.expand(batch, -1, embedding.shape[2], embedding.shape[3])
        emb, hr0, hr1, pe = (t.expand(batch, -1, -1, -1) for t in (embedding, high_res_0, high_res_1, self.image_pe))
        low_res, iou, _, _ = self.mask_decoder(
            image_embeddings=emb,
            image_positional_embeddings=pe,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=self.multimask,
            high_resolution_features=[hr0, hr1],
        )
        return low_res, iou


def export_all(model: Any, folder: Path, opset: int) -> None:
    """Trace the encoder and both decoders of an image model (fp32, eval) into ``folder``."""
    size = int(model.config.prompt_encoder_config.image_size)
    low = tuple(int(s) for s in model.prompt_encoder.mask_input_size)
    encoder = TransformersImageEncoder(model).eval()
    pixels = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        emb, hr0, hr1 = encoder(pixels)
    decoder_inputs = (
        emb, hr0, hr1, torch.zeros(1, 2, 3, 2), torch.tensor([[[1, 2, 3], [0, 1, -1]]], dtype=torch.int64),
        torch.zeros(1, 1, *low), torch.zeros(1),
    )
    decoder_names = ["embedding", "high_res_0", "high_res_1", "point_coords", "point_labels",
                     "mask_input", "has_mask_input"]
    dynamic = {"point_coords": {0: "batch", 1: "objects", 2: "tokens"},
               "point_labels": {0: "batch", 1: "objects", 2: "tokens"},
               "mask_input": {0: "mask_batch"},
               "low_res_logits": {0: "batch", 1: "objects"}, "iou_scores": {0: "batch", 1: "objects"}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _export(encoder, (pixels,), folder / "encoder.onnx", opset,
                ["pixel_values"], ["embedding", "high_res_0", "high_res_1"], None)
        for name, multimask in (("decoder_single", False), ("decoder_multi", True)):
            _export(DecoderGraph(model, multimask), decoder_inputs, folder / f"{name}.onnx", opset,
                    decoder_names, ["low_res_logits", "iou_scores"], dynamic)


def _export(module: torch.nn.Module, args: tuple, path: Path, opset: int, inputs: list[str], outputs: list[str],
            dynamic: dict | None) -> None:
    torch.onnx.export(
        module.eval(), args, str(path), opset_version=opset, dynamo=False,
        input_names=inputs, output_names=outputs, dynamic_axes=dynamic, do_constant_folding=True,
    )

