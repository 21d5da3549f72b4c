"""The part of an image an algorithm runs on, downscaled to a bounded size."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .scoring import to_lab


@dataclass(frozen=True)
class Window:
    """Pixels ``[y0:y1, x0:x1]`` of an (H, W) image, resized to at most ``max_side``."""

    x0: int
    y0: int
    x1: int
    y1: int
    image_size: tuple[int, int]
    small: np.ndarray  # (h, w, 3) uint8 RGB
    lab: np.ndarray  # (h, w, 3) float32 Lab of ``small``

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.small.shape[0]), int(self.small.shape[1]))

    def to_small(self, x: float, y: float) -> tuple[int, int]:
        """(col, row) in ``small`` of the image point (x, y), clamped into the window."""
        h, w = self.shape
        col = int((x - self.x0) * w / (self.x1 - self.x0))
        row = int((y - self.y0) * h / (self.y1 - self.y0))
        return min(max(col, 0), w - 1), min(max(row, 0), h - 1)

    def crop_mask(self, mask: np.ndarray) -> np.ndarray:
        """A full-size bool mask cut to the window and resized to ``small`` (area vote)."""
        crop = mask[self.y0:self.y1, self.x0:self.x1].astype(np.float32)
        h, w = self.shape
        if crop.shape != (h, w):
            crop = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
        return crop >= 0.5

    def paste(self, small_mask: np.ndarray) -> np.ndarray:
        """A ``small``-sized bool mask back at full image size (bilinear, threshold 0.5)."""
        full = np.zeros(self.image_size, dtype=bool)
        size = (self.x1 - self.x0, self.y1 - self.y0)
        part = small_mask
        if part.shape != (size[1], size[0]):
            part = cv2.resize(small_mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR) >= 0.5
        full[self.y0:self.y1, self.x0:self.x1] = part
        return full


def make_window(image: np.ndarray, bounds: tuple[int, int, int, int], max_side: int) -> Window:
    """Cut ``bounds`` = (x0, y0, x1, y1) from ``image`` and downscale it to ``max_side``."""
    x0, y0, x1, y1 = bounds
    crop = image[y0:y1, x0:x1]
    h, w = crop.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    small = np.ascontiguousarray(crop)
    return Window(x0, y0, x1, y1, (int(image.shape[0]), int(image.shape[1])), small, to_lab(small))
