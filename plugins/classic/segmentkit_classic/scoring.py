"""A mask's score: how much its colours stand out from a ring of pixels around it."""

from __future__ import annotations

import cv2
import numpy as np


def to_lab(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> float32 CIE Lab (L in [0, 100])."""
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def contrast_score(lab: np.ndarray, mask: np.ndarray) -> float:
    """Colour contrast of ``mask`` against its surrounding ring, in [0, 1].

    ``d = |mean_in - mean_ring| / (std_in + std_ring)`` (Lab, Euclidean), mapped to
    ``d / (1 + d)``. Empty masks, and masks with no ring (the whole image), score 0.
    """
    if not mask.any():
        return 0.0
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    width = max(2, round(0.1 * float(np.sqrt(ys.size))))
    y0, y1 = max(0, ys.min() - width), min(h, ys.max() + width + 1)
    x0, x1 = max(0, xs.min() - width), min(w, xs.max() + width + 1)
    inner = mask[y0:y1, x0:x1].astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    ring = cv2.dilate(inner, kernel).astype(bool) & ~inner.astype(bool)
    if not ring.any():
        return 0.0
    crop = lab[y0:y1, x0:x1]
    fg, bg = crop[inner.astype(bool)], crop[ring]
    spread = np.sqrt(fg.var(axis=0).sum()) + np.sqrt(bg.var(axis=0).sum())
    d = float(np.linalg.norm(fg.mean(axis=0) - bg.mean(axis=0)) / (spread + 1e-3))
    return d / (1.0 + d)
