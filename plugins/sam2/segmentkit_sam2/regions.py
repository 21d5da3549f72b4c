"""Small-region cleanup of automatic masks: fill small holes, drop small islands.

Many masks are labelled in one ``scipy.ndimage.label`` call on the (N, H, W) stack with
a structuring element that connects pixels 8-wise inside a mask and never across masks.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage

_EIGHT_IN_PLANE = np.zeros((3, 3, 3), dtype=bool)
_EIGHT_IN_PLANE[1] = True


def remove_small_regions(
    masks: np.ndarray, min_area: int, mode: Literal["holes", "islands"]
) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W) bool masks with regions under ``min_area`` pixels removed; and which changed.

    ``holes`` fills background components smaller than ``min_area``; ``islands`` drops
    foreground components smaller than it, keeping the largest when all are small (sam2's
    ``remove_small_regions`` with 8-connectivity, for many masks at once).
    """
    n = masks.shape[0]
    holes = mode == "holes"
    work = ~masks if holes else masks
    labels, count = ndimage.label(work, structure=_EIGHT_IN_PLANE)
    if count == 0:
        return masks, np.zeros(n, dtype=bool)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    # Labels are assigned in raster order and never span masks, so mask k owns a contiguous
    # range of labels: (last label of mask k-1, last label of mask k].
    last = np.maximum.accumulate(labels.reshape(n, -1).max(axis=1))
    owner = np.searchsorted(last, np.arange(count + 1), side="left")  # owner[l] for l >= 1
    small = sizes < min_area
    small[0] = False
    changed = np.bincount(owner[1:][small[1:]], minlength=n)[:n] > 0
    if holes:
        keep = small.copy()
        keep[0] = True  # label 0 is the mask itself
    else:
        keep = ~small
        keep[0] = False  # label 0 is the background
        has_big = np.bincount(owner[1:][keep[1:]], minlength=n)[:n] > 0
        orphan = changed & ~has_big  # every island is small: keep the largest one
        if orphan.any():
            ids = np.arange(1, count + 1)
            largest = np.zeros(n, dtype=sizes.dtype)
            np.maximum.at(largest, owner[ids], sizes[ids])
            cand = ids[orphan[owner[ids]] & (sizes[ids] == largest[owner[ids]])]
            _, first = np.unique(owner[cand], return_index=True)  # first (raster order) of ties
            keep[cand[first]] = True
    out = keep[labels]
    out[~changed] = masks[~changed]
    return out, changed
