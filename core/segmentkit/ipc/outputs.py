"""Core results -> response models: masks as COCO RLE, boxes XYXY, optional PNGs."""

from __future__ import annotations

import base64
import io
import math

import numpy as np

from .. import rle
from ..types import FrameMasks, Masks, Segmentation
from .schemas import FrameResult, LabelMapOut, LabelSegment, MaskOut, RleOut, SegmentResult


def png_b64(array: np.ndarray) -> str:
    """Base64 PNG of a bool mask (0 / 255), or of an integer label map (8- or 16-bit)."""
    from PIL import Image

    if array.dtype == bool:
        image = Image.fromarray(array.astype(np.uint8) * 255, mode="L")
    elif array.size == 0 or (array.min() >= 0 and array.max() <= 255):
        image = Image.fromarray(array.astype(np.uint8), mode="L")
    elif array.min() >= 0 and array.max() <= 65535:
        image = Image.fromarray(array.astype(np.uint16))  # 16-bit grey PNG
    else:
        raise ValueError(f"label ids {int(array.min())}..{int(array.max())} do not fit a 16-bit PNG")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def masks_out(masks: Masks, include_png: bool = False) -> list[MaskOut]:
    """One :class:`MaskOut` per mask of ``masks``."""
    areas = masks.masks.sum(axis=(1, 2), dtype=np.int64)  # Masks.areas fails for N = 0
    labels = masks.labels
    out = []
    for i in range(len(masks)):
        score = float(masks.scores[i])
        out.append(MaskOut(
            rle=RleOut(**rle.encode(masks.masks[i])),
            box=tuple(float(v) for v in masks.boxes[i]),
            score=score if math.isfinite(score) else None,
            area=int(areas[i]),
            class_id=None if masks.class_ids is None else int(masks.class_ids[i]),
            label=labels[i],
            object_id=None if masks.object_ids is None else int(masks.object_ids[i]),
            png=png_b64(masks.masks[i]) if include_png else None,
        ))
    return out


def label_map_out(seg: Segmentation, include_png: bool = False) -> LabelMapOut | None:
    """The label map as one RLE per id present (names: classes, or the segment's mask label)."""
    if seg.label_map is None:
        return None
    label_map = seg.label_map
    segments = []
    for value in np.unique(label_map):
        ident = int(value)
        if seg.kind == "semantic":
            name = seg.id2label.get(ident)
        else:  # panoptic / instance: id i is masks[i - 1], 0 is "no segment"
            name = seg.masks.labels[ident - 1] if 0 < ident <= len(seg.masks) else None
        segments.append(LabelSegment(id=ident, label=name, rle=RleOut(**rle.encode(label_map == value))))
    return LabelMapOut(size=seg.image_size, segments=segments, png=png_b64(label_map) if include_png else None)


def segmentation_out(seg: Segmentation, model_id: str, include_png: bool = False) -> SegmentResult:
    return SegmentResult(
        model=model_id, kind=seg.kind, image_size=seg.image_size,
        masks=masks_out(seg.masks, include_png), label_map=label_map_out(seg, include_png),
    )


def frame_out(frame: FrameMasks, include_png: bool = False) -> FrameResult:
    return FrameResult(frame=int(frame.frame_index), masks=masks_out(frame.masks, include_png))
