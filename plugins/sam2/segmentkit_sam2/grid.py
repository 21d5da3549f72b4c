"""Point grids and crop boxes of SAM's automatic mask generator."""

from __future__ import annotations

import math
from itertools import product

import torch


def point_grid(n_per_side: int) -> torch.Tensor:
    """(n*n, 2) float32 points evenly spaced in [0, 1]^2 (cell centres), x varying fastest."""
    offset = 1 / (2 * n_per_side)
    side = torch.linspace(offset, 1 - offset, n_per_side)
    xs = side[None, :].expand(n_per_side, n_per_side)
    ys = side[:, None].expand(n_per_side, n_per_side)
    return torch.stack([xs, ys], dim=-1).reshape(-1, 2)


def crop_boxes(image_hw: tuple[int, int], n_layers: int,
               overlap_ratio: float) -> list[tuple[tuple[int, int, int, int], int]]:
    """[(XYXY crop box, layer)]: the whole image (layer 0), then (2**i)**2 overlapping crops per layer i."""
    h, w = image_hw
    short = min(h, w)
    boxes = [((0, 0, w, h), 0)]
    for layer in range(n_layers):
        per_side = 2 ** (layer + 1)
        overlap = int(overlap_ratio * short * (2 / per_side))
        crop_w = math.ceil((overlap * (per_side - 1) + w) / per_side)
        crop_h = math.ceil((overlap * (per_side - 1) + h) / per_side)
        x0s = [int((crop_w - overlap) * i) for i in range(per_side)]
        y0s = [int((crop_h - overlap) * i) for i in range(per_side)]
        boxes += [((x0, y0, min(x0 + crop_w, w), min(y0 + crop_h, h)), layer + 1) for x0, y0 in product(x0s, y0s)]
    return boxes


def near_crop_edge(boxes: torch.Tensor, crop: tuple[int, int, int, int], image_hw: tuple[int, int],
                   atol: float = 20.0) -> torch.Tensor:
    """(N,) bool: boxes (image coordinates) touching a crop edge that is not an image edge."""
    crop_t = torch.tensor(crop, dtype=torch.float32, device=boxes.device)
    image_t = torch.tensor([0, 0, image_hw[1], image_hw[0]], dtype=torch.float32, device=boxes.device)
    near_crop = torch.isclose(boxes, crop_t[None], atol=atol, rtol=0)
    near_image = torch.isclose(boxes, image_t[None], atol=atol, rtol=0)
    return (near_crop & ~near_image).any(dim=1)
