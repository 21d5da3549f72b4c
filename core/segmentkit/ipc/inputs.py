"""Request inputs -> core values: images (grant-checked, size-limited) and prompts (the core codec)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from ..prompts import decode_objects, decode_prompts
from .errors import ErrorCode, rpc_error
from .manifest import App
from .schemas import Base64Ref, CameraRef, PathRef


def decode_b64(text: str, what: str) -> bytes:
    """Bytes of standard base64 ``text`` (a ``data:...;base64,`` prefix is dropped)."""
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise rpc_error(ErrorCode.BAD_IMAGE, f"{what} is not valid base64") from None


def load_ref(ref: PathRef | Base64Ref | CameraRef, app: App, max_pixels: int) -> np.ndarray:
    """Decode an image reference to (H, W, 3) uint8, enforcing the app's grants."""
    from ..io.image import load_image

    if isinstance(ref, PathRef):
        return load_image(app.check_path(ref.path), max_pixels=max_pixels, roots=app.roots)
    if isinstance(ref, CameraRef):
        app.check_camera("a camera frame")
        return load_image(decode_b64(ref.camera, "camera frame"), max_pixels=max_pixels)
    return load_image(decode_b64(ref.base64, "image base64"), max_pixels=max_pixels)


def objects(params: Any, max_pixels: int) -> list[list[Any]]:
    """The objects of a ``mask_from_prompt`` request, through the core codec."""
    if params.prompts is not None:
        return decode_objects(params.prompts, max_pixels=max_pixels)
    return [decode_prompts(_single(params), max_pixels=max_pixels)]


def one_object(params: Any, max_pixels: int) -> list[Any]:
    """The prompts of a ``segment_video_add_prompt`` request (one object), through the core codec."""
    return decode_prompts(params.prompts if params.prompts is not None else _single(params), max_pixels=max_pixels)


def _single(params: Any) -> list[dict[str, Any]]:
    """The single-object fields (point, points, box, mask, text) as prompt JSON."""
    points = ([params.point] if params.point is not None else []) + list(params.points or [])
    found = [{"kind": "point", **p.model_dump()} for p in points]
    if params.box is not None:
        found.append({"kind": "box", **params.box.model_dump()})
    if getattr(params, "mask", None) is not None:
        found.append({"kind": "mask", "rle": params.mask.model_dump()})
    if params.text is not None:
        found.append({"kind": "text", "text": params.text})
    return found


def ref_path(ref: PathRef | Base64Ref | CameraRef) -> str | None:
    """The path a request named for its image (recorded in the result), if it named one."""
    return ref.path if isinstance(ref, PathRef) else None

