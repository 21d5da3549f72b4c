"""SegFormer pre- and postprocessing in torch, as transformers 5's ``SegformerImageProcessor`` does.

Preprocessing resizes the uint8 image with torch's antialiased bilinear kernel (what the
processor's torchvision backend runs; bit-exact), then rescales and normalises in float32.
The argmax of the logits upsampled to the image size is
:func:`segmentkit.runtime.upsample.upsample_argmax`; the shared pixel steps are
:mod:`segmentkit.runtime.pixels`. This module adds the sliding-window layout.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from segmentkit.checkpoints import read_preprocessor_config
from segmentkit.errors import WeightsUnavailableError
from segmentkit.runtime.pixels import IMAGENET, Normalization, resize_uint8, to_tensor


@dataclass(frozen=True)
class Preprocessing:
    """The fields of a ``preprocessor_config.json`` that change the pixels the model sees."""

    height: int
    width: int
    do_resize: bool = True
    normalization: Normalization = IMAGENET

    @classmethod
    def from_dir(cls, folder: Path, default_size: int) -> Preprocessing:
        """Read ``folder/preprocessor_config.json``; the processor's defaults where it is absent."""
        path = folder / "preprocessor_config.json"
        raw = read_preprocessor_config(folder)
        height, width = _square_size(raw.get("size", default_size), path)
        return cls(height=height, width=width, do_resize=bool(raw.get("do_resize", True)),
                   normalization=Normalization.from_config(raw))

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


def preprocess(image: np.ndarray, prep: Preprocessing) -> torch.Tensor:
    """(H, W, 3) uint8 image -> (1, 3, h, w) float32 model input."""
    pixels = to_tensor(image)
    if prep.do_resize:
        pixels = resize_uint8(pixels, prep.size)
    return prep.normalization(pixels)


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
    pixels = resize_uint8(to_tensor(image), layout.scaled)
    wh, ww = layout.window
    total: torch.Tensor | None = None
    count = torch.zeros(1, layout.scaled[0] // stride, layout.scaled[1] // stride)
    for chunk in _chunks(layout.offsets, batch):
        crops = torch.cat([pixels[..., y:y + wh, x:x + ww] for y, x in chunk])
        logits = run(prep.normalization(crops))
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
