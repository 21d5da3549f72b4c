"""Mask2Former outputs -> semantic, instance and panoptic results, as transformers 5 computes them.

Each function follows ``Mask2FormerImageProcessor.post_process_*_segmentation`` step by step
(including its fixed 384x384 intermediate mask size) for one image, with changes that leave
the result unchanged (up to float rounding) and save work: queries below the score threshold
are dropped before their masks are resized, and the semantic map's upsample-then-argmax runs per
cell of the source (:mod:`segmentkit.runtime.upsample`): no class is upsampled to the image size.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from segmentkit.runtime.upsample import upsample_argmax

MASK_SIZE = (384, 384)  # transformers resizes mask logits to this size first, for every model


@dataclass
class Segments:
    """Instances or panoptic segments of one image: masks (N, H, W) bool with their class and score."""

    masks: torch.Tensor
    class_ids: torch.Tensor
    scores: torch.Tensor
    label_map: torch.Tensor | None = None  # panoptic: segment ids, 0 = none
    fused: torch.Tensor | None = None  # panoptic: the segment merges every query of its class


def _mask_logits(masks_queries_logits: torch.Tensor) -> torch.Tensor:
    """(Q, h, w) mask logits -> (Q, 384, 384), bilinear."""
    return F.interpolate(masks_queries_logits[None], size=MASK_SIZE, mode="bilinear", align_corners=False)[0]


def semantic(class_logits: torch.Tensor, mask_logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(H, W) int64 class map: per-class sum of query class probability x mask probability."""
    masks = _mask_logits(mask_logits)
    classes = class_logits.softmax(dim=-1)[..., :-1]  # drop the null class
    probs = masks.sigmoid()
    scores = torch.einsum("bqc, bqhw -> bchw", classes[None], probs[None])[0]  # the reference's call
    return torch.from_numpy(upsample_argmax(scores.numpy(), size)).long()


def instance(class_logits: torch.Tensor, mask_logits: torch.Tensor, size: tuple[int, int], *,
             threshold: float, mask_threshold: float) -> Segments:
    """Instances: the top (query, class) pairs scored by class probability x mean mask probability.

    Masks are on where a query's probability exceeds ``mask_threshold`` (transformers binarises
    at logit 0, i.e. probability 0.5, the default). Sorted by score, highest first.
    """
    masks = _mask_logits(mask_logits)
    num_queries, num_classes = class_logits.shape[0], class_logits.shape[1] - 1
    scores = class_logits.softmax(dim=-1)[:, :-1]
    labels = torch.arange(num_classes).unsqueeze(0).repeat(num_queries, 1).flatten(0, 1)
    top_scores, top = scores.flatten(0, 1).topk(num_queries, sorted=False)
    query = torch.div(top, num_classes, rounding_mode="floor")
    mask_pred = masks[query]
    binary = (mask_pred > math.log(mask_threshold / (1 - mask_threshold))).float()
    mask_scores = (mask_pred.sigmoid().flatten(1) * binary.flatten(1)).sum(1) / (binary.flatten(1).sum(1) + 1e-6)
    pred_scores = top_scores * mask_scores
    keep = (pred_scores.double() >= threshold).nonzero().flatten()
    keep = keep[pred_scores[keep].argsort(descending=True, stable=True)]
    resized = F.interpolate(binary[keep][None], size=size, mode="nearest")[0] if len(keep) else \
        torch.zeros((0, *size))
    nonempty = resized.flatten(1).any(1)
    return Segments(resized[nonempty].bool(), labels[top][keep][nonempty], pred_scores[keep][nonempty])


def panoptic(class_logits: torch.Tensor, mask_logits: torch.Tensor, size: tuple[int, int], *,
             threshold: float, mask_threshold: float, overlap_mask_area_threshold: float,
             label_ids_to_fuse: Collection[int]) -> Segments:
    """Panoptic segments: each pixel goes to its best score-weighted query; stuff classes fuse.

    Only the queries above the score threshold are upsampled to the image size (few, on real
    weights): at 1080p that is faster on a quiet 2-core CPU than the per-cell owner map.
    """
    num_labels = class_logits.shape[-1] - 1
    pred_scores, pred_labels = class_logits.softmax(dim=-1).max(-1)
    keep = pred_labels.ne(num_labels) & (pred_scores > threshold)
    pred_scores, pred_labels = pred_scores[keep], pred_labels[keep]
    label_map = torch.zeros(size, dtype=torch.int32)
    if pred_labels.shape[0] == 0:
        return _segments_of(label_map, [], [], [], [])
    probs = _mask_logits(mask_logits[keep]).sigmoid()
    probs = F.interpolate(probs[None], size=size, mode="bilinear", align_corners=False)[0]
    probs *= pred_scores.view(-1, 1, 1)
    owner = probs.argmax(0)
    ids: list[int] = []
    classes: list[int] = []
    scores: list[float] = []
    fused: list[bool] = []
    stuff_segment: dict[int, int] = {}
    for k in range(pred_labels.shape[0]):
        label = int(pred_labels[k].item())
        mask_k = owner == k
        area = mask_k.sum()
        original_area = (probs[k] >= mask_threshold).sum()
        if not (area > 0 and original_area > 0 and (area / original_area).item() > overlap_mask_area_threshold):
            continue
        fuse = label in label_ids_to_fuse
        segment_id = stuff_segment.get(label) if label in stuff_segment else len(ids) + 1
        label_map[mask_k] = segment_id
        if segment_id == len(ids) + 1:
            ids.append(segment_id)
            classes.append(label)
            scores.append(float(pred_scores[k].item()))
            fused.append(fuse)
        if fuse:
            stuff_segment[label] = segment_id
    return _segments_of(label_map, ids, classes, scores, fused)


def _segments_of(label_map: torch.Tensor, ids: list[int], classes: list[int], scores: list[float],
                 fused: list[bool]) -> Segments:
    masks = label_map[None] == torch.tensor(ids, dtype=torch.int32).view(-1, 1, 1)
    return Segments(masks, torch.tensor(classes, dtype=torch.int64), torch.tensor(scores, dtype=torch.float32),
                    label_map=label_map, fused=torch.tensor(fused, dtype=torch.bool))
