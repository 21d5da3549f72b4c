"""One tracking step without weights: carry a mask to the next frame, then refine it.

The previous frame's mask is moved along dense optical flow (Farnebäck, computed from
the new frame back to the previous one, so every new pixel looks up where it came
from) and becomes GrabCut's initial labelling on the new frame: the moved mask shrunk
by a margin is definite foreground, the moved mask probable foreground, a band around
it probable background and everything further away definite background. Only the parts
of GrabCut's answer that touch the definite foreground are kept. Both steps run in a
window around the object, downscaled to ``max_side``.
"""

from __future__ import annotations

import cv2
import numpy as np

from .grabcut import BGD, FGD, MIN_SAMPLES, PR_BGD, PR_FGD, components_touching, run_grabcut
from .window import make_window

MARGIN = 0.5  # window margin around the mask, as a fraction of its longer side (covers the motion)
MIN_MARGIN = 16  # pixels
BAND = 0.3  # shrink / grow of the moved mask, as a fraction of its equivalent radius


def follow(
    previous: np.ndarray, current: np.ndarray, mask: np.ndarray, *, max_side: int, iterations: int, seed: int
) -> np.ndarray:
    """``mask`` (bool, on ``previous``) carried onto ``current`` (both (H, W, 3) uint8 RGB)."""
    if not mask.any():
        return np.zeros(mask.shape, dtype=bool)
    window = make_window(current, _bounds(mask), max_side)
    h, w = window.shape
    before = cv2.resize(previous[window.y0:window.y1, window.x0:window.x1], (w, h), interpolation=cv2.INTER_AREA)
    moved = _warp(window.crop_mask(mask), _gray(window.small), _gray(before))
    area = int(np.count_nonzero(moved))
    if area < MIN_SAMPLES:  # too small to model (or lost): keep the moved mask
        return window.paste(moved)
    radius = max(1, round(BAND * np.sqrt(area / np.pi)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    core = cv2.erode(moved.astype(np.uint8), disc).astype(bool)
    if not core.any():
        core = moved
    init = np.full((h, w), BGD, dtype=np.uint8)
    init[cv2.dilate(moved.astype(np.uint8), disc).astype(bool)] = PR_BGD
    init[moved] = PR_FGD
    init[core] = FGD
    (found,) = run_grabcut(window.small, init, (iterations,), seed)
    return window.paste(components_touching(found, core))


def _bounds(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    margin = max(MIN_MARGIN, round(MARGIN * max(x1 - x0, y1 - y0)))
    return max(0, x0 - margin), max(0, y0 - margin), min(w, x1 + margin), min(h, y1 + margin)


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def _warp(mask: np.ndarray, current: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """``mask`` (on ``previous``) moved to ``current`` along the flow from current to previous."""
    flow = cv2.calcOpticalFlowFarneback(current, previous, None, pyr_scale=0.5, levels=3, winsize=15,
                                        iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
    h, w = mask.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    moved = cv2.remap(mask.astype(np.float32), xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return moved >= 0.5
