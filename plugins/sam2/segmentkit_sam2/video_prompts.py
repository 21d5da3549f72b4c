"""One object's prompts on one frame -> the inputs ``Sam2VideoModel`` takes.

Points and a box become one point list in model coordinates (box corners first, with
labels 2 and 3, then the clicks: 1 foreground, 0 background), as
``Sam2VideoProcessor.add_inputs_to_inference_session`` builds it. A mask prompt becomes
a binary S x S mask (antialiased bilinear resize, then >= 0.5), as the processor does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from segmentkit.errors import PromptError
from segmentkit.types import Box, MaskPrompt, Point, Text, validate_prompts

from .preprocess import map_boxes, map_points


@dataclass(frozen=True)
class VideoPrompt:
    """Either points (K, 2) with labels (K,), or a (1, 1, S, S) binary mask."""

    coords: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    mask: torch.Tensor | None = None


def encode_video_prompts(prompts: Sequence[Any], image_hw: tuple[int, int], input_size: int) -> VideoPrompt:
    """Validate ``prompts`` against the frame and convert them to model inputs."""
    prompts = validate_prompts(prompts, image_hw)
    if any(isinstance(p, Text) for p in prompts):
        raise PromptError("SAM-family models take point, box and mask prompts, not text")
    masks = [p for p in prompts if isinstance(p, MaskPrompt)]
    if masks:
        if len(prompts) > 1:
            raise PromptError("a mask prompt cannot be combined with other prompts on one frame")
        return VideoPrompt(mask=_binary_mask(masks[0], input_size))
    points = [p for p in prompts if isinstance(p, Point)]
    boxes = [p for p in prompts if isinstance(p, Box)]
    parts, labels = [], []
    if boxes:
        parts.append(map_boxes(boxes[0].xyxy, image_hw, input_size).reshape(2, 2))
        labels += [2, 3]
    if points:
        parts.append(map_points([[p.x, p.y] for p in points], image_hw, input_size))
        labels += [1 if p.positive else 0 for p in points]
    return VideoPrompt(coords=torch.cat(parts), labels=torch.tensor(labels, dtype=torch.int64))


def _binary_mask(prompt: MaskPrompt, input_size: int) -> torch.Tensor:
    mask = prompt.mask > 0 if prompt.is_logits else prompt.mask
    tensor = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    if tuple(tensor.shape[-2:]) != (input_size, input_size):
        tensor = F.interpolate(tensor, size=(input_size, input_size), mode="bilinear", align_corners=False,
                               antialias=True)
        tensor = (tensor >= 0.5).float()
    return tensor
