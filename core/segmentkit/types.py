"""Prompts, masks and segmentations: the data every role speaks.

Conventions (one everywhere): boxes are XYXY in absolute pixels of the input image,
array shapes are (H, W) / (N, H, W), masks are ``bool``. COCO XYWH and RLE appear only
in :mod:`segmentkit.export` and :meth:`Mask.to_rle`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import rle as _rle
from .errors import PromptError, validation_details

# --------------------------------------------------------------------------- prompts


class _Prompt(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    def __init__(self, **kw: Any):
        try:
            super().__init__(**kw)
        except ValidationError as exc:
            raise PromptError(f"invalid {type(self).__name__.lower()}: {validation_details(exc)}") from None


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"coordinate must be a finite number, got {value!r}")
    return float(value)


class Point(_Prompt):
    """A click at pixel (x, y); ``positive=False`` marks background."""

    kind: Literal["point"] = "point"
    x: float = Field(description="Column in pixels of the input image.")
    y: float = Field(description="Row in pixels of the input image.")
    positive: bool = Field(default=True, description="True for foreground, False for background.")

    def __init__(self, x: float | None = None, y: float | None = None, positive: bool = True, **kw: Any):
        if x is not None:
            kw["x"] = x
        if y is not None:
            kw["y"] = y
        super().__init__(positive=positive, **kw)

    _check = field_validator("x", "y")(classmethod(lambda cls, v: _finite(v)))


class Box(_Prompt):
    """A box in XYXY pixels: (x0, y0) top-left, (x1, y1) bottom-right."""

    kind: Literal["box"] = "box"
    x0: float = Field(description="Left edge in pixels.")
    y0: float = Field(description="Top edge in pixels.")
    x1: float = Field(description="Right edge in pixels.")
    y1: float = Field(description="Bottom edge in pixels.")

    def __init__(self, x0: float | None = None, y0: float | None = None, x1: float | None = None,
                 y1: float | None = None, **kw: Any):
        for name, value in (("x0", x0), ("y0", y0), ("x1", x1), ("y1", y1)):
            if value is not None:
                kw[name] = value
        super().__init__(**kw)

    _check = field_validator("x0", "y0", "x1", "y1")(classmethod(lambda cls, v: _finite(v)))

    @model_validator(mode="after")
    def _ordered(self) -> Box:
        if self.x1 <= self.x0 or self.y1 <= self.y0:
            raise ValueError(
                f"box must have x0 < x1 and y0 < y1, got ({self.x0}, {self.y0}, {self.x1}, {self.y1})"
            )
        return self

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)


class MaskPrompt(_Prompt):
    """A previous mask as a prompt: a bool (H, W) mask at image size, or low-res logits."""

    kind: Literal["mask"] = "mask"
    mask: Any = Field(description="bool (H, W) mask in image pixels, or float low-res logits (h, w).")

    def __init__(self, mask: Any = None, **kw: Any):
        if mask is not None:
            kw["mask"] = mask
        super().__init__(**kw)

    @field_validator("mask")
    @classmethod
    def _array(cls, v: Any) -> np.ndarray:
        arr = np.asarray(v)
        if arr.ndim == 3 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim != 2 or arr.size == 0:
            raise ValueError(f"mask prompt must be a 2-D array, got shape {arr.shape}")
        if arr.dtype != bool and not np.all(np.isfinite(arr)):
            raise ValueError("mask prompt logits must be finite")
        arr = arr.copy()
        arr.setflags(write=False)
        return arr

    @property
    def is_logits(self) -> bool:
        return self.mask.dtype != bool


class Text(_Prompt):
    """A text query for text-capable models (e.g. "a dog. a ball.")."""

    kind: Literal["text"] = "text"
    text: str = Field(min_length=1, description="The query; phrases separated by '.'.")

    def __init__(self, text: str | None = None, **kw: Any):
        if text is not None:
            kw["text"] = text
        super().__init__(**kw)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("text prompt must not be blank")
        return v


Prompt = Annotated[Point | Box | MaskPrompt | Text, Field(discriminator="kind")]
PromptKind = Literal["point", "box", "mask", "text"]


def validate_prompts(prompts: Sequence[Any], image_size: tuple[int, int]) -> list[Any]:
    """Check prompts against an image of ``(height, width)``; raise :class:`PromptError`.

    Coordinates must lie inside ``[0, width] x [0, height]``; nothing is clamped. A set
    describes one object, so it takes at most one box, unless it has a text prompt: boxes
    next to a text are exemplars of the concept (models whose card accepts text say how).
    """
    if isinstance(prompts, (Point, Box, MaskPrompt, Text)):
        prompts = [prompts]
    prompts = list(prompts)
    if not prompts:
        raise PromptError("no prompts given: pass at least one point, box, mask or text")
    h, w = image_size
    boxes = 0
    for p in prompts:
        if isinstance(p, (Point, Box)):
            # Prompts built without validation (model_construct) still get the finite check.
            values = (p.x, p.y) if isinstance(p, Point) else p.xyxy
            if not all(math.isfinite(v) for v in values):
                raise PromptError(f"{p.kind} coordinates must be finite numbers, got {values}")
        if isinstance(p, Point):
            if not (0 <= p.x <= w and 0 <= p.y <= h):
                raise PromptError(f"point ({p.x:g}, {p.y:g}) is outside the {w}x{h} image")
        elif isinstance(p, Box):
            boxes += 1
            if p.x0 < 0 or p.y0 < 0 or p.x1 > w or p.y1 > h:
                raise PromptError(
                    f"box ({p.x0:g}, {p.y0:g}, {p.x1:g}, {p.y1:g}) is outside the {w}x{h} image"
                )
        elif isinstance(p, MaskPrompt):
            if not p.is_logits and p.mask.shape != (h, w):
                raise PromptError(f"mask prompt has shape {p.mask.shape}, image is {(h, w)}")
        elif not isinstance(p, Text):
            raise PromptError(f"not a prompt: {p!r}")
    if boxes > 1 and not any(isinstance(p, Text) for p in prompts):
        raise PromptError("one prompt set takes at most one box (several only as exemplars next to a text "
                          "prompt); use a batch for several objects")
    return prompts


# --------------------------------------------------------------------------- masks


@dataclass(frozen=True)
class Mask:
    """One mask with its quality fields. ``bbox`` is XYXY pixels (x1, y1 exclusive)."""

    mask: np.ndarray
    score: float = 1.0
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    area: int = 0
    class_id: int | None = None
    label: str | None = None
    object_id: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_rle(self) -> dict[str, Any]:
        """COCO compressed RLE: ``{"size": [H, W], "counts": str}`` (pycocotools-compatible)."""
        return _rle.encode(self.mask)


def _empty(n: int, dtype: Any) -> np.ndarray:
    return np.zeros((n,), dtype=dtype)


@dataclass
class Masks:
    """N masks as parallel arrays (N first): the one container every role returns.

    ``masks`` (N, H, W) bool; ``scores`` (N,) float32; ``boxes`` (N, 4) float32 XYXY
    (computed from the masks when not given); optional ``class_ids`` / ``object_ids``
    (N,) int64; ``data`` holds further per-mask arrays (e.g. ``iou_pred``,
    ``stability``, ``low_res_logits``); ``id2label`` names class ids.
    """

    masks: np.ndarray
    scores: np.ndarray | None = None
    boxes: np.ndarray | None = None
    class_ids: np.ndarray | None = None
    object_ids: np.ndarray | None = None
    data: dict[str, np.ndarray] = field(default_factory=dict)
    id2label: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        masks = np.asarray(self.masks)
        if masks.ndim != 3:
            raise ValueError(f"masks must be (N, H, W), got shape {masks.shape}")
        self.masks = masks.astype(bool, copy=False)
        n = masks.shape[0]
        self.scores = _column(self.scores, n, np.float32, "scores", default=1.0)
        self.boxes = (
            masks_to_boxes(self.masks) if self.boxes is None else _rows(self.boxes, n, "boxes")
        )
        self.class_ids = _column(self.class_ids, n, np.int64, "class_ids")
        self.object_ids = _column(self.object_ids, n, np.int64, "object_ids")
        for key, value in self.data.items():
            value = np.asarray(value)
            if value.shape[:1] != (n,):
                raise ValueError(f"data[{key!r}] must have {n} rows, got shape {value.shape}")
            self.data[key] = value
        self.id2label = {int(k): str(v) for k, v in self.id2label.items()}

    @classmethod
    def empty(cls, image_size: tuple[int, int], **kw: Any) -> Masks:
        return cls(np.zeros((0, *image_size), dtype=bool), **kw)

    @property
    def image_size(self) -> tuple[int, int]:
        return (int(self.masks.shape[1]), int(self.masks.shape[2]))

    @property
    def areas(self) -> np.ndarray:
        return self.masks.sum(axis=(1, 2), dtype=np.int64)

    @property
    def labels(self) -> list[str | None]:
        if self.class_ids is None:
            return [None] * len(self)
        return [self.id2label.get(int(c)) for c in self.class_ids]

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    def __iter__(self) -> Iterator[Mask]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, (int, np.integer)):
            i = int(index)
            cls_id = None if self.class_ids is None else int(self.class_ids[i])
            return Mask(
                mask=self.masks[i],
                score=float(self.scores[i]),
                bbox=tuple(float(v) for v in self.boxes[i]),
                area=int(self.masks[i].sum()),
                class_id=cls_id,
                label=None if cls_id is None else self.id2label.get(cls_id),
                object_id=None if self.object_ids is None else int(self.object_ids[i]),
                extra={k: v[i] for k, v in self.data.items()},
            )
        if isinstance(index, slice):
            index = np.arange(len(self))[index]
        index = np.asarray(index)
        if index.dtype == bool and index.shape != (len(self),):
            raise IndexError(f"boolean index must have shape ({len(self)},), got {index.shape}")
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return Masks(
            masks=self.masks[index],
            scores=self.scores[index],
            boxes=self.boxes[index],
            class_ids=pick(self.class_ids),
            object_ids=pick(self.object_ids),
            data={k: v[index] for k, v in self.data.items()},
            id2label=dict(self.id2label),
        )

    def to_coco_rle(self) -> list[dict[str, Any]]:
        """One COCO compressed RLE per mask."""
        return [_rle.encode(m) for m in self.masks]

    @classmethod
    def concatenate(cls, parts: Sequence[Masks]) -> Masks:
        """Join containers of the same image size (fields missing in any part are dropped)."""
        if not parts:
            raise ValueError("nothing to concatenate")
        def cat(name: str) -> np.ndarray | None:
            vals = [getattr(p, name) for p in parts]
            return None if any(v is None for v in vals) else np.concatenate(vals)
        keys = set.intersection(*(set(p.data) for p in parts))
        labels: dict[int, str] = {}
        for p in parts:
            labels.update(p.id2label)
        return cls(
            masks=np.concatenate([p.masks for p in parts]),
            scores=cat("scores"), boxes=cat("boxes"), class_ids=cat("class_ids"),
            object_ids=cat("object_ids"),
            data={k: np.concatenate([p.data[k] for p in parts]) for k in keys},
            id2label=labels,
        )


def _column(value: Any, n: int, dtype: Any, name: str, default: float | None = None) -> np.ndarray | None:
    if value is None:
        return None if default is None else np.full((n,), default, dtype=dtype)
    arr = np.asarray(value, dtype=dtype).reshape(-1)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {np.shape(value)}")
    return arr


def _rows(value: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    if arr.shape != (n, 4):
        raise ValueError(f"{name} must have shape ({n}, 4), got {arr.shape}")
    return arr


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight XYXY boxes (x1, y1 exclusive) of (N, H, W) masks; zeros for empty masks."""
    n = masks.shape[0]
    boxes = np.zeros((n, 4), dtype=np.float32)
    if n == 0:
        return boxes
    rows = masks.any(axis=2)
    cols = masks.any(axis=1)
    nonempty = rows.any(axis=1)
    h, w = masks.shape[1:]
    y0 = rows.argmax(axis=1)
    y1 = h - rows[:, ::-1].argmax(axis=1)
    x0 = cols.argmax(axis=1)
    x1 = w - cols[:, ::-1].argmax(axis=1)
    boxes[nonempty] = np.stack([x0, y0, x1, y1], axis=1)[nonempty]
    return boxes


# --------------------------------------------------------------------------- results

SegmentationKind = Literal["semantic", "instance", "panoptic", "automatic"]


@dataclass
class Segmentation:
    """A segmenter's answer for one image.

    ``label_map`` (H, W) int32 holds class ids (semantic) or segment ids (panoptic,
    0 = none, segment ``i`` is ``masks[i - 1]``); ``masks`` holds instances / segments.
    """

    kind: SegmentationKind
    image_size: tuple[int, int]
    masks: Masks
    label_map: np.ndarray | None = None
    id2label: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        if self.masks.image_size != self.image_size:
            raise ValueError(f"masks are {self.masks.image_size}, image is {self.image_size}")
        if self.label_map is not None:
            self.label_map = np.asarray(self.label_map)
            if self.label_map.shape != self.image_size:
                raise ValueError(
                    f"label_map must have shape {self.image_size}, got {self.label_map.shape}"
                )
            self.label_map = self.label_map.astype(np.int32, copy=False)

    @classmethod
    def from_label_map(cls, label_map: np.ndarray, id2label: Mapping[int, str]) -> Segmentation:
        """A semantic result whose masks are one per class present in ``label_map``."""
        label_map = np.asarray(label_map).astype(np.int32, copy=False)
        ids = np.unique(label_map)
        masks = label_map[None] == ids[:, None, None]
        return cls(
            kind="semantic", image_size=label_map.shape, label_map=label_map,
            masks=Masks(masks, class_ids=ids, id2label=dict(id2label)), id2label=dict(id2label),
        )

    @property
    def labels_present(self) -> list[str]:
        ids = np.unique(self.label_map) if self.kind == "semantic" and self.label_map is not None \
            else np.unique(self.masks.class_ids if self.masks.class_ids is not None else [])
        return [self.id2label.get(int(i), str(int(i))) for i in ids]


@dataclass
class FrameMasks:
    """Masks of every tracked object on one video frame (``masks.object_ids`` set)."""

    frame_index: int
    masks: Masks

    @property
    def object_ids(self) -> list[int]:
        return [] if self.masks.object_ids is None else [int(i) for i in self.masks.object_ids]


@dataclass(frozen=True)
class Embedding:
    """An immutable handle to one image's features, reusable across predictions."""

    model_id: str
    image_size: tuple[int, int]
    key: str = field(metadata={"doc": "content hash of the image"})
    data: Any = field(repr=False, compare=False, default=None)


@dataclass
class Detections:
    """Boxes found by a grounder: XYXY pixels, scores and the query phrase each box matched.

    ``phrases`` lists the query's phrases and ``phrase_ids`` (N,) indexes them;
    ``token_labels`` keeps the detector's raw token-level label text where it has one.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: list[str]
    image_size: tuple[int, int]
    phrase_ids: np.ndarray | None = None
    phrases: list[str] = field(default_factory=list)
    token_labels: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if not (len(self.boxes) == len(self.scores) == len(self.labels)):
            raise ValueError(
                f"detections need as many boxes ({len(self.boxes)}), scores ({len(self.scores)}) "
                f"and labels ({len(self.labels)})"
            )

    def __len__(self) -> int:
        return len(self.labels)
