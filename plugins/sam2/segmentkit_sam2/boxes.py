"""Vectorised box utilities for automatic mask generation (no torchvision).

Boxes here follow SAM's internal convention: XYXY with x1 / y1 the *last* pixel
(inclusive), as ``batched_mask_to_box`` computes them; NMS uses them unchanged.
"""

from __future__ import annotations

import torch


def masks_to_boxes_inclusive(masks: torch.Tensor) -> torch.Tensor:
    """(N, H, W) bool -> (N, 4) float32 XYXY, last pixel inclusive; zeros for empty masks."""
    n, h, w = masks.shape
    if n == 0:
        return torch.zeros((0, 4), dtype=torch.float32, device=masks.device)
    rows = masks.any(dim=2)  # (N, H)
    cols = masks.any(dim=1)  # (N, W)
    ys = torch.arange(h, device=masks.device)
    xs = torch.arange(w, device=masks.device)
    y1 = torch.where(rows, ys, -1).amax(dim=1)
    y0 = torch.where(rows, ys, h).amin(dim=1)
    x1 = torch.where(cols, xs, -1).amax(dim=1)
    x0 = torch.where(cols, xs, w).amin(dim=1)
    boxes = torch.stack([x0, y0, x1, y1], dim=1).float()
    return torch.where(rows.any(dim=1, keepdim=True), boxes, torch.zeros_like(boxes))


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU (len(a), len(b)) of XYXY boxes, areas as (x1 - x0) * (y1 - y0)."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, *, block: int = 2048) -> torch.Tensor:
    """Greedy non-maximum suppression; returns kept indices in decreasing score order.

    Exactly the sequential greedy result (a box is dropped when a higher-scoring kept box
    overlaps it with IoU > ``iou_threshold``; ties keep input order), computed without a
    per-box loop: the overlapping pairs are found block-wise (memory ~ pairs, not N^2), then
    "kept" is iterated to its fixed point, which is unique and equals the greedy answer.
    """
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes[order].float()
    sources, targets = [], []
    for start in range(0, n, block):
        over = box_iou(b[start:start + block], b) > iou_threshold
        rows = torch.arange(start, min(start + block, n), device=b.device)
        over &= rows[:, None] < torch.arange(n, device=b.device)[None, :]  # only later (lower-scored) boxes
        i, j = over.nonzero(as_tuple=True)
        sources.append(i + start)
        targets.append(j)
    src, dst = torch.cat(sources), torch.cat(targets)
    keep = torch.ones(n, dtype=torch.bool, device=b.device)
    for _ in range(n):
        hits = torch.zeros(n, dtype=torch.int32, device=b.device).index_add_(0, dst, keep[src].int())
        new = hits == 0
        if torch.equal(new, keep):
            break
        keep = new
    return order[keep]
