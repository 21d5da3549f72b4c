"""Mask-classification preprocessing in torch, as transformers 5's ``Mask2FormerImageProcessor``
and ``EomtImageProcessor`` do.

Resize (antialiased bilinear on uint8, what the torchvision backend runs, bit-exact; the
hub checkpoints ask for ``resample=2``, bilinear, like the class default), round the size up
to ``size_divisor`` (Mask2Former), rescale and normalise in float32 (the shared steps of
:mod:`segmentkit.runtime.pixels`). A single Mask2Former image needs no padding; EoMT pads or
splits into windows (:mod:`.eomt_processing`), which the config's ``do_pad`` and
``do_split_image`` say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from segmentkit.checkpoints import read_preprocessor_config
from segmentkit.errors import WeightsUnavailableError
from segmentkit.runtime.pixels import IMAGENET, Normalization, resize_uint8, to_tensor

LEGACY_MAX_SIZE = 1333  # the longest edge an int `size` implied in older processors


@dataclass(frozen=True)
class Preprocessing:
    """The fields of a ``preprocessor_config.json`` that change the pixels the model sees.

    Either ``height`` and ``width`` (a fixed size) or ``shortest_edge`` and ``longest_edge``
    (aspect kept) are set.
    """

    height: int | None = None
    width: int | None = None
    shortest_edge: int | None = None
    longest_edge: int | None = None
    size_divisor: int = 32
    do_resize: bool = True
    do_pad: bool = False
    do_split_image: bool = False
    normalization: Normalization = IMAGENET

    @classmethod
    def from_dir(cls, folder: Path, default_size: dict[str, int], *, size_divisor: int = 32,
                 max_size: int | None = LEGACY_MAX_SIZE) -> Preprocessing:
        """Read ``folder/preprocessor_config.json``; the processor class's defaults where it is silent.

        ``default_size``, ``size_divisor`` and ``max_size`` (the longest edge when ``size`` names
        none) are those defaults: Mask2Former's unless an EoMT loader passes its own.
        """
        path = folder / "preprocessor_config.json"
        raw = read_preprocessor_config(folder)
        size = raw.get("size", default_size)
        max_size = raw.get("max_size", raw.get("_max_size", max_size))
        if isinstance(size, int):
            size = {"shortest_edge": size, "longest_edge": max_size}
        if not isinstance(size, dict):
            raise WeightsUnavailableError(f"{path}: size={size!r} is not supported")
        if "height" in size and "width" in size:
            dims: dict[str, int] = {"height": int(size["height"]), "width": int(size["width"])}
        elif "shortest_edge" in size:
            longest = size.get("longest_edge") or max_size
            dims = {"shortest_edge": int(size["shortest_edge"]),
                    "longest_edge": None if longest is None else int(longest)}
        else:
            raise WeightsUnavailableError(f"{path}: size={size!r} is not supported")
        return cls(
            **dims,
            size_divisor=int(raw.get("size_divisor", size_divisor) or 0),
            do_resize=bool(raw.get("do_resize", True)),
            do_pad=bool(raw.get("do_pad", False)),
            do_split_image=bool(raw.get("do_split_image", False)),
            normalization=Normalization.from_config(raw),
        )

    def target_size(self, height: int, width: int) -> tuple[int, int]:
        """The resized (height, width) of an image, as the processors' ``resize``."""
        if self.height is not None and self.width is not None:
            size = (self.height, self.width)
        else:
            size = aspect_size(height, width, self.shortest_edge or 0, self.longest_edge)
            size = (max(1, size[0]), max(1, size[1]))  # a thin strip would round to 0 (transformers fails there)
        if self.size_divisor > 0:
            d = self.size_divisor
            size = (math.ceil(size[0] / d) * d, math.ceil(size[1] / d) * d)
        return size


def aspect_size(height: int, width: int, size: int, max_size: int | None) -> tuple[int, int]:
    """``transformers.image_transforms.get_size_with_aspect_ratio``.

    Short side ``size``, long side at most ``max_size``.
    """
    raw_size = None
    if max_size is not None:
        short, long = float(min(height, width)), float(max(height, width))
        if long / short * size > max_size:
            raw_size = max_size * short / long
            size = round(raw_size)
    if (height <= width and height == size) or (width <= height and width == size):
        return height, width
    if width < height:
        return (int(raw_size * height / width) if raw_size is not None else int(size * height / width)), size
    return size, (int(raw_size * width / height) if raw_size is not None else int(size * width / height))


def preprocess(image: np.ndarray, prep: Preprocessing) -> torch.Tensor:
    """(H, W, 3) uint8 image -> (1, 3, h, w) float32 model input."""
    pixels = to_tensor(image)
    if prep.do_resize:
        pixels = resize_uint8(pixels, prep.target_size(image.shape[0], image.shape[1]))
    return prep.normalization(pixels)
