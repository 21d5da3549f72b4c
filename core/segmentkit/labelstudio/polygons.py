"""A mask's outline as a Label Studio polygon (points in percent), through OpenCV."""

from __future__ import annotations

import numpy as np

from ..errors import MissingDependencyError


def mask_polygon(mask: np.ndarray, tolerance_px: float = 1.0) -> list[list[float]]:
    """The largest outer contour of ``mask``, simplified by ``tolerance_px``, as [x%, y%] points."""
    try:
        import cv2
    except ImportError:
        raise MissingDependencyError(
            "cv2", "pip install opencv-python-headless", purpose="PolygonLabels output"
        ) from None
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    outline = cv2.approxPolyDP(max(contours, key=cv2.contourArea), tolerance_px, True).reshape(-1, 2)
    height, width = mask.shape
    return [[float(x) * 100.0 / width, float(y) * 100.0 / height] for x, y in outline]
