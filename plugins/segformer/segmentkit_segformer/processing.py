"""SegFormer pre- and postprocessing in torch, as transformers 5's ``SegformerImageProcessor`` does.

Preprocessing resizes the uint8 image with torch's antialiased bilinear kernel (what the
processor's torchvision backend runs; bit-exact), then rescales and normalises in float32.
Postprocessing upsamples the logits to the image size once (bilinear, ``align_corners=False``)
and takes the argmax, like ``post_process_semantic_segmentation``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from segmentkit.errors import WeightsUnavailableError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BILINEAR = 2  # PIL.Image.Resampling.BILINEAR, the `resample` value processors store


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
        raw: dict[str, Any] = {}
        if path.is_file():
            try:
                raw = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise WeightsUnavailableError(f"{path} is not valid JSON: {exc}") from None
        resample = raw.get("resample", BILINEAR)
        if resample != BILINEAR:
            raise WeightsUnavailableError(f"{path}: resample={resample!r} is not supported (only bilinear, 2)")
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

# Upsample at most this many float32 elements (classes x H x W) at a time.
CHUNK_ELEMENTS = 1 << 26


def upsample_argmax(logits: torch.Tensor, size: tuple[int, int], *,
                    chunk_elements: int = CHUNK_ELEMENTS) -> torch.Tensor:
    """argmax over classes of ``logits`` (C, h, w) upsampled bilinearly to ``size``: (H, W) int64.

    What ``post_process_semantic_segmentation`` computes (``F.interpolate(..., "bilinear")``
    then ``argmax``) without holding every class at full size: classes are upsampled a chunk at
    a time, channels-last (the argmax then reads contiguous memory; values match the NCHW
    kernel's to 1e-6, so only near-exact ties can differ), and a running maximum is kept.
    Classes that cannot win anywhere are skipped: a bilinear value is a convex mix of its 2x2
    source cell, so a class whose largest corner is below another class's smallest corner in
    every cell never wins.
    """
    classes = _candidates(logits)
    sub = logits[classes] if len(classes) < logits.shape[0] else logits
    step = max(1, chunk_elements // (size[0] * size[1]))
    best_value: torch.Tensor | None = None
    best = torch.zeros(size, dtype=torch.int64)
    for start in range(0, sub.shape[0], step):
        chunk = sub[None, start:start + step].contiguous(memory_format=torch.channels_last)
        up = F.interpolate(chunk, size=size, mode="bilinear", align_corners=False)[0]
        value, index = up.permute(1, 2, 0).max(-1)  # classes contiguous; first index among ties
        if best_value is None:
            best_value, best = value, index
            continue
        better = value > best_value  # strict: an earlier class keeps a tie
        best_value = torch.where(better, value, best_value)
        best = torch.where(better, index + start, best)
    return best if sub is logits else classes[best]


def _candidates(logits: torch.Tensor) -> torch.Tensor:
    """Ids of the classes that can be the argmax somewhere after bilinear upsampling."""
    padded = F.pad(logits[None], (0, 1, 0, 1), mode="replicate")
    high = F.max_pool2d(padded, 2, stride=1)[0]
    low = -F.max_pool2d(-padded, 2, stride=1)[0]
    margin = 1e-5 * float(logits.abs().amax()) + 1e-6  # covers float rounding of the bilinear mix
    return (high >= low.amax(0) - margin).flatten(1).any(1).nonzero().flatten()
