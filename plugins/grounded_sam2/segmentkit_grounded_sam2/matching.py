"""Tie new detections to existing tracks by box IoU (greedy, highest IoU first)."""

from __future__ import annotations

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of XYXY boxes: (N, 4) x (M, 4) -> (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def unmatched_detections(detections: np.ndarray, tracks: np.ndarray, min_iou: float) -> np.ndarray:
    """Indices of detections that overlap no track by ``min_iou`` (one track per detection)."""
    n = len(detections)
    if n == 0 or len(tracks) == 0:
        return np.arange(n)
    iou = box_iou(detections, tracks)
    matched = np.zeros(n, dtype=bool)
    taken = np.zeros(len(tracks), dtype=bool)
    for flat in np.argsort(-iou, axis=None):
        d, t = divmod(int(flat), len(tracks))
        if iou[d, t] < min_iou:
            break
        if not matched[d] and not taken[t]:
            matched[d] = taken[t] = True
    return np.flatnonzero(~matched)
