"""Comparing masks: the measures tests assert on."""

from __future__ import annotations

import numpy as np


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks of one shape (1.0 if both are empty)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)


def best_iou(masks: np.ndarray, target: np.ndarray) -> float:
    """The highest IoU of any mask in ``masks`` (N, H, W) with ``target`` (0.0 if N == 0)."""
    return max((iou(m, target) for m in np.asarray(masks, dtype=bool)), default=0.0)
