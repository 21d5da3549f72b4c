"""Results to files: JSON with COCO RLE, COCO datasets, mask / label-map PNGs, overlays.

The JSON document (``to_json``) is the one the CLI prints with ``--json`` and the IPC
service returns::

    {"schema": "segmentkit.result/1",
     "image": {"width": W, "height": H, ...image_info},
     "kind": "semantic" | "instance" | "panoptic" | "automatic" | "masks" | "prompt" | "track",
     "labels": {"<class id>": "<name>", ...},
     "masks": [{"index": i, "rle": {"size": [H, W], "counts": "<COCO RLE>"},
                "bbox": [x0, y0, x1, y1], "area": int, "score": float,
                "label": str | null, "class_id": int | null, "object_id": int | null,
                "quality": {"iou_pred": float, ...}}, ...],
     "arrays": {"low_res_logits": [N, 256, 256]}, ...}

Boxes are XYXY pixels (x1, y1 exclusive) everywhere except ``to_coco`` (XYWH). For
panoptic results ``masks[i]`` is segment ``i + 1`` of the label map. Every per-mask
scalar in ``Masks.data`` appears under ``quality``; per-mask arrays are listed with
their shape under ``arrays`` (never silently dropped). Files are written atomically.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import rle as _rle
from .types import FrameMasks, Mask, Masks, Segmentation

SCHEMA = "segmentkit.result/1"
FORMATS = ("overlay", "png", "json", "rle", "coco", "cutout")
DEFAULT_FORMATS = ("overlay", "png", "json")


def _parts(result: Any) -> tuple[str, Masks, np.ndarray | None, dict[int, str], dict[str, Any]]:
    """(kind, masks, label_map, id2label, extra top-level fields) of any result type."""
    if isinstance(result, Segmentation):
        labels = {**result.masks.id2label, **result.id2label}
        return result.kind, result.masks, result.label_map, labels, {}
    if isinstance(result, FrameMasks):
        return "track", result.masks, None, dict(result.masks.id2label), {"frame_index": result.frame_index}
    if isinstance(result, Masks):
        return "masks", result, None, dict(result.id2label), {}
    if isinstance(result, Mask):
        result = [result]
    if isinstance(result, Sequence) and result and all(isinstance(m, Mask) for m in result):
        stacked = _stack(result)
        return "masks", stacked, None, dict(stacked.id2label), {}
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


def _number(value: Any) -> float | bool | None:
    """A JSON-safe scalar: bools stay bools, numbers become floats, NaN/inf become null."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    number = float(value)
    return number if math.isfinite(number) else None


def _quality(masks: Masks) -> tuple[dict[str, np.ndarray], dict[str, list[int]]]:
    scalars, arrays = {}, {}
    for key, value in masks.data.items():
        if value.ndim == 1 and value.dtype.kind in "biuf":
            scalars[key] = value
        else:
            arrays[key] = [int(d) for d in value.shape]
    return scalars, arrays


def _image_block(size: tuple[int, int], image_info: Mapping[str, Any] | None) -> dict[str, Any]:
    info = dict(image_info or {})
    height, width = size
    for key, expected in (("width", width), ("height", height)):
        if key in info and int(info[key]) != expected:
            raise ValueError(f"image_info says {key}={info[key]}, the result is {width}x{height}")
    info.update(width=width, height=height)
    return info


def to_json(result: Any, image_info: Mapping[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    """A JSON-ready dict of ``result`` (schema in the module docstring).

    ``image_info`` adds fields to ``image`` (e.g. ``path``); ``meta`` adds top-level fields
    (e.g. ``model``, ``prompts``).
    """
    kind, masks, _, id2label, extra = _parts(result)
    scalars, arrays = _quality(masks)
    entries = []
    for i in range(len(masks)):
        class_id = None if masks.class_ids is None else int(masks.class_ids[i])
        entries.append({
            "index": i,
            "rle": _rle.encode(masks.masks[i]),
            "bbox": [float(v) for v in masks.boxes[i]],
            "area": int(masks.masks[i].sum()),
            "score": _number(masks.scores[i]),
            "label": None if class_id is None else id2label.get(class_id),
            "class_id": class_id,
            "object_id": None if masks.object_ids is None else int(masks.object_ids[i]),
            "quality": {key: _number(values[i]) for key, values in scalars.items()},
        })
    document: dict[str, Any] = {
        "schema": SCHEMA,
        "image": _image_block(masks.image_size, image_info),
        "kind": kind,
        **extra,
        "labels": {str(k): v for k, v in sorted(id2label.items())},
        "masks": entries,
        "arrays": arrays,
    }
    document.update(meta)
    return document


def to_coco(
    result: Any, image_info: Mapping[str, Any] | None = None, *, image_id: int = 1,
    first_annotation_id: int = 1,
) -> dict[str, Any]:
    """A COCO-style dict (``images``, ``annotations``, ``categories``) for one image.

    Annotations carry ``segmentation`` (compressed RLE, ``counts`` str), ``bbox`` (XYWH,
    the only XYWH in segmentkit), ``area``, ``iscrowd`` 0, ``score``, ``object_id`` and the
    quality fields. Masks without a class get category 1 ``"object"``.
    """
    _, masks, _, id2label, _ = _parts(result)
    info = _image_block(masks.image_size, image_info)
    image = {"id": image_id, "width": info["width"], "height": info["height"],
             "file_name": str(info.get("file_name", info.get("path", "")))}
    scalars, _ = _quality(masks)
    if masks.class_ids is None:
        class_ids = [1] * len(masks)
        categories = [{"id": 1, "name": "object"}] if len(masks) else []
    else:
        class_ids = [int(c) for c in masks.class_ids]
        known = {**id2label, **{c: id2label.get(c, str(c)) for c in class_ids}}
        categories = [{"id": c, "name": known[c]} for c in sorted(known)]
    annotations = []
    for i in range(len(masks)):
        x0, y0, x1, y1 = (float(v) for v in masks.boxes[i])
        annotation = {
            "id": first_annotation_id + i,
            "image_id": image_id,
            "category_id": class_ids[i],
            "segmentation": _rle.encode(masks.masks[i]),
            "area": int(masks.masks[i].sum()),
            "bbox": [x0, y0, x1 - x0, y1 - y0],
            "iscrowd": 0,
            "score": _number(masks.scores[i]),
        }
        if masks.object_ids is not None:
            annotation["object_id"] = int(masks.object_ids[i])
        annotation.update({key: _number(values[i]) for key, values in scalars.items()})
        annotations.append(annotation)
    return {"images": [image], "annotations": annotations, "categories": categories}


# --------------------------------------------------------------------------- files


def atomic_write(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _png(picture: Any) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def label_map_png(label_map: np.ndarray) -> bytes:
    """PNG bytes of a label map: a palette PNG for ids 0-255, else a 16-bit grey PNG."""
    from PIL import Image

    from .render import palette_label_map

    arr = np.asarray(label_map)
    if arr.size == 0 or (arr.min() >= 0 and arr.max() <= 255):
        return _png(palette_label_map(arr))
    if arr.min() < 0 or arr.max() > 65535:
        raise ValueError(f"label ids {arr.min()}..{arr.max()} do not fit a 16-bit PNG")
    return _png(Image.fromarray(arr.astype(np.uint16)))


def write_outputs(
    out_dir: str | Path, stem: str, image: Any, result: Any,
    formats: Iterable[str] = DEFAULT_FORMATS, *, image_info: Mapping[str, Any] | None = None,
    document: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write ``result`` for one image into ``out_dir`` as ``<stem>.*``; return the paths.

    Formats: ``overlay`` (``<stem>.overlay.png``), ``png`` (``<stem>.labels.png`` when the
    result has a label map, else ``<stem>.mask-<i>.png`` 0/255 per mask), ``json``
    (``<stem>.json``, :func:`to_json`, or ``document`` if given), ``rle``
    (``<stem>.rle.json``: the list of RLEs), ``coco`` (``<stem>.coco.json``) and
    ``cutout`` (``<stem>.cutout-<i>.png`` RGBA per mask).
    """
    from PIL import Image

    from . import render
    from .io.image import load_image

    formats = tuple(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown output format(s) {unknown}; choose from {FORMATS}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _, masks, label_map, _, _ = _parts(result)
    rgb = load_image(image) if {"overlay", "cutout"} & set(formats) else None
    written: list[Path] = []

    def put(name: str, data: bytes) -> None:
        written.append(atomic_write(out / f"{stem}{name}", data))

    for fmt in formats:
        if fmt == "overlay":
            put(".overlay.png", _png(render.overlay(rgb, result)))
        elif fmt == "png" and label_map is not None:
            put(".labels.png", label_map_png(label_map))
        elif fmt == "png":
            for i in range(len(masks)):
                put(f".mask-{i}.png", _png(Image.fromarray(masks.masks[i].astype(np.uint8) * 255, "L")))
        elif fmt == "json":
            doc = document if document is not None else to_json(result, image_info)
            put(".json", json.dumps(doc, indent=1).encode())
        elif fmt == "rle":
            put(".rle.json", json.dumps(masks.to_coco_rle()).encode())
        elif fmt == "coco":
            put(".coco.json", json.dumps(to_coco(result, image_info)).encode())
        elif fmt == "cutout":
            for i in range(len(masks)):
                put(f".cutout-{i}.png", _png(render.cutout(rgb, masks.masks[i])))
    return written
