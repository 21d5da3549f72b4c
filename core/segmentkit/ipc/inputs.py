"""Request inputs -> core values: images (grant-checked, size-limited) and prompts."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..cards import ModelCard
from ..errors import PromptError
from ..types import Box, MaskPrompt, Point, Text, validate_prompts
from .errors import ErrorCode, rpc_error
from .manifest import App
from .schemas import Base64Ref, CameraRef, PathRef, RleIn


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


def to_prompts(params: Any, max_pixels: int) -> list[Any]:
    """Core prompts from a request's ``point`` / ``points`` / ``box`` / ``mask`` / ``text``."""
    prompts: list[Any] = []
    points = ([params.point] if params.point is not None else []) + list(params.points or [])
    prompts += [Point(p.x, p.y, positive=p.positive) for p in points]
    if params.box is not None:
        b = params.box
        prompts.append(Box(b.x0, b.y0, b.x1, b.y1))
    mask = getattr(params, "mask", None)
    if mask is not None:
        prompts.append(MaskPrompt(_rle_mask(mask, max_pixels)))
    if params.text is not None:
        prompts.append(Text(params.text))
    return prompts


def check_prompts(prompts: Sequence[Any], card: ModelCard, image_size: tuple[int, int] | None) -> None:
    """Refuse prompt kinds the model does not take, and prompts outside the image."""
    kinds = sorted({p.kind for p in prompts} - set(card.prompt_kinds))
    if kinds:
        takes = ", ".join(card.prompt_kinds) or "none"
        raise PromptError(f"model {card.id!r} does not take {', '.join(kinds)} prompts (it takes: {takes})")
    if image_size is not None:
        validate_prompts(prompts, image_size)


def _rle_mask(rle: RleIn, max_pixels: int) -> np.ndarray:
    from ..rle import decode_untrusted

    try:
        return decode_untrusted(rle.size, rle.counts, max_pixels)
    except ValueError as exc:
        raise PromptError(f"mask prompt is not valid COCO RLE: {exc}") from None
