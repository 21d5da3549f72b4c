"""EoMT's model input, as transformers 5's ``EomtImageProcessor`` builds it.

Resize with the aspect kept (short side ``shortest_edge``, long side at most ``longest_edge``),
then either split the image into square windows of the short side's size along its long side,
evenly overlapping (``do_split_image``, the semantic checkpoints), or pad it with zeros at the
bottom and right to ``shortest_edge`` x ``longest_edge`` (``do_pad``, the panoptic and instance
checkpoints; EoMT's position embeddings fix its input size). Both happen on the uint8 pixels,
before rescale and normalise, as in the processor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from segmentkit.runtime.pixels import resize_uint8, to_tensor

from .processing import Preprocessing


@dataclass(frozen=True)
class Windows:
    """Where each window of a split image lies along its long side: ``[start, end)`` per window."""

    spans: tuple[tuple[int, int], ...]
    vertical: bool  # the image is taller than wide: windows stack top to bottom


@dataclass(frozen=True)
class EomtInput:
    """The model input of one image and what post-processing needs to map masks back."""

    pixel_values: torch.Tensor  # (N, 3, h, w) float32, N windows (1 unless split)
    resized: tuple[int, int]  # the image's size after the resize, before padding or splitting
    windows: Windows | None


def output_size(prep: Preprocessing) -> tuple[int, int]:
    """The size transformers resizes mask logits to first: (shortest_edge, longest_edge or shortest_edge)."""
    short = prep.shortest_edge or 0
    return short, prep.longest_edge or short


def window_spans(length: int, window: int) -> tuple[tuple[int, int], ...]:
    """Windows of ``window`` pixels covering ``length``, overlapping evenly (``EomtImageProcessor._split_image``)."""
    count = math.ceil(length / window)
    overlap = (count * window - length) / (count - 1) if count > 1 else 0
    return tuple((int(i * (window - overlap)), int(i * (window - overlap)) + window) for i in range(count))


def eomt_input(image: np.ndarray, prep: Preprocessing, *, split: bool) -> EomtInput:
    """(H, W, 3) uint8 image -> model input; ``split`` windows the image when the config says so."""
    pixels = to_tensor(image)
    if prep.do_resize:
        pixels = resize_uint8(pixels, prep.target_size(image.shape[0], image.shape[1]))
    resized = (int(pixels.shape[2]), int(pixels.shape[3]))
    windows = None
    if split and prep.do_split_image:
        vertical = resized[0] > resized[1]
        spans = window_spans(max(resized), prep.shortest_edge or min(resized))
        windows = Windows(spans, vertical)
        pixels = torch.cat([pixels[:, :, a:b] if vertical else pixels[:, :, :, a:b] for a, b in spans])
    if prep.do_pad:
        height, width = output_size(prep)
        pixels = F.pad(pixels, (0, max(0, width - pixels.shape[3]), 0, max(0, height - pixels.shape[2])))
    return EomtInput(prep.normalization(pixels), resized, windows)
