"""SegFormer pre- and postprocessing in torch, as transformers 5's ``SegformerImageProcessor`` does.

Preprocessing resizes the uint8 image with torch's antialiased bilinear kernel (what the
processor's torchvision backend runs; bit-exact), then rescales and normalises in float32.
Postprocessing computes the argmax of the logits upsampled to the image size (bilinear,
``align_corners=False``), as ``post_process_semantic_segmentation`` does, interpolating only
the classes that can win in each cell of logits (``upsample_argmax``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from segmentkit.checkpoints import read_preprocessor_config
from segmentkit.errors import WeightsUnavailableError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """The fields of a ``preprocessor_config.json`` that change the pixels the model sees."""

    height: int
    width: int
    do_resize: bool = True
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple[float, ...] = IMAGENET_MEAN
    image_std: tuple[float, ...] = IMAGENET_STD

    @classmethod
    def from_dir(cls, folder: Path, default_size: int) -> Preprocessing:
        """Read ``folder/preprocessor_config.json``; the processor's defaults where it is absent."""
        path = folder / "preprocessor_config.json"
        raw = read_preprocessor_config(folder)
        height, width = _square_size(raw.get("size", default_size), path)
        return cls(
            height=height, width=width,
            do_resize=bool(raw.get("do_resize", True)),
            do_rescale=bool(raw.get("do_rescale", True)),
            rescale_factor=float(raw.get("rescale_factor", 1 / 255)),
            do_normalize=bool(raw.get("do_normalize", True)),
            image_mean=tuple(float(v) for v in raw.get("image_mean", IMAGENET_MEAN)),
            image_std=tuple(float(v) for v in raw.get("image_std", IMAGENET_STD)),
        )

    @property
    def size(self) -> tuple[int, int]:
        return (self.height, self.width)


def _square_size(size: Any, path: Path) -> tuple[int, int]:
    # SegformerImageProcessor has default_to_square=True: an int means (size, size).
    if isinstance(size, int):
        return size, size
    if isinstance(size, dict) and "height" in size and "width" in size:
        return int(size["height"]), int(size["width"])
    raise WeightsUnavailableError(f"{path}: size={size!r} is not supported (an int or height/width)")


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) uint8 (one copy; the input may be read-only)."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]


def resize(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of a uint8 (N, 3, H, W) tensor, as the processors do."""
    if tuple(pixels.shape[-2:]) == tuple(size):
        return pixels
    return F.interpolate(pixels, size=size, mode="bilinear", antialias=True, align_corners=False)


def normalize(pixels: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """uint8 -> float32 ``(x * rescale - mean) / std``, fused the way the torchvision backend does."""
    x = pixels.to(torch.float32)
    mean = torch.tensor(prep.image_mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(prep.image_std, dtype=torch.float32).view(1, -1, 1, 1)
    if prep.do_rescale and prep.do_normalize:
        return (x - mean * (1.0 / prep.rescale_factor)) / (std * (1.0 / prep.rescale_factor))
    if prep.do_normalize:
        return (x - mean) / std
    if prep.do_rescale:
        return x * prep.rescale_factor
    return x


def preprocess(image: np.ndarray, prep: Preprocessing) -> torch.Tensor:
    """(H, W, 3) uint8 image -> (1, 3, h, w) float32 model input."""
    pixels = to_tensor(image)
    if prep.do_resize:
        pixels = resize(pixels, prep.size)
    return normalize(pixels, prep)


# --------------------------------------------------------------------------- sliding window


@dataclass(frozen=True)
class Windows:
    """Window layout over an image scaled to ``scaled`` (both sides multiples of the output stride)."""

    scaled: tuple[int, int]
    window: tuple[int, int]
    offsets: tuple[tuple[int, int], ...]


def plan_windows(image_size: tuple[int, int], window: tuple[int, int], overlap: float,
                 align: int = 4) -> Windows | None:
    """Windows over an image larger than one window, shrunk so its short side fits a window.

    None when the image is not larger than the window on both sides (it runs whole). Sides are
    rounded to multiples of ``align`` (the model's output stride) so every window's logits land
    on whole cells of the merged logit map.
    """
    h, w = image_size
    wh, ww = window
    if h <= wh or w <= ww:
        return None
    scale = max(wh / h, ww / w)
    sh = max(wh, round(h * scale / align) * align)
    sw = max(ww, round(w * scale / align) * align)
    if (sh, sw) == (wh, ww):
        return None
    return Windows((sh, sw), window, tuple(
        (y, x) for y in _starts(sh, wh, overlap, align) for x in _starts(sw, ww, overlap, align)
    ))


def _starts(total: int, size: int, overlap: float, align: int) -> list[int]:
    stride = max(align, int(size * (1.0 - overlap)) // align * align)
    count = max(1, math.ceil((total - size) / stride) + 1)
    return sorted({min(i * stride, total - size) for i in range(count)})


def sliding_logits(image: np.ndarray, prep: Preprocessing, layout: Windows, batch: int,
                   run: Callable[[torch.Tensor], torch.Tensor], stride: int = 4) -> torch.Tensor:
    """Average of the windows' logits on the scaled image's logit grid: (C, H'/stride, W'/stride)."""
    pixels = resize(to_tensor(image), layout.scaled)
    wh, ww = layout.window
    total: torch.Tensor | None = None
    count = torch.zeros(1, layout.scaled[0] // stride, layout.scaled[1] // stride)
    for chunk in _chunks(layout.offsets, batch):
        crops = torch.cat([pixels[..., y:y + wh, x:x + ww] for y, x in chunk])
        logits = run(normalize(crops, prep))
        if total is None:
            total = torch.zeros(logits.shape[1], *count.shape[1:])
        lh, lw = logits.shape[-2:]
        for (y, x), cell in zip(chunk, logits):
            cy, cx = y // stride, x // stride
            total[:, cy:cy + lh, cx:cx + lw] += cell
            count[:, cy:cy + lh, cx:cx + lw] += 1
    if total is None:
        raise ValueError("no windows planned")
    return total / count


def _chunks(items: tuple[Any, ...], size: int) -> Iterator[tuple[Any, ...]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --------------------------------------------------------------------------- upsample + argmax

# Work on at most this many (pixel, class) values at a time (4 MiB of float32: stays in cache).
CHUNK_ELEMENTS = 1 << 20


def upsample_argmax(logits: np.ndarray, size: tuple[int, int], *,
                    chunk_elements: int = CHUNK_ELEMENTS) -> np.ndarray:
    """argmax over classes of ``logits`` (C, h, w) upsampled bilinearly to ``size``: (H, W) int32.

    What ``post_process_semantic_segmentation`` computes (``F.interpolate(..., "bilinear",
    align_corners=False)`` then ``argmax``) without upsampling every class: each output pixel
    is a convex mix of one 2x2 cell of logits, so only the classes whose largest corner
    reaches every other class's smallest corner in that cell can win there. A cell with one
    such class takes it; in the others only the few candidates are interpolated, with
    PyTorch's index and weight formulas and order of operations (the same floats in our tests;
    at worst a rounding apart), and ties go to the lowest class id as in ``argmax``.
    numpy, single-threaded: these are many small memory-bound steps, where an OpenMP team
    costs more than it gains (and stalls whenever another process holds a core).
    """
    logits = np.ascontiguousarray(logits, dtype=np.float32)
    _, h, w = logits.shape
    height, width = size
    ids, counts = _cell_candidates(logits)
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
            best = ((1 - fy) * top + fy * bottom).argmax(-1)  # (n, by, bx): first index among ties
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
