"""RoI Align in plain torch, for SAM 3's exemplar boxes where torchvision is not installed.

transformers' ``Sam3GeometryEncoder`` pools each exemplar box's features with
``torchvision.ops.roi_align`` (the only torchvision call on SAM 3's inference path).
torchvision does not install next to the project's CPU torch, so :func:`install` gives
transformers' module this implementation of the same operator when torchvision is absent.
Semantics follow torchvision's: bins of ``roi / output_size``, ``ceil(roi / output_size)``
bilinear samples per bin when ``sampling_ratio <= 0``, samples outside ``[-1, size]``
count as zero, ``aligned=False`` keeps boxes at least one cell wide.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch


def roi_align(features: torch.Tensor, boxes: list[torch.Tensor] | torch.Tensor, output_size: int | tuple[int, int],
              spatial_scale: float = 1.0, sampling_ratio: int = -1, aligned: bool = False) -> torch.Tensor:
    """(K, C, ph, pw) pooled features of ``boxes`` (one (K_b, 4) XYXY tensor per image, or (K, 5) rows)."""
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else output_size
    if isinstance(boxes, torch.Tensor):
        rows = [(int(r[0]), r[1:]) for r in boxes]
    else:
        rows = [(b, box) for b, per_image in enumerate(boxes) for box in per_image]
    pooled = [_one(features[b], box, ph, pw, spatial_scale, sampling_ratio, aligned) for b, box in rows]
    if not pooled:
        return features.new_zeros((0, features.shape[1], ph, pw))
    return torch.stack(pooled)


def install() -> None:
    """Give transformers' SAM 3 module this RoI Align when torchvision is not importable."""
    from transformers.models.sam3 import modeling_sam3

    if not hasattr(modeling_sam3, "torchvision"):
        modeling_sam3.torchvision = SimpleNamespace(ops=SimpleNamespace(roi_align=roi_align))


def _one(fmap: torch.Tensor, box: torch.Tensor, ph: int, pw: int, scale: float, ratio: int,
         aligned: bool) -> torch.Tensor:
    channels, height, width = fmap.shape
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (float(v) * scale - offset for v in box)
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    grid_h = ratio if ratio > 0 else max(math.ceil(roi_h / ph), 1)
    grid_w = ratio if ratio > 0 else max(math.ceil(roi_w / pw), 1)
    ys = _samples(y1, roi_h / ph, ph, grid_h, fmap.device)
    xs = _samples(x1, roi_w / pw, pw, grid_w, fmap.device)
    y_lo, y_hi, wy, y_ok = _axis(ys, height)
    x_lo, x_hi, wx, x_ok = _axis(xs, width)
    rows_lo, rows_hi = fmap[:, y_lo], fmap[:, y_hi]  # (C, Y, W)
    value = ((1 - wy)[:, None] * ((1 - wx) * rows_lo[:, :, x_lo] + wx * rows_lo[:, :, x_hi])
             + wy[:, None] * ((1 - wx) * rows_hi[:, :, x_lo] + wx * rows_hi[:, :, x_hi]))
    value = value * (y_ok[:, None] & x_ok[None, :]).to(value.dtype)
    return value.view(channels, ph, grid_h, pw, grid_w).sum((2, 4)) / (grid_h * grid_w)


def _samples(start: float, bin_size: float, bins: int, grid: int, device: torch.device) -> torch.Tensor:
    """Sample coordinates along one axis, bin-major: ``start + i*bin + (k+0.5)*bin/grid``."""
    i = torch.arange(bins, dtype=torch.float32, device=device)[:, None]
    k = torch.arange(grid, dtype=torch.float32, device=device)[None, :]
    return (start + i * bin_size + (k + 0.5) * bin_size / grid).reshape(-1)


def _axis(coords: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Low / high neighbour indices, the high neighbour's weight and validity of each coordinate."""
    valid = (coords >= -1.0) & (coords <= size)
    coords = coords.clamp(min=0.0)
    low = coords.floor().long()
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    coords = torch.where(at_edge, low.to(coords.dtype), coords)
    return low, high, coords - low.to(coords.dtype), valid
