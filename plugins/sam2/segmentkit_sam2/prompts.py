"""Prompt sets -> prompt tensors in model coordinates, grouped for batched decoding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from segmentkit.errors import PromptError
from segmentkit.types import Box, MaskPrompt, Point, Text, validate_prompts

from .preprocess import map_boxes, map_points, mask_input


@dataclass(frozen=True)
class PromptTensors:
    """One object's prompts: points (K, 2) + labels (K,), box (4,), mask logits (1, h, w)."""

    points: torch.Tensor | None
    labels: torch.Tensor | None
    box: torch.Tensor | None
    mask: torch.Tensor | None

    @property
    def group(self) -> tuple[int, bool, bool]:
        """Prompt sets with the same group stack into one decoder call without padding."""
        return (0 if self.points is None else int(self.points.shape[0]), self.box is not None, self.mask is not None)


def encode_prompts(
    prompts: Sequence[Any], image_hw: tuple[int, int], input_size: int, mask_input_size: tuple[int, int]
) -> PromptTensors:
    """Validate one prompt set against the image and convert it to model coordinates."""
    prompts = validate_prompts(prompts, image_hw)
    points = [p for p in prompts if isinstance(p, Point)]
    boxes = [p for p in prompts if isinstance(p, Box)]
    masks = [p for p in prompts if isinstance(p, MaskPrompt)]
    if any(isinstance(p, Text) for p in prompts):
        raise PromptError("SAM-family models take point, box and mask prompts, not text")
    if len(masks) > 1:
        raise PromptError("one prompt set takes at most one mask prompt; use a batch for several objects")
    return PromptTensors(
        points=map_points([[p.x, p.y] for p in points], image_hw, input_size) if points else None,
        labels=torch.tensor([1 if p.positive else 0 for p in points], dtype=torch.int64) if points else None,
        box=map_boxes(boxes[0].xyxy, image_hw, input_size) if boxes else None,
        mask=mask_input(masks[0].mask, mask_input_size)[0] if masks else None,
    )


@dataclass(frozen=True)
class Batch:
    """Stacked prompts of one group, shaped for :meth:`Sam2Engine.decode`."""

    points: torch.Tensor | None
    labels: torch.Tensor | None
    boxes: torch.Tensor | None
    masks: torch.Tensor | None


def stack(items: Sequence[PromptTensors]) -> Batch:
    """Stack prompt sets of one group: objects go on the point-batch axis (B=1, P=n), or on
    the batch axis (B=n, P=1) when they carry mask prompts (the dense prompt is per batch)."""
    with_mask = items[0].mask is not None

    def lay(tensors: list[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack(tensors)
        return stacked.unsqueeze(1) if with_mask else stacked.unsqueeze(0)

    first = items[0]
    return Batch(
        points=None if first.points is None else lay([i.points for i in items]),
        labels=None if first.labels is None else lay([i.labels for i in items]),
        boxes=None if first.box is None else lay([i.box for i in items]),
        masks=torch.stack([i.mask for i in items]) if with_mask else None,
    )


def mask_only_points(masks: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The point prompt of a set without points or box: one "not a point" token (label -1)
    per batch row, as ``Sam2Model`` builds it for a mask alone."""
    rows = 1 if masks is None else int(masks.shape[0])
    return torch.zeros(rows, 1, 1, 2), -torch.ones(rows, 1, 1, dtype=torch.int64)
