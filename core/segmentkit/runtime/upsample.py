"""Bilinear upsampling followed by an argmax over channels, without upsampling every channel.

What ``F.interpolate(x[None], size, mode="bilinear", align_corners=False)[0].argmax(0)``
computes (transformers' semantic post-processing), done
per 2x2 cell of the source: only the channels that can win in a cell are interpolated.
"""

from __future__ import annotations

import numpy as np

# Work on at most this many (pixel, class) values at a time (4 MiB of float32: stays in cache).
CHUNK_ELEMENTS = 1 << 20


def upsample_argmax(logits: np.ndarray, size: tuple[int, int], *, scale: np.ndarray | None = None,
                    chunk_elements: int = CHUNK_ELEMENTS) -> np.ndarray:
    """argmax over classes of ``logits`` (C, h, w) upsampled bilinearly to ``size``: (H, W) int32.

    What ``post_process_semantic_segmentation`` computes (``F.interpolate(..., "bilinear",
    align_corners=False)`` then ``argmax``) without upsampling every class: each output pixel
    is a convex mix of one 2x2 cell of logits, so only the classes whose largest corner
    reaches every other class's smallest corner in that cell can win there. A cell with one
    such class takes it; in the others only the few candidates are interpolated, with
    PyTorch's index and weight formulas and order of operations (the same floats in our tests;
    at worst a rounding apart), and ties go to the lowest class id as in ``argmax``.
    ``scale`` (C,) > 0 multiplies each class after upsampling (e.g. mask probabilities times
    each query's score). numpy, single-threaded: these are many small memory-bound steps, where an OpenMP team
    costs more than it gains (and stalls whenever another process holds a core).
    """
    logits = np.ascontiguousarray(logits, dtype=np.float32)
    _, h, w = logits.shape
    height, width = size
    weights = None if scale is None else np.asarray(scale, dtype=np.float32)
    ids, counts = _cell_candidates(logits if weights is None else logits * weights[:, None, None])
    rows, row_weight = _source_index(h, height)
    cols, col_weight = _source_index(w, width)
    flat = np.empty(height * width + 1, dtype=np.int32)  # the last slot takes padding writes
    flat[:-1].reshape(height, width)[:] = ids[:, 0].reshape(h, w)[rows][:, cols]  # right where one class can win
    kmax = ids.shape[1]
    padded = np.pad(logits, ((0, 0), (0, 1), (0, 1)), mode="edge").reshape(-1)
    row_start, row_len = _runs(rows, h)
    col_start, col_len = _runs(cols, w)
    by, bx = int(row_len.max()), int(col_len.max())  # pixels per cell, at most
    corner_offsets = np.array([0, 1, w + 1, w + 2])[:, None]
    ry, rx = np.arange(by), np.arange(bx)
    # cells some pixel reads (all of them, unless the image is smaller than the logits)
    read = ((row_len > 0)[:, None] & (col_len > 0)[None, :]).reshape(-1)
    low = 1
    while low < kmax:  # cells by number of candidates: (1, 2], (2, 4], (4, 8], ...
        k = min(2 * low, kmax)
        cells = np.flatnonzero((counts > low) & (counts <= k) & read)
        step = max(1, chunk_elements // (k * by * bx))
        for part in (cells[i:i + step] for i in range(0, len(cells), step)):
            ci, cj = part // w, part % w
            cls = ids[part, :k]  # (n, k), ascending, padded with the first
            base = cls * ((h + 1) * (w + 1)) + (ci * (w + 1) + cj)[:, None]
            corners = padded[base[:, None, :] + corner_offsets][:, None, None]  # (n, 1, 1, 4, k)
            y = row_start[ci, None] + ry  # (n, by)
            x = col_start[cj, None] + rx  # (n, bx)
            fy = row_weight[np.minimum(y, height - 1)][:, :, None, None]
            fx = col_weight[np.minimum(x, width - 1)][:, None, :, None]
            top = corners[..., 0, :] * (1 - fx) + corners[..., 1, :] * fx  # (n, 1, bx, k)
            bottom = corners[..., 2, :] * (1 - fx) + corners[..., 3, :] * fx
            value = (1 - fy) * top + fy * bottom  # (n, by, bx, k)
            if weights is not None:
                value = value * weights[cls][:, None, None, :]
            best = value.argmax(-1)  # (n, by, bx): first index among ties
            inside = (ry < row_len[ci, None])[:, :, None] & (rx < col_len[cj, None])[:, None, :]
            target = np.where(inside, y[:, :, None] * width + x[:, None, :], height * width)
            flat[target.reshape(-1)] = np.take_along_axis(cls, best.reshape(len(part), -1), 1).reshape(-1)
        low = k
    return flat[:-1].reshape(height, width)


def _cell_candidates(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per 2x2 cell (row-major, ``h * w`` of them, edges replicated): the classes that can win
    there, ascending and padded with the first to the largest count, (cells, k); and the counts."""
    classes = logits.shape[0]
    padded = np.pad(logits, ((0, 0), (0, 1), (0, 1)), mode="edge")
    row_max = np.maximum(padded[:, :, :-1], padded[:, :, 1:])
    row_min = np.minimum(padded[:, :, :-1], padded[:, :, 1:])
    high = np.maximum(row_max[:, :-1], row_max[:, 1:]).reshape(classes, -1)  # (C, cells)
    low = np.minimum(row_min[:, :-1], row_min[:, 1:]).reshape(classes, -1)
    margin = 1e-5 * float(np.abs(logits).max()) + 1e-6  # covers float rounding of the bilinear mix
    cell, cls = np.nonzero((high >= low.max(0) - margin).T)  # by cell, then ascending class; >= 1 per cell
    counts = np.bincount(cell, minlength=high.shape[1])
    starts = np.cumsum(counts) - counts
    ids = np.repeat(cls[starts][:, None], int(counts.max()), axis=1)
    ids[cell, np.arange(len(cell)) - starts[cell]] = cls
    return ids, counts


def _source_index(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's bilinear source index (``align_corners=False``) per output index, and the next one's weight."""
    scale = np.float32(n_in) / np.float32(n_out)
    half = np.float32(0.5)
    src = np.maximum((np.arange(n_out, dtype=np.float32) + half) * scale - half, np.float32(0))
    index = np.minimum(src.astype(np.int64), n_in - 1)
    return index, np.clip(src - index, 0, 1).astype(np.float32)


def _runs(index: np.ndarray, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """For each source index: the first output index that reads it, and how many do (``index`` is sorted)."""
    grid = np.arange(n_in)
    start = np.searchsorted(index, grid)
    return start, np.searchsorted(index, grid, side="right") - start
