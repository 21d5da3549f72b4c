"""Automatic masks: Felzenszwalb's graph-based regions (scikit-image)."""

from __future__ import annotations

import cv2
import numpy as np
from skimage.segmentation import felzenszwalb

from .scoring import contrast_score
from .window import make_window


def find_regions(
    image: np.ndarray, *, max_side: int, scale: float, sigma: float, min_region: float, max_regions: int
) -> tuple[np.ndarray, np.ndarray]:
    """Regions of ``image``: an (H, W) int32 map (0 = dropped, i = region i) and their scores.

    Regions are numbered by decreasing area; those under ``min_region`` of the image are
    dropped and at most ``max_regions`` are kept.
    """
    h, w = image.shape[:2]
    window = make_window(image, (0, 0, w, h), max_side)
    sh, sw = window.shape
    small_labels = felzenszwalb(
        window.small, scale=scale, sigma=sigma, min_size=max(1, int(min_region * sh * sw)), channel_axis=-1
    ).astype(np.int32)
    labels = small_labels
    if (sh, sw) != (h, w):
        labels = cv2.resize(small_labels, (w, h), interpolation=cv2.INTER_NEAREST)
    counts = np.bincount(labels.ravel(), minlength=int(small_labels.max()) + 1)
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] >= max(1.0, min_region * h * w)][:max_regions]
    lut = np.zeros(counts.size, dtype=np.int32)
    lut[order] = np.arange(1, order.size + 1, dtype=np.int32)
    scores = np.array([contrast_score(window.lab, small_labels == i) for i in order], dtype=np.float32)
    return lut[labels], scores
