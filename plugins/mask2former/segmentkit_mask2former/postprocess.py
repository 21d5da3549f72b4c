"""Query-class x mask-logit post-processing shared by the mask-classification family.

Mask2Former and EoMT both answer with per-query class logits and mask logits; what turns them
into semantic, instance and panoptic results is the same maths, here once: the per-class sum
of class probability x mask probability (:func:`semantic_map`), the mean mask probability that
scores an instance (:func:`mask_scores`) and the score-weighted per-pixel owner map with its
area tests and stuff fusion (:func:`assign_segments`). The models differ only in how mask
logits reach the image (:func:`semantic`, :func:`instance`, :func:`panoptic` follow
``Mask2FormerImageProcessor.post_process_*_segmentation`` with its fixed 384x384 intermediate
size; :mod:`.eomt_postprocess` follows ``EomtImageProcessor``). Changes against transformers
leave the result unchanged (up to float rounding) and save work: queries below the score
threshold are dropped before their masks are resized, and the semantic map's
upsample-then-argmax runs per cell of the source (:mod:`segmentkit.runtime.upsample`).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from segmentkit.runtime.upsample import upsample_argmax

MASK_SIZE = (384, 384)  # transformers resizes Mask2Former's mask logits to this size first


@dataclass
class Segments:
    """Instances or panoptic segments of one image: masks (N, H, W) bool with their class and score."""

    masks: torch.Tensor
    class_ids: torch.Tensor
    scores: torch.Tensor
    label_map: torch.Tensor | None = None  # panoptic: segment ids, 0 = none
    fused: torch.Tensor | None = None  # panoptic: the segment merges every query of its class


def class_scores(class_logits: torch.Tensor, mask_probs: torch.Tensor) -> torch.Tensor:
    """(C, h, w) per-class sum of query class probability (null class dropped) x mask probability.

    ``mask_probs`` is (Q, h, w), or (N, Q, h, w) with ``class_logits`` (N, Q, C + 1) for N windows.
    """
    classes = class_logits.softmax(dim=-1)[..., :-1]
    if mask_probs.dim() == 3:
        return torch.einsum("bqc, bqhw -> bchw", classes[None], mask_probs[None])[0]  # the reference's call
    return torch.einsum("bqc, bqhw -> bchw", classes, mask_probs)


def semantic_map(scores: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(H, W) int64 argmax of the (C, h, w) class scores upsampled bilinearly to ``size``."""
    return torch.from_numpy(upsample_argmax(scores.numpy(), size)).long()


def mask_scores(probs: torch.Tensor, binary: torch.Tensor) -> torch.Tensor:
    """(Q,) mean probability of each query's mask inside its binary mask (0 for an empty one)."""
    return (probs.flatten(1) * binary.flatten(1)).sum(1) / (binary.flatten(1).sum(1) + 1e-6)


def confident_queries(class_logits: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(keep mask, scores, labels) of the queries whose best class is not null and scores above ``threshold``."""
    num_labels = class_logits.shape[-1] - 1
    scores, labels = class_logits.softmax(dim=-1).max(-1)
    keep = labels.ne(num_labels) & (scores > threshold)
    return keep, scores[keep], labels[keep]


def assign_segments(owner: torch.Tensor, probs: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor, *,
                    mask_threshold: float, overlap_mask_area_threshold: float,
                    label_ids_to_fuse: Collection[int], clip_to_mask: bool) -> Segments:
    """Panoptic segments from the per-pixel owner (index into the kept queries) of an image.

    Query k becomes a segment when it owns pixels, its mask (``probs[k] >= mask_threshold``) is
    not empty and it keeps more than ``overlap_mask_area_threshold`` of that area. A segment is
    the pixels it owns (Mask2Former) or those that are also inside its mask (``clip_to_mask``,
    EoMT). Queries of a class in ``label_ids_to_fuse`` merge into that class's first segment.

    The counts take one pass over the image (``bincount`` of the owners, one threshold pass
    over the masks) and the label map one lookup of each pixel's owner, where transformers'
    ``compute_segments`` compares and writes the whole image once per query.
    """
    count = labels.shape[0]
    inside = probs >= mask_threshold
    original_areas = inside.flatten(1).sum(1)
    areas = torch.bincount(owner.flatten(), minlength=count)
    owner_inside = inside.gather(0, owner[None])[0] if clip_to_mask else None
    if owner_inside is not None:
        clipped_areas = torch.bincount(owner[owner_inside], minlength=count)
    segment_of = torch.zeros(count, dtype=torch.int32)  # query -> segment id, 0 = none
    ids: list[int] = []
    classes: list[int] = []
    kept: list[float] = []
    fused: list[bool] = []
    stuff_segment: dict[int, int] = {}
    for k in range(count):
        label = int(labels[k].item())
        area, original_area = areas[k], original_areas[k]
        if owner_inside is not None and clipped_areas[k] == 0:
            continue
        if not (area > 0 and original_area > 0 and (area / original_area).item() > overlap_mask_area_threshold):
            continue
        fuse = label in label_ids_to_fuse
        segment_id = stuff_segment.get(label) if label in stuff_segment else len(ids) + 1
        segment_of[k] = segment_id
        if segment_id == len(ids) + 1:
            ids.append(segment_id)
            classes.append(label)
            kept.append(float(scores[k].item()))
            fused.append(fuse)
        if fuse:
            stuff_segment[label] = segment_id
    label_map = segment_of[owner]
    if owner_inside is not None:
        label_map.masked_fill_(~owner_inside, 0)
    masks = label_map[None] == torch.tensor(ids, dtype=torch.int32).view(-1, 1, 1)
    return Segments(masks, torch.tensor(classes, dtype=torch.int64), torch.tensor(kept, dtype=torch.float32),
                    label_map=label_map, fused=torch.tensor(fused, dtype=torch.bool))


def empty_panoptic(size: tuple[int, int]) -> Segments:
    """No segment: an all-zero label map."""
    return Segments(torch.zeros((0, *size), dtype=torch.bool), torch.zeros(0, dtype=torch.int64),
                    torch.zeros(0, dtype=torch.float32), label_map=torch.zeros(size, dtype=torch.int32),
                    fused=torch.zeros(0, dtype=torch.bool))


# ------------------------------------------------------------------ Mask2Former's mask geometry

def _mask_logits(masks_queries_logits: torch.Tensor) -> torch.Tensor:
    """(Q, h, w) mask logits -> (Q, 384, 384), bilinear."""
    return F.interpolate(masks_queries_logits[None], size=MASK_SIZE, mode="bilinear", align_corners=False)[0]


def semantic(class_logits: torch.Tensor, mask_logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(H, W) int64 class map: per-class sum of query class probability x mask probability."""
    return semantic_map(class_scores(class_logits, _mask_logits(mask_logits).sigmoid()), size)


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
    pred_scores = top_scores * mask_scores(mask_pred.sigmoid(), binary)
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
    keep, pred_scores, pred_labels = confident_queries(class_logits, threshold)
    if pred_labels.shape[0] == 0:
        return empty_panoptic(size)
    probs = _mask_logits(mask_logits[keep]).sigmoid()
    probs = F.interpolate(probs[None], size=size, mode="bilinear", align_corners=False)[0]
    probs *= pred_scores.view(-1, 1, 1)
    return assign_segments(probs.argmax(0), probs, pred_labels, pred_scores, mask_threshold=mask_threshold,
                           overlap_mask_area_threshold=overlap_mask_area_threshold,
                           label_ids_to_fuse=label_ids_to_fuse, clip_to_mask=False)
