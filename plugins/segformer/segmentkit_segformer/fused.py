"""SegFormer with its all-MLP decode head folded into fewer, smaller operations (same function).

transformers' head projects each encoder stage to ``decoder_hidden_size`` channels, upsamples
the four maps to 1/4 of the input, concatenates them and mixes them with a 1x1 convolution
(``linear_fuse``) and a batch norm before the ReLU and the classifier. Everything before the
ReLU is linear, and bilinear upsampling (weights summing to one) commutes with per-pixel
channel mixing, so the stage projection, ``linear_fuse``'s slice for that stage and the
batch norm fold into one matrix per stage applied at the stage's own resolution, and the
four upsampled maps are summed instead of concatenated. On B0 at 512x512 this removes an
8.6 GFLOP 1x1 convolution over a 1024-channel map at 128x128 (and its layout copies); the
head goes from 10.4 to 1.8 GFLOP, most of it the classifier.
The logits equal transformers' up to float rounding (the sums are taken in another order).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from segmentkit.errors import WeightsUnavailableError


class FoldedSegformer(torch.nn.Module):
    """``SegformerForSemanticSegmentation``'s encoder (as is) and its decode head, folded.

    ``forward(pixel_values)`` returns the logits, (B, num_labels, H/4, W/4), laid out
    channels-last in memory.
    """

    def __init__(self, model: Any):
        super().__init__()
        config = model.config
        if not config.reshape_last_stage:  # transformers' semantic head does not run without it either
            raise WeightsUnavailableError("SegFormer checkpoints with reshape_last_stage=false are not supported")
        self.stages = model.segformer.stages
        head = model.decode_head
        with torch.no_grad():
            bn = head.batch_norm
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            fuse = head.linear_fuse.weight[:, :, 0, 0] * scale[:, None]  # (D, stages * D)
            width = config.decoder_hidden_size
            stages = config.num_encoder_blocks
            bias = bn.bias - bn.running_mean * scale
            weights = []
            for i, projection in enumerate(head.linear_projections):
                # the head concatenates the stages last-first
                part = fuse[:, (stages - 1 - i) * width:(stages - i) * width]
                weights.append((part @ projection.proj.weight).t().contiguous())  # (C_i, D)
                bias = bias + part @ projection.proj.bias
        self.stage_weights = torch.nn.ParameterList(torch.nn.Parameter(w, requires_grad=False) for w in weights)
        self.bias = torch.nn.Parameter(bias.detach(), requires_grad=False)
        self.classifier_weight = torch.nn.Parameter(
            head.classifier.weight[:, :, 0, 0].t().contiguous().detach(), requires_grad=False)  # (D, classes)
        self.classifier_bias = torch.nn.Parameter(head.classifier.bias.detach().clone(), requires_grad=False)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        hidden = pixel_values
        mixed: torch.Tensor | None = None  # (B, h, w, D) at the first stage's resolution
        for stage, weight in zip(self.stages, self.stage_weights):
            hidden = stage(hidden)  # (B, C_i, h_i, w_i)
            tokens, grid = hidden.flatten(2).transpose(1, 2), (hidden.shape[2], hidden.shape[3])
            if mixed is None:
                mixed = torch.baddbmm(self.bias, tokens, weight.expand(tokens.shape[0], -1, -1)).unflatten(1, grid)
                continue
            projected = (tokens @ weight).unflatten(1, grid).permute(0, 3, 1, 2)  # channels-last (B, D, h, w)
            upsampled = F.interpolate(projected, size=mixed.shape[1:3], mode="bilinear", align_corners=False)
            mixed = mixed + upsampled.permute(0, 2, 3, 1)
        assert mixed is not None
        logits = torch.relu(mixed) @ self.classifier_weight + self.classifier_bias  # (B, h, w, classes)
        return logits.permute(0, 3, 1, 2)
