"""Label Studio regions <-> segmentkit values: prompts in, brush / polygon / box regions out.

Coordinates: Label Studio gives x, y, width, height in percent of the original image
(``original_width`` / ``original_height``); we work in pixels of the decoded image.

Grouping (which prompts make one object): every rectangle is an object, and a keypoint
inside a rectangle refines it; the other keypoints make one object per label, and a
negative keypoint (``is_positive: false``, or a label such as "negative" / "background")
refines the object of its label, or every keypoint object when its label names none.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import PromptError
from ..types import Box, Masks, Point, Text
from .brush import mask_to_rle
from .config import Control

NEGATIVE_LABELS = frozenset({"negative", "background", "neg", "bg", "exclude"})


@dataclass
class PromptObject:
    """The prompts of one object and the label its mask gets."""

    label: str | None
    prompts: list[Any] = field(default_factory=list)


def _pixels(value: Mapping[str, Any], size: tuple[int, int], *keys: str) -> list[float]:
    height, width = size
    scale = {"x": width, "width": width, "y": height, "height": height}
    try:
        return [float(value[k]) * scale[k] / 100.0 for k in keys]
    except (KeyError, TypeError, ValueError):
        raise PromptError(
            f"region value needs numeric {', '.join(keys)} (percent), got {dict(value)}"
        ) from None


def _label(value: Mapping[str, Any]) -> str | None:
    for key in ("keypointlabels", "rectanglelabels", "labels"):
        names = value.get(key)
        if names:
            return str(names[0])
    return None


def _inside(box: Box, point: Point) -> bool:
    return box.x0 <= point.x <= box.x1 and box.y0 <= point.y <= box.y1


def prompt_objects(regions: Iterable[Mapping[str, Any]], size: tuple[int, int]) -> list[PromptObject]:
    """The objects an annotator's context regions describe (see the module's grouping rule)."""
    boxes: list[PromptObject] = []
    points: list[tuple[Point, str | None]] = []
    texts: list[PromptObject] = []
    height, width = size
    for region in regions:
        kind = str(region.get("type", "")).lower()
        value = region.get("value") or {}
        label = _label(value)
        if kind == "rectanglelabels":
            x, y, w, h = _pixels(value, size, "x", "y", "width", "height")
            box = Box(max(0.0, x), max(0.0, y), min(float(width), x + w), min(float(height), y + h))
            boxes.append(PromptObject(label, [box]))
        elif kind == "keypointlabels":
            x, y = _pixels(value, size, "x", "y")
            negative = region.get("is_positive") is False or (label or "").lower() in NEGATIVE_LABELS
            points.append((Point(x, y, positive=not negative), label))
        elif kind == "textarea":
            text = " ".join(str(t) for t in value.get("text") or [] if str(t).strip())
            if text:
                texts.append(PromptObject(text, [Text(text)]))
    by_label: dict[str | None, PromptObject] = {}
    loose_negatives: list[Point] = []
    for point, label in points:
        owner = next((o for o in boxes if _inside(o.prompts[0], point)), None)
        if owner is not None:
            owner.prompts.append(point)
        elif not point.positive and (label is None or label.lower() in NEGATIVE_LABELS):
            loose_negatives.append(point)
        else:
            by_label.setdefault(label, PromptObject(label)).prompts.append(point)
    for obj in by_label.values():
        obj.prompts += loose_negatives
    objects = boxes + [o for o in by_label.values() if any(p.positive for p in o.prompts)] + texts
    if not objects:
        raise PromptError("the context has no positive keypoint, rectangle or text to segment from")
    return objects


def choose_label(wanted: str | None, offered: tuple[str, ...]) -> str | None:
    """The output label for ``wanted``: the same name (any case) if offered, else the first one."""
    if wanted is not None:
        for label in offered:
            if label.lower() == wanted.lower():
                return label
    return offered[0] if offered else wanted


def _base(control: Control, size: tuple[int, int], score: float) -> dict[str, Any]:
    height, width = size
    return {
        "id": uuid.uuid4().hex[:10],
        "from_name": control.name,
        "to_name": control.to_name,
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
        "score": score,
    }


def mask_region(mask: np.ndarray, label: str | None, score: float, control: Control) -> dict[str, Any]:
    """A ``brushlabels`` region (or ``polygonlabels``, by the control's type) for one mask."""
    region = _base(control, mask.shape, score)
    labels = [label] if label else []
    if control.tag == "polygonlabels":
        from .polygons import mask_polygon

        region.update(
            type="polygonlabels",
            value={"points": mask_polygon(mask), "polygonlabels": labels, "closed": True},
        )
    else:
        region.update(
            type="brushlabels", value={"format": "rle", "rle": mask_to_rle(mask), "brushlabels": labels}
        )
    return region


def masks_regions(masks: Masks, labels: list[str | None], control: Control) -> list[dict[str, Any]]:
    """One region per mask (``labels[i]`` for mask ``i``), skipping empty masks."""
    scores = masks.scores if masks.scores is not None else np.ones(len(masks))
    return [
        mask_region(masks.masks[i], labels[i], float(scores[i]), control)
        for i in range(len(masks))
        if masks.masks[i].any()
    ]
