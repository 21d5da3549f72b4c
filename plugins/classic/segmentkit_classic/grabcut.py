"""Prompts -> object masks with OpenCV's GrabCut.

Prompts become GrabCut's initial labelling: a box makes everything outside it
definite background and its inside probable foreground (what ``GC_INIT_WITH_RECT``
does, built as a mask so points can be added); a mask prompt is the probable
foreground; points are small discs of definite foreground / background. With points
alone, a disc around each positive point is the probable foreground. Without a box,
only the connected parts of the result that touch a positive point or the mask prompt
are kept, so a look-alike elsewhere in the image is not taken along.

Three candidates come out: for points alone, three disc radii (a part, the object,
the object and more); otherwise the result after three iteration counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .scoring import contrast_score
from .window import Window, make_window

BGD, FGD, PR_BGD, PR_FGD = cv2.GC_BGD, cv2.GC_FGD, cv2.GC_PR_BGD, cv2.GC_PR_FGD
SEED_RADII = (0.04, 0.1, 0.2)  # probable-foreground discs, as a fraction of the longest side
MIN_SAMPLES = 10  # GrabCut's colour models need a few pixels of each side


@dataclass(frozen=True)
class Seeds:
    """Prompts in image pixels, sorted by kind (already validated)."""

    positives: tuple[tuple[float, float], ...] = ()
    negatives: tuple[tuple[float, float], ...] = ()
    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = None  # bool (H, W)


@dataclass(frozen=True)
class Candidate:
    mask: np.ndarray  # bool (H, W)
    score: float


def candidates(
    image: np.ndarray, seeds: Seeds, whole: Window, *, max_side: int, iterations: int, seed: int
) -> list[Candidate]:
    """Three candidate masks of the object the seeds describe, each with its score."""
    window = whole if seeds.box is None else make_window(image, _box_bounds(seeds.box, image.shape), max_side)
    if seeds.box is None and seeds.mask is None:
        runs = [(_init(window, seeds, radius), (iterations,)) for radius in SEED_RADII]
    else:
        checkpoints = (1, max(1, (iterations + 1) // 2), iterations)
        runs = [(_init(window, seeds, 0.0), checkpoints)]
    anchor = _anchor(window, seeds) if seeds.box is None else None
    out = []
    for init, checkpoints in runs:
        for fg in run_grabcut(window.small, init, checkpoints, seed):
            if anchor is not None:
                fg = components_touching(fg, anchor)
            out.append(Candidate(window.paste(fg), contrast_score(window.lab, fg)))
    return out


def _box_bounds(box: tuple[float, float, float, float], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The box grown by a margin of background, in whole pixels inside the image."""
    h, w = shape[:2]
    x0, y0, x1, y1 = box
    margin = max(4.0, 0.15 * max(x1 - x0, y1 - y0))
    return (
        max(0, int(np.floor(x0 - margin))), max(0, int(np.floor(y0 - margin))),
        min(w, int(np.ceil(x1 + margin))), min(h, int(np.ceil(y1 + margin))),
    )


def _init(window: Window, seeds: Seeds, radius: float) -> np.ndarray:
    h, w = window.shape
    init = np.full((h, w), PR_BGD, dtype=np.uint8)
    if seeds.mask is not None:
        init[window.crop_mask(seeds.mask)] = PR_FGD
    elif seeds.box is None:
        r = max(1, round(radius * max(h, w)))
        for x, y in seeds.positives:
            cv2.circle(init, window.to_small(x, y), r, PR_FGD, thickness=-1)
    if seeds.box is not None:
        x0, y0 = window.to_small(seeds.box[0], seeds.box[1])
        sx = w / (window.x1 - window.x0)
        sy = h / (window.y1 - window.y0)
        x1 = min(w, max(x0 + 1, int(np.ceil((seeds.box[2] - window.x0) * sx))))
        y1 = min(h, max(y0 + 1, int(np.ceil((seeds.box[3] - window.y0) * sy))))
        inside = np.zeros((h, w), dtype=bool)
        inside[y0:y1, x0:x1] = True
        if seeds.mask is None:
            init[inside] = PR_FGD
        init[~inside] = BGD
    mark = max(1, round(0.012 * max(h, w)))
    for x, y in seeds.negatives:
        cv2.circle(init, window.to_small(x, y), mark, BGD, thickness=-1)
    for x, y in seeds.positives:
        cv2.circle(init, window.to_small(x, y), mark, FGD, thickness=-1)
    if _background_count(init) < MIN_SAMPLES:  # e.g. a box over the whole image
        frame = np.ones((h, w), dtype=bool)
        frame[1:-1, 1:-1] = False
        init[frame & (init != FGD)] = PR_BGD
    return init


def _background_count(init: np.ndarray) -> int:
    return int(np.count_nonzero((init == BGD) | (init == PR_BGD)))


def run_grabcut(small: np.ndarray, init: np.ndarray, checkpoints: tuple[int, ...], seed: int) -> list[np.ndarray]:
    """Foreground after each number of iterations in ``checkpoints`` (one continued run)."""
    def foreground(m: np.ndarray) -> np.ndarray:
        return (m == FGD) | (m == PR_FGD)

    n_fg = int(np.count_nonzero(foreground(init)))
    if n_fg < MIN_SAMPLES or _background_count(init) < MIN_SAMPLES:
        return [foreground(init)] * len(checkpoints)  # too few pixels to model: keep the prompt
    cv2.setRNGSeed(seed)  # GrabCut's k-means draws from OpenCV's generator
    mask = init.copy()
    bgd_model = np.zeros((1, 65), np.float64)
    fgd_model = np.zeros((1, 65), np.float64)
    mode, done, out = cv2.GC_INIT_WITH_MASK, 0, []
    for n in checkpoints:
        if n > done:
            cv2.grabCut(small, mask, None, bgd_model, fgd_model, n - done, mode)
            mode, done = cv2.GC_EVAL, n
        out.append(foreground(mask))
    return out


def _anchor(window: Window, seeds: Seeds) -> np.ndarray:
    """Pixels of ``window.small`` the object must touch: positive points and the mask prompt."""
    anchor = np.zeros(window.shape, dtype=bool) if seeds.mask is None else window.crop_mask(seeds.mask)
    for x, y in seeds.positives:
        col, row = window.to_small(x, y)
        anchor[row, col] = True
    return anchor


def components_touching(fg: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """The 8-connected parts of ``fg`` that overlap ``anchor``."""
    _, labels = cv2.connectedComponents(fg.astype(np.uint8), connectivity=8)
    picked = np.unique(labels[anchor & fg])
    return np.isin(labels, picked[picked > 0])
