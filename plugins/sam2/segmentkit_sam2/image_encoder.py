"""The image encoders a SAM-family engine runs: a family's lean one, or transformers' own.

Both map (1, 3, S, S) pixel values to ``(embedding, high_res_0, high_res_1)`` (NCHW, the
high-res maps already through the mask decoder's ``conv_s0`` / ``conv_s1``), with the
no-memory embedding added for the image predictor and left out for the tracker, which adds
memory (or that embedding) itself.
"""

from __future__ import annotations

from typing import Any

import torch

from .family import SamFamily


class TransformersImageEncoder(torch.nn.Module):
    """``model.get_image_features`` laid out as the engines use it (also the ONNX encoder graph)."""

    def __init__(self, model: Any, *, no_memory: bool = True):
        super().__init__()
        self.model = model
        self.no_memory = no_memory
        self.sizes = [tuple(int(v) for v in s) for s in model.config.vision_config.backbone_feature_sizes]

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model.get_image_features(pixel_values, return_dict=True)
        maps = list(out.fpn_hidden_states)  # each (h*w, 1, C)
        if self.no_memory:
            maps[-1] = maps[-1] + self.model.no_memory_embedding
        feats = [m.permute(1, 2, 0).reshape(1, -1, *size) for m, size in zip(maps, self.sizes)]
        return feats[2], feats[0], feats[1]


def build_image_encoder(family: SamFamily, model: Any, *, bf16: bool, video: bool) -> Any:
    """The family's lean encoder, or transformers' where the family has none (fp32 only)."""
    if family.lean_image_encoder is None:
        return TransformersImageEncoder(model, no_memory=not video)
    return family.load("lean_image_encoder")(model, bf16=bf16, video=video)


def lean_hiera(model: Any, *, bf16: bool, video: bool) -> Any:
    """SAM 2's :class:`~.hiera.LeanImageEncoder`. bf16: the image predictor runs stages
    ``IMAGE_BF16_STAGES`` in bf16, the tracker every stage (see :mod:`.hiera`)."""
    from .hiera import IMAGE_BF16_STAGES, LeanImageEncoder, bf16_fp32_blocks

    if not bf16:
        return LeanImageEncoder(model, no_memory=not video)
    fp32_blocks = () if video else bf16_fp32_blocks(model, IMAGE_BF16_STAGES)
    return LeanImageEncoder(model, torch.bfloat16, fp32_blocks=fp32_blocks, no_memory=not video)
