"""Pictures of results: mask overlays, cut-outs and palette label maps.

>>> sk.render.overlay("photo.jpg", masks).save("overlay.png")   # doctest: +SKIP

Colours are stable: a mask is coloured by its object id, else its class id for fixed-label
results (semantic, panoptic), else its index, so the same object or class keeps its
colour across frames and images.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .io.image import load_image
from .types import FrameMasks, Mask, Masks, Segmentation

# Twenty colours chosen to be told apart (Sasha Trubetskoy's list); golden-ratio hues after.
_DISTINCT = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180),
    (0, 0, 128), (128, 128, 128),
)


def color(index: int) -> tuple[int, int, int]:
    """The colour of mask, object or class ``index`` (deterministic, distinct neighbours)."""
    index = int(index)
    if 0 <= index < len(_DISTINCT):
        return _DISTINCT[index]
    hue = (index * 0.618033988749895) % 1.0
    sat = 0.65 + 0.35 * ((index * 7) % 3) / 2
    r, g, b = colorsys.hsv_to_rgb(hue, sat, 0.95)
    return (round(r * 255), round(g * 255), round(b * 255))


@dataclass(frozen=True)
class _Layer:
    mask: np.ndarray  # (H, W) bool
    color: tuple[int, int, int]
    name: str | None


def _layers(result: Any, size: tuple[int, int]) -> tuple[list[_Layer], bool]:
    """Coloured layers of ``result`` and whether it is a fixed-label result (legend default)."""
    if isinstance(result, FrameMasks):
        result = result.masks
    if isinstance(result, Mask):
        result = [result]
    if isinstance(result, Sequence) and not isinstance(result, np.ndarray) and all(
        isinstance(m, Mask) for m in result
    ):
        result = Masks(
            np.stack([m.mask for m in result]) if result else np.zeros((0, *size), bool),
            class_ids=None if any(m.class_id is None for m in result) or not result
            else [m.class_id for m in result],
            object_ids=None if any(m.object_id is None for m in result) or not result
            else [m.object_id for m in result],
            id2label={m.class_id: m.label for m in result if m.class_id is not None and m.label},
        )
    if isinstance(result, np.ndarray):
        if result.ndim == 2 and result.dtype != bool:  # a label map without names
            return _label_map_layers(result, {}), True
        arr = result[None] if result.ndim == 2 else result
        result = Masks(arr.astype(bool))
    if isinstance(result, Segmentation):
        if result.kind == "semantic" and result.label_map is not None:
            return _label_map_layers(result.label_map, result.id2label), True
        by_class = result.kind in ("semantic", "panoptic") and result.masks.class_ids is not None
        names = {**result.masks.id2label, **result.id2label}
        return _mask_layers(result.masks, names, by_class), by_class
    if isinstance(result, Masks):
        return _mask_layers(result, result.id2label, by_class=False), False
    raise TypeError(f"cannot draw {type(result).__name__}; pass Masks, Segmentation, Mask or an array")


def _label_map_layers(label_map: np.ndarray, id2label: dict[int, str]) -> list[_Layer]:
    ids = np.unique(label_map)
    return [_Layer(label_map == i, color(int(i)), id2label.get(int(i), str(int(i)))) for i in ids]


def _mask_layers(masks: Masks, id2label: dict[int, str], by_class: bool) -> list[_Layer]:
    layers = []
    for i in range(len(masks)):
        class_id = None if masks.class_ids is None else int(masks.class_ids[i])
        name = None if class_id is None else id2label.get(class_id, str(class_id))
        if masks.object_ids is not None:
            key = int(masks.object_ids[i])
        elif by_class and class_id is not None:
            key = class_id
        else:
            key = i
        layers.append(_Layer(masks.masks[i], color(key), name))
    return layers


def _boundary(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels of ``mask`` within ``width`` pixels of its edge (inside the mask only)."""
    inner = mask
    for _ in range(width):
        padded = np.pad(inner, 1, mode="edge")
        inner = (
            inner & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        )
    return mask & ~inner


def overlay(
    image: Any,
    masks_or_segmentation: Any,
    alpha: float = 0.5,
    outlines: bool = True,
    legend: bool | None = None,
) -> Image.Image:
    """The image with each mask tinted in its colour, outlined, and optionally a legend.

    ``masks_or_segmentation``: :class:`Masks`, :class:`Segmentation`, :class:`FrameMasks`,
    a :class:`Mask` or list of them, a bool (H, W) / (N, H, W) array or an int label map.
    ``legend=None`` draws a legend of the labels present for semantic / panoptic results.
    Pixels outside every mask (and outside the legend box) are left unchanged.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    rgb = load_image(image)
    size = rgb.shape[:2]
    layers, fixed_labels = _layers(masks_or_segmentation, size)
    for layer in layers:
        if layer.mask.shape != size:
            raise ValueError(f"mask is {layer.mask.shape}, image is {size}")
    out = rgb.astype(np.float32)
    # Large masks first so small ones stay visible on top.
    for layer in sorted(layers, key=lambda item: -int(item.mask.sum())):
        tint = np.asarray(layer.color, np.float32)
        out[layer.mask] = out[layer.mask] * (1.0 - alpha) + tint * alpha
    if outlines:
        width = max(1, round(min(size) / 400))
        for layer in layers:
            out[_boundary(layer.mask, width)] = layer.color
    picture = Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "RGB")
    show_legend = fixed_labels if legend is None else legend
    entries = list(dict.fromkeys((layer.name, layer.color) for layer in layers if layer.name is not None))
    if show_legend and entries:
        _draw_legend(picture, entries)
    return picture


def _draw_legend(picture: Image.Image, entries: list[tuple[str, tuple[int, int, int]]]) -> None:
    """Draw a legend box (swatch + label per entry) in the top-left corner, in place."""
    w, h = picture.size
    font_size = max(10, min(24, h // 40))
    font = ImageFont.load_default(size=font_size)
    pad, row = font_size // 2, font_size + font_size // 2
    rows = (h - 2 * pad) // row
    if rows < 1:
        return
    if len(entries) > rows:
        more = len(entries) - (rows - 1)
        entries = entries[: rows - 1] + [(f"+{more} more", (255, 255, 255))]
    text_w = max(int(ImageDraw.Draw(picture).textlength(name, font=font)) for name, _ in entries)
    box_w = min(w, 3 * pad + font_size + text_w)
    box_h = 2 * pad + row * len(entries)
    layer = Image.new("RGBA", picture.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    draw.rectangle((0, 0, box_w - 1, box_h - 1), fill=(0, 0, 0, 170))
    for k, (name, rgb) in enumerate(entries):
        y = pad + k * row
        draw.rectangle((pad, y, pad + font_size - 1, y + font_size - 1), fill=(*rgb, 255))
        draw.text((2 * pad + font_size, y), name, font=font, fill=(255, 255, 255, 255))
    picture.paste(Image.alpha_composite(picture.convert("RGBA"), layer).convert("RGB"))


def cutout(image: Any, mask: Any) -> Image.Image:
    """The image as RGBA with alpha 255 inside ``mask`` and 0 outside (background removed).

    ``mask``: a bool (H, W) array, a :class:`Mask`, or :class:`Masks` (their union).
    """
    rgb = load_image(image)
    if isinstance(mask, Mask):
        keep = mask.mask
    elif isinstance(mask, Masks):
        keep = mask.masks.any(axis=0) if len(mask) else np.zeros(mask.image_size, bool)
    else:
        keep = np.asarray(mask)
        if keep.ndim == 3:
            keep = keep.any(axis=0)
    keep = keep.astype(bool)
    if keep.shape != rgb.shape[:2]:
        raise ValueError(f"mask is {keep.shape}, image is {rgb.shape[:2]}")
    alpha = np.where(keep, 255, 0).astype(np.uint8)
    return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")


def palette_label_map(label_map: np.ndarray) -> Image.Image:
    """An (H, W) int label map (ids 0-255) as a palette PNG image: pixel = id, colour = ``color(id)``."""
    arr = np.asarray(label_map)
    if arr.ndim != 2:
        raise ValueError(f"label map must be (H, W), got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ValueError(f"a palette image holds ids 0-255, label map has {arr.min()}..{arr.max()}")
    picture = Image.fromarray(arr.astype(np.uint8), "P")
    picture.putpalette([c for i in range(256) for c in color(i)])
    return picture
