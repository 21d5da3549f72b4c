"""COCO run-length encoding through pycocotools (the format's reference implementation)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as _coco


def encode(mask: np.ndarray) -> dict[str, Any]:
    """Encode an (H, W) mask as COCO compressed RLE with ``counts`` as ``str`` (JSON-ready)."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"RLE encodes one (H, W) mask, got shape {arr.shape}")
    rle = _coco.encode(np.asfortranarray(arr.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def decode(rle: dict[str, Any]) -> np.ndarray:
    """Decode COCO RLE (compressed string or uncompressed list ``counts``) to a bool mask."""
    size = [int(v) for v in rle["size"]]
    counts = rle["counts"]
    if isinstance(counts, list):
        compressed = _coco.frPyObjects({"size": size, "counts": counts}, *size)
    else:
        compressed = {"size": size, "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return _coco.decode(compressed).astype(bool)


def area(rle: dict[str, Any]) -> int:
    return int(_coco.area(_as_bytes(rle)))


def _as_bytes(rle: dict[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    return {"size": rle["size"], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
