"""The result document: one JSON shape for one result, whichever face wrote it.

``segmentkit segment/prompt --json``, the per-image ``<stem>.json``, a batch record's
``result``, the IPC service's ``vision.segment`` / ``vision.mask_from_prompt`` answers
and every frame of ``track`` use these models::

    {"schema": "segmentkit.result/1",
     "model": {"id": "...", "revision": "<commit>", "device": "cpu", "runtime": "torch", "precision": "fp32"},
     "image": {"width": W, "height": H, "path": "..."},
     "kind": "semantic" | "instance" | "panoptic" | "automatic" | "masks" | "prompt" | "track",
     "labels": {"<class id>": "<name>"},
     "masks": [{"index": i, "rle": {"size": [H, W], "counts": "..."}, "bbox": [x0, y0, x1, y1],
                "area": n, "score": s, "label": ..., "class_id": ..., "object_id": ...,
                "quality": {"iou_pred": ..., ...}}],
     "arrays": {"low_res_logits": [N, 256, 256]},
     "prompts": [[{"kind": "point", ...}, ...], ...],     # prompted results: one set per object
     "timing": {"model_s": ...}}                          # optional; differs run to run

Boxes are XYXY pixels (x1, y1 exclusive). For panoptic results ``masks[i]`` is segment
``i + 1`` of the label map. Every per-mask scalar of ``Masks.data`` is under ``quality``
(NaN / infinity become ``null``); per-mask arrays are listed with their shape under
``arrays``. Optional members are ``null`` where they do not apply.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from . import rle as _rle
from .prompts import encode_prompt
from .types import FrameMasks, Mask, Masks, Segmentation

if TYPE_CHECKING:
    from .handles import Handle

SCHEMA = "segmentkit.result/1"
Kind = Literal["semantic", "instance", "panoptic", "automatic", "masks", "prompt", "track"]
Quality = float | bool | None


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_by_name=True, serialize_by_alias=True)


class Rle(_Doc):
    """COCO compressed RLE (pycocotools-compatible), column-major."""

    size: tuple[int, int] = Field(description="[height, width].")
    counts: str

    def to_array(self) -> np.ndarray:
        """The mask as a bool (H, W) array."""
        return _rle.decode(self.model_dump())


class MaskRecord(_Doc):
    """One mask: RLE, tight box, area, score, labels and quality fields."""

    index: int = Field(ge=0, description="Position in the result (panoptic: segment index + 1).")
    rle: Rle
    bbox: tuple[float, float, float, float] = Field(description="Tight XYXY box (x1, y1 exclusive).")
    area: int = Field(ge=0, description="Pixels in the mask.")
    score: float | None = Field(description="Model score; null when not finite.")
    label: str | None = None
    class_id: int | None = None
    object_id: int | None = Field(default=None, description="Object id (prompted objects, tracked objects).")
    quality: dict[str, Quality] = Field(default_factory=dict, description="Per-mask quality fields.")

    def to_array(self) -> np.ndarray:
        return self.rle.to_array()


class ImageInfo(_Doc):
    """The image a result is of."""

    width: int = Field(gt=0)
    height: int = Field(gt=0)
    path: str | None = Field(default=None, description="The file, where the result came from one.")


class ModelInfo(_Doc):
    """The model that made a result, as it was loaded (device resolved from ``"auto"``)."""

    id: str = Field(description="Model id.")
    revision: str | None = Field(default=None, description="Weights revision (null: none or local).")
    device: str | None = Field(default=None, description="Device it ran on ('cpu', 'cuda', 'cuda:1', 'mps').")
    runtime: str | None = Field(default=None, description="Runtime it ran with.")
    precision: str | None = Field(default=None, description="Numeric precision.")


def model_info(handle: Handle) -> ModelInfo:
    """The ``model`` block of a loaded handle: card id and revision, the options it was loaded with."""
    card, options = handle.card, handle.options
    hub = card.weights is not None and options.weights is None
    return ModelInfo(id=card.id, revision=card.weights.revision if hub else None, device=options.device,
                     runtime=options.runtime or card.runtimes[0], precision=options.precision)


class ResultDocument(_Doc):
    """One result for one image (or one video frame)."""

    schema_: Literal["segmentkit.result/1"] = Field(default=SCHEMA, alias="schema")
    model: ModelInfo | None = Field(default=None, description="The model and how it was loaded.")
    image: ImageInfo
    kind: Kind
    frame_index: int | None = Field(default=None, description="Video frame (kind 'track').")
    labels: dict[str, str] = Field(default_factory=dict, description="Class id -> name.")
    masks: list[MaskRecord]
    arrays: dict[str, list[int]] = Field(default_factory=dict, description="Per-mask arrays: name -> shape.")
    prompts: list[list[dict[str, Any]]] | None = Field(default=None, description="Prompt sets, one per object.")
    files: dict[str, str] | None = Field(default=None, description="IPC: requested formats, name -> base64.")
    timing: dict[str, float] | None = Field(default=None, description="Seconds per stage (differs per run).")

    def dump(self) -> dict[str, Any]:
        """The JSON-ready dict."""
        return self.model_dump(mode="json")

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.image.height, self.image.width)

    def to_masks(self) -> Masks:
        """The :class:`Masks` the document describes (RLE decoded; ``null`` numbers become NaN)."""
        entries = self.masks
        if not entries:
            return Masks.empty(self.image_size, id2label=_labels(self.labels))
        def column(name: str) -> list[Any] | None:
            values = [getattr(e, name) for e in entries]
            return None if any(v is None for v in values) else values

        keys = set.intersection(*(set(e.quality) for e in entries))
        return Masks(
            np.stack([e.to_array() for e in entries]),
            scores=[_float(e.score) for e in entries], boxes=[e.bbox for e in entries],
            class_ids=column("class_id"), object_ids=column("object_id"),
            data={k: np.asarray([_float(e.quality[k]) for e in entries]) for k in sorted(keys)},
            id2label=_labels(self.labels),
        )


    def to_segmentation(self) -> Segmentation:
        """The :class:`Segmentation` (kinds semantic, instance, panoptic, automatic) it describes.

        The label map is rebuilt from the masks: class ids (semantic) or segment ``i + 1``
        for ``masks[i]`` (panoptic).
        """
        if self.kind not in ("semantic", "instance", "panoptic", "automatic"):
            raise ValueError(f"a {self.kind!r} result is not a segmentation")
        masks = self.to_masks()
        label_map = None
        if self.kind in ("semantic", "panoptic"):
            label_map = np.zeros(self.image_size, dtype=np.int32)
            ids = masks.class_ids if self.kind == "semantic" else np.arange(1, len(masks) + 1)
            for mask, ident in zip(masks.masks, ids if ids is not None else [], strict=ids is not None):
                label_map[mask] = int(ident)
        return Segmentation(kind=self.kind, image_size=self.image_size, masks=masks, label_map=label_map,
                            id2label=_labels(self.labels))

    def to_frame(self) -> FrameMasks:
        """The :class:`FrameMasks` of a ``track`` result."""
        if self.frame_index is None:
            raise ValueError("the result is not of a video frame")
        return FrameMasks(self.frame_index, self.to_masks())


def _labels(labels: Mapping[str, str]) -> dict[int, str]:
    return {int(k): v for k, v in labels.items()}


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


# --------------------------------------------------------------------------- building


def parts(result: Any) -> tuple[str, Masks, dict[int, str], int | None]:
    """(kind, masks, id2label, frame index) of any result type."""
    if isinstance(result, Segmentation):
        return result.kind, result.masks, {**result.masks.id2label, **result.id2label}, None
    if isinstance(result, FrameMasks):
        return "track", result.masks, dict(result.masks.id2label), int(result.frame_index)
    if isinstance(result, Masks):
        return "masks", result, dict(result.id2label), None
    if isinstance(result, Mask):
        result = [result]
    if isinstance(result, Sequence) and result and all(isinstance(m, Mask) for m in result):
        stacked = _stack(result)
        return "masks", stacked, dict(stacked.id2label), None
    raise TypeError(f"cannot export {type(result).__name__}; pass Segmentation, Masks, FrameMasks or Mask(s)")


def _stack(items: Sequence[Mask]) -> Masks:
    def column(name: str) -> list[Any] | None:
        values = [getattr(m, name) for m in items]
        return None if any(v is None for v in values) else values

    keys = set.intersection(*(set(m.extra) for m in items))
    return Masks(
        np.stack([m.mask for m in items]), scores=[m.score for m in items],
        boxes=[m.bbox for m in items], class_ids=column("class_id"), object_ids=column("object_id"),
        data={k: np.asarray([m.extra[k] for m in items]) for k in keys},
        id2label={m.class_id: m.label for m in items if m.class_id is not None and m.label},
    )


def number(value: Any) -> float | bool | None:
    """A JSON-safe scalar: bools stay bools, numbers become floats, NaN/inf become null."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    value = float(value)
    return value if math.isfinite(value) else None


def quality(masks: Masks) -> tuple[dict[str, np.ndarray], dict[str, list[int]]]:
    """Per-mask scalars (-> ``quality``) and the shapes of per-mask arrays (-> ``arrays``)."""
    scalars, arrays = {}, {}
    for key, value in masks.data.items():
        if value.ndim == 1 and value.dtype.kind in "biuf":
            scalars[key] = value
        else:
            arrays[key] = [int(d) for d in value.shape]
    return scalars, arrays


def mask_records(masks: Masks, id2label: Mapping[int, str]) -> list[MaskRecord]:
    scalars, _ = quality(masks)
    records = []
    for i in range(len(masks)):
        class_id = None if masks.class_ids is None else int(masks.class_ids[i])
        records.append(MaskRecord(
            index=i, rle=Rle(**_rle.encode(masks.masks[i])), bbox=tuple(float(v) for v in masks.boxes[i]),
            area=int(masks.masks[i].sum()), score=number(masks.scores[i]),
            label=None if class_id is None else id2label.get(class_id), class_id=class_id,
            object_id=None if masks.object_ids is None else int(masks.object_ids[i]),
            quality={key: number(values[i]) for key, values in scalars.items()},
        ))
    return records


def build(
    result: Any, *, model: ModelInfo | Mapping[str, Any] | None = None, image: Mapping[str, Any] | None = None,
    kind: str | None = None, prompts: Sequence[Sequence[Any]] | None = None,
    timing: Mapping[str, float] | None = None,
) -> ResultDocument:
    """The document of ``result``; ``image`` may add the image's ``path``.

    ``model`` is the block :func:`model_info` makes from the loaded handle.

    ``prompts`` are prompt sets (core prompts or their dicts), one per object.
    """
    found, masks, id2label, frame_index = parts(result)
    height, width = masks.image_size
    info = image_info(image, masks.image_size)
    _, arrays = quality(masks)
    return ResultDocument(
        model=None if model is None else ModelInfo.model_validate(model),
        image=ImageInfo(**{**info, "width": width, "height": height}),
        kind=kind or found, frame_index=frame_index,
        labels={str(k): v for k, v in sorted(id2label.items())}, masks=mask_records(masks, id2label),
        arrays=arrays,
        prompts=None if prompts is None else [[_prompt(p) for p in s] for s in prompts],
        timing=None if timing is None else {k: round(float(v), 6) for k, v in timing.items()},
    )


def image_info(info: Mapping[str, Any] | None, size: tuple[int, int]) -> dict[str, Any]:
    """``info`` as a dict, refused if its ``width`` / ``height`` contradict the result's ``size``."""
    height, width = size
    info = dict(info or {})
    for key, expected in (("width", width), ("height", height)):
        if key in info and int(info[key]) != expected:
            raise ValueError(f"image info says {key}={info[key]}, the result is {width}x{height}")
    return info


def _prompt(prompt: Any) -> dict[str, Any]:
    return dict(prompt) if isinstance(prompt, Mapping) else encode_prompt(prompt)
