"""Results to interchange documents: the result JSON and COCO.

``to_json`` is :func:`segmentkit.results.build` as a plain dict (the schema is in
:mod:`segmentkit.results`); ``to_coco`` writes a one-image COCO dataset. Files are
written by the format table in :mod:`segmentkit.formats`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import rle as _rle
from .results import SCHEMA, build, number, parts, quality
from .results import image_info as results_image_info

__all__ = ["SCHEMA", "to_coco", "to_json"]


def to_json(result: Any, image_info: Mapping[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    """The result document of ``result`` as a JSON-ready dict.

    ``image_info`` adds ``path`` / ``file_name`` / ``sha256`` to ``image``; ``meta`` sets
    ``model``, ``kind``, ``prompts`` (one set per object) or ``timing``.
    """
    return build(result, image=image_info, **meta).dump()


def to_coco(
    result: Any, image_info: Mapping[str, Any] | None = None, *, image_id: int = 1,
    first_annotation_id: int = 1,
) -> dict[str, Any]:
    """A COCO-style dict (``images``, ``annotations``, ``categories``) for one image.

    Annotations carry ``segmentation`` (compressed RLE, ``counts`` str), ``bbox`` (XYWH,
    the only XYWH in segmentkit), ``area``, ``iscrowd`` 0, ``score``, ``object_id`` and the
    quality fields. Masks without a class get category 1 ``"object"``. The image's
    ``file_name`` is ``image_info["file_name"]``, else the name of its ``path``.
    """
    _, masks, id2label, _ = parts(result)
    height, width = masks.image_size
    info = results_image_info(image_info, masks.image_size)
    name = info.get("file_name") or str(info.get("path", "")).replace("\\", "/").rsplit("/", 1)[-1]
    image = {"id": image_id, "width": width, "height": height, "file_name": str(name)}
    scalars, _ = quality(masks)
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
            "score": number(masks.scores[i]),
        }
        if masks.object_ids is not None:
            annotation["object_id"] = int(masks.object_ids[i])
        annotation.update({key: number(values[i]) for key, values in scalars.items()})
        annotations.append(annotation)
    return {"images": [image], "annotations": annotations, "categories": categories}
