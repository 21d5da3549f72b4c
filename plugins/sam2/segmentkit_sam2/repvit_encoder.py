"""EdgeTAM's lean image encoder: folded RepViT + FPN neck on a loaded EdgeTAM model's weights.

Same arithmetic as transformers' ``EdgeTamModel.get_image_features`` followed by the
engines' layout step (``(embedding, high_res_0, high_res_1)``, NCHW), with:

- the backbone run as :class:`~.repvit.FusedRepVit` (batch norms and the token mixer's
  branches folded into single convolutions, channels-last);
- the neck's 1x1 convolutions and the mask decoder's ``conv_s0`` / ``conv_s1`` as linear
  layers on channels-last maps, and no sine position encodings (the prompt decoder uses
  its own image-wide embedding; the tracker's view computes them once per model).

``bf16=True`` runs the backbone's convolutions on bf16 weight copies (fp32 output).
"""

from __future__ import annotations

from typing import Any

import torch
from segmentkit.runtime.fused_linear import FusedLinear

from .hiera import _as_linear, fpn_maps
from .repvit import FusedRepVit


class LeanRepVitEncoder:
    """(1, 3, S, S) pixels -> (embedding, high_res_0, high_res_1) for a loaded EdgeTAM model."""

    def __init__(self, model: Any, *, bf16: bool = False, no_memory: bool = True):
        vision = model.vision_encoder
        config = vision.config
        if config.fpn_kernel_size != 1:
            raise ValueError("the lean EdgeTAM encoder expects 1x1 neck convolutions")
        self.backbone = FusedRepVit(vision.backbone, torch.bfloat16 if bf16 else torch.float32)
        self.neck = [FusedLinear.of(_as_linear(conv), torch.float32) for conv in vision.neck.convs]
        self.top_down = {int(i) for i in vision.neck.fpn_top_down_levels}
        self.levels = int(vision.num_feature_levels)
        decoder = model.mask_decoder
        self.conv_s0 = FusedLinear.of(_as_linear(decoder.conv_s0), torch.float32)
        self.conv_s1 = FusedLinear.of(_as_linear(decoder.conv_s1), torch.float32)
        self.no_memory = model.no_memory_embedding.detach().reshape(-1).float() if no_memory else None

    def __call__(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        stage_maps = [m.float().permute(0, 2, 3, 1) for m in self.backbone(pixel_values)]  # channels-last views
        maps = fpn_maps(self.neck, self.top_down, self.levels, stage_maps)
        hr0 = self.conv_s0(maps[0])
        hr1 = self.conv_s1(maps[1])
        emb = maps[2] if self.no_memory is None else maps[2] + self.no_memory
        return tuple(m.permute(0, 3, 1, 2).float().contiguous() for m in (emb, hr0, hr1))


def lean_repvit(model: Any, *, bf16: bool, video: bool) -> LeanRepVitEncoder:
    """The family descriptor's lean image encoder factory (see :mod:`.family`)."""
    return LeanRepVitEncoder(model, bf16=bf16, no_memory=not video)
