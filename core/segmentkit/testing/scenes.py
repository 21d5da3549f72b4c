"""Synthetic test images with known ground truth: a coloured object on a background.

Plugins' tests use these to check masks against a hand-drawn answer instead of
against themselves. Everything is numpy and seeded, so a scene is the same on every
machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Shape = Literal["ellipse", "rectangle"]
Background = Literal["textured", "plain"]
PART_COLOR = (235, 110, 60)  # orange: nearer the object's red than the background's colours
SECOND_COLOR = (230, 210, 50)  # yellow: far from the object's red and from the background's colours


@dataclass(frozen=True)
class Scene:
    """An RGB image, the object's true mask and handy prompts for it."""

    image: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) bool, the object
    box: tuple[float, float, float, float]  # tight XYXY box of ``mask`` (x1, y1 exclusive)
    inside: tuple[float, float]  # (x, y) of a pixel deep inside the object
    outside: tuple[float, float]  # (x, y) of a background pixel next to the object
    part: np.ndarray | None = None  # (H, W) bool, a part of the object in another colour, if drawn
    decoy: np.ndarray | None = None  # (H, W) bool, the distractor blob (not the object), if drawn
    second: np.ndarray | None = None  # (H, W) bool, a second object in another colour, if drawn

    @property
    def size(self) -> tuple[int, int]:
        return (int(self.image.shape[0]), int(self.image.shape[1]))


def synthetic_scene(
    size: tuple[int, int] = (96, 128),
    *,
    shape: Shape = "ellipse",
    background: Background = "textured",
    color: tuple[int, int, int] = (205, 45, 50),
    noise: float = 6.0,
    distractor: bool = False,
    part: bool = False,
    center: tuple[float, float] | None = None,
    second: tuple[float, float] | None = None,
    seed: int = 0,
) -> Scene:
    """A ``size`` = (H, W) image with one ``shape`` object of ``color``.

    ``textured`` backgrounds are diagonal two-colour stripes; ``distractor`` adds a
    smaller blob of the object's colour in a corner that is *not* part of the mask
    (``Scene.decoy``); ``part`` paints an orange ellipse around ``inside`` that belongs to
    the object (``Scene.part``), so a click there is ambiguous: the part or the whole.
    ``center`` is the object's (x, y); by default near the middle, jittered by ``seed``.
    ``second`` is the (x, y) of a second, flatter object in yellow (``Scene.second``; the
    first object is drawn over it where they meet).
    """
    h, w = size
    if h < 8 or w < 8:
        raise ValueError(f"a scene needs at least 8x8 pixels, got {h}x{w}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    image = _background(yy, xx, background)
    if center is None:
        cx = w / 2 + rng.uniform(-0.06, 0.06) * w
        cy = h / 2 + rng.uniform(-0.06, 0.06) * h
    else:
        cx, cy = center
    rx, ry = 0.22 * w, 0.24 * h
    mask = _shape(yy, xx, shape, cx, cy, rx, ry)
    image[mask] = color
    decoy = inner = other = None
    if second is not None:
        other = _shape(yy, xx, "ellipse", second[0], second[1], rx, 0.18 * h) & ~mask
        image[other] = SECOND_COLOR
    if distractor:
        decoy = _shape(yy, xx, "ellipse", 0.1 * w + 1, 0.11 * h + 1, 0.09 * w, 0.1 * h) & ~mask
        image[decoy] = color
    if part:
        inner = _shape(yy, xx, "ellipse", np.floor(cx) + 0.5, np.floor(cy) + 0.5, 0.35 * rx, 0.35 * ry) & mask
        image[inner] = PART_COLOR
    image = image + rng.normal(0.0, noise, image.shape)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(mask)
    box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    inside = (float(np.floor(cx)) + 0.5, float(np.floor(cy)) + 0.5)
    out_x = min(w - 0.5, cx + rx + 0.08 * w)
    outside = (float(np.floor(out_x)) + 0.5, float(np.floor(cy)) + 0.5)
    return Scene(image=image, mask=mask, box=box, inside=inside, outside=outside, part=inner, decoy=decoy,
                 second=other)


def synthetic_frames(
    count: int = 4, size: tuple[int, int] = (48, 64), *, step: float = 2.0, x0: float | None = None, seed: int = 0
) -> list[Scene]:
    """``count`` scenes of one object moving right by ``step`` pixels per frame from ``x0`` (0.4 W)."""
    h, w = size
    x0 = 0.4 * w if x0 is None else x0
    return [
        synthetic_scene(size, center=(x0 + i * step, h / 2), seed=seed + i) for i in range(count)
    ]


def synthetic_pair_frames(count: int = 4, size: tuple[int, int] = (48, 64), *, step: float = 2.0,
                          seed: int = 0) -> list[Scene]:
    """``count`` scenes of two objects moving apart: the red one (``mask``) in the upper part, right
    by ``step`` pixels per frame from 0.3 W; the yellow one (``second``) in the lower part, left by
    ``step`` from 0.7 W. They never touch."""
    h, w = size
    return [
        synthetic_scene(size, center=(0.3 * w + i * step, 0.3 * h), second=(0.7 * w - i * step, 0.78 * h),
                        seed=seed + i)
        for i in range(count)
    ]


def _background(yy: np.ndarray, xx: np.ndarray, kind: Background) -> np.ndarray:
    h, w = yy.shape
    image = np.empty((h, w, 3), dtype=np.float64)
    if kind == "plain":
        image[:] = (120, 130, 125)
        return image
    if kind != "textured":
        raise ValueError(f"background must be 'textured' or 'plain', got {kind!r}")
    period = max(4.0, min(h, w) / 8)
    stripes = (np.floor((xx + yy) / period) % 2).astype(bool)
    image[~stripes] = (60, 120, 150)
    image[stripes] = (95, 150, 105)
    return image


def _shape(
    yy: np.ndarray, xx: np.ndarray, shape: Shape, cx: float, cy: float, rx: float, ry: float
) -> np.ndarray:
    px, py = xx + 0.5, yy + 0.5  # pixel centres
    if shape == "ellipse":
        return ((px - cx) / rx) ** 2 + ((py - cy) / ry) ** 2 <= 1.0
    if shape == "rectangle":
        return (np.abs(px - cx) <= rx) & (np.abs(py - cy) <= ry)
    raise ValueError(f"shape must be 'ellipse' or 'rectangle', got {shape!r}")
