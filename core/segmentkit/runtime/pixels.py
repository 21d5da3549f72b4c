"""Pixels in, model input out, as transformers 5's image processors' torchvision backend does it.

- :func:`to_tensor`: (H, W, 3) uint8 -> (1, 3, H, W) uint8;
- :func:`resize_uint8`: torch's antialiased bilinear kernel on the uint8 tensor (bit-exact
  with the processors; a float resize is a grey level off in places);
- :class:`Normalization`: rescale + normalise in float32, fused as ``(x - mean / r) / (std / r)``
  when both are on (the processors' order of operations, so the floats match).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Normalization:
    """The ``preprocessor_config.json`` fields that map uint8 pixels to the model's floats."""

    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple[float, ...] = IMAGENET_MEAN
    image_std: tuple[float, ...] = IMAGENET_STD

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> Normalization:
        """From a parsed ``preprocessor_config.json``; the processors' defaults where absent."""
        return cls(
            do_rescale=bool(raw.get("do_rescale", True)),
            rescale_factor=float(raw.get("rescale_factor", 1 / 255)),
            do_normalize=bool(raw.get("do_normalize", True)),
            image_mean=tuple(float(v) for v in raw.get("image_mean", IMAGENET_MEAN)),
            image_std=tuple(float(v) for v in raw.get("image_std", IMAGENET_STD)),
        )

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) -> float32 model input."""
        x = pixels.to(torch.float32)
        mean = torch.tensor(self.image_mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(self.image_std, dtype=torch.float32).view(1, -1, 1, 1)
        if self.do_rescale and self.do_normalize:
            return (x - mean * (1.0 / self.rescale_factor)) / (std * (1.0 / self.rescale_factor))
        if self.do_normalize:
            return (x - mean) / std
        return x * self.rescale_factor if self.do_rescale else x


IMAGENET = Normalization()


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) uint8 (one copy; the input may be read-only)."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]


def resize_uint8(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of a uint8 (N, C, H, W) tensor to ``size`` (no-op when equal)."""
    if tuple(pixels.shape[-2:]) == tuple(size):
        return pixels
    return F.interpolate(pixels, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)
