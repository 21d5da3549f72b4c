"""Prompts on the wire: one codec and one grouping rule.

Every face (CLI, IPC, batch, the Python client, result documents, saved sessions) turns
what it was sent into core prompts here, so they agree:

- **Codec.** A prompt's JSON is the core type's fields with its ``kind``
  (``{"kind": "point", "x": 10, "y": 20, "positive": true}``, ``{"kind": "box", "x0": ..,
  "y0": .., "x1": .., "y1": ..}``, ``{"kind": "text", "text": "a dog"}``); a mask prompt
  travels as ``{"kind": "mask", "rle": {"size": [H, W], "counts": ...}}``. An object is a
  list of prompts; a request is a list of objects: ``[[...], [...]]``.
- **Grouping.** An object is one prompt set. A flat list of prompts (CLI flags, manifest
  shorthand, the client's keywords) is one object, except that several boxes with no other
  prompt are several objects, one per box. Boxes next to a text prompt are exemplars of the
  concept (one object); several boxes next to clicks or a mask are ambiguous and refused.
  A grouped object lists its prompts by kind (text, boxes, points, masks), each kind in the
  order given, so faces that collect them in different orders hand a model the same object.

:mod:`segmentkit.plan` then checks the objects against a model's card before it loads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from . import rle as _rle
from .errors import PromptError, validation_details
from .types import Box, MaskPrompt, Point, Prompt, Text

__all__ = ["decode_objects", "decode_prompts", "encode_objects", "encode_prompt", "flat", "group"]

Objects = list[list[Any]]
_PROMPTS = TypeAdapter(list[Prompt])
_OBJECTS = TypeAdapter(list[list[Prompt]])


# --------------------------------------------------------------------------- codec


def encode_prompt(prompt: Any) -> dict[str, Any]:
    """A core prompt as JSON (a mask prompt as COCO RLE; logits are thresholded at 0)."""
    if isinstance(prompt, MaskPrompt):
        mask = prompt.mask > 0 if prompt.is_logits else prompt.mask
        return {"kind": "mask", "rle": _rle.encode(np.asarray(mask, dtype=bool))}
    return prompt.model_dump(mode="json")


def encode_objects(objects: Sequence[Sequence[Any]]) -> list[list[dict[str, Any]]]:
    """Prompt sets as JSON: one list of prompt objects per object."""
    return [[encode_prompt(p) for p in prompts] for prompts in objects]


def decode_prompts(value: Any, *, max_pixels: int | None = None) -> list[Any]:
    """One object's prompts from JSON; a malformed one -> :class:`PromptError` naming where."""
    return _decode(_PROMPTS, value, max_pixels, "prompts")


def decode_objects(value: Any, *, max_pixels: int | None = None) -> Objects:
    """Prompt sets ``[[...], ...]`` from JSON (``max_pixels`` bounds a mask prompt's RLE)."""
    if isinstance(value, Sequence) and not isinstance(value, str) and not all(
            isinstance(v, Sequence) and not isinstance(v, (str, Mapping)) for v in value):
        raise PromptError("prompts must be a list of objects, each a list of prompts: [[{...}, ...], ...]")
    return _decode(_OBJECTS, value, max_pixels, "prompts")


def _decode(adapter: TypeAdapter[Any], value: Any, max_pixels: int | None, where: str) -> Any:
    try:
        return adapter.validate_python(_masks_in(value, max_pixels))
    except ValidationError as exc:
        raise PromptError(f"invalid prompts: {validation_details(exc, where)}") from None


def _masks_in(value: Any, max_pixels: int | None) -> Any:
    """``value`` with every ``{"kind": "mask", "rle": ...}`` decoded to a bool array."""
    if isinstance(value, Mapping):
        if value.get("kind") == "mask" and "mask" not in value and not isinstance(value.get("rle"), Mapping):
            raise PromptError('a mask prompt needs its mask as "rle": {"size": [H, W], "counts": ...}')
        if value.get("kind") == "mask" and "mask" not in value:
            rle = value["rle"]
            try:
                mask = _rle.decode_untrusted(rle.get("size"), rle.get("counts"), max_pixels or 2**31)
            except (TypeError, ValueError) as exc:
                raise PromptError(f"mask prompt is not valid COCO RLE: {exc}") from None
            return {"kind": "mask", "mask": mask}
        return value
    if isinstance(value, (list, tuple)):
        return [_masks_in(v, max_pixels) for v in value]
    return value


# --------------------------------------------------------------------------- grouping


_KIND_ORDER = ("text", "box", "point", "mask")


def group(prompts: Sequence[Any]) -> Objects:
    """Objects from a flat list of prompts, by the one rule of this module's docstring."""
    prompts = sorted(prompts, key=lambda p: _KIND_ORDER.index(p.kind))
    if not prompts:
        raise PromptError("no prompt given: give at least one point, box, mask or text")
    boxes = [p for p in prompts if isinstance(p, Box)]
    if len(boxes) < 2 or any(isinstance(p, Text) for p in prompts):
        return [prompts]
    if len(boxes) == len(prompts):
        return [[b] for b in boxes]
    raise PromptError("several boxes are several objects and cannot be combined with clicks or a mask; "
                      "give the objects as separate prompt sets")


def flat(*, points: Sequence[Any] = (), boxes: Sequence[Any] = (), texts: Sequence[str] = (),
         masks: Sequence[Any] = ()) -> list[Any]:
    """Core prompts from loose values: points ``(x, y[, positive])``, boxes ``(x0, y0, x1, y1)``,
    texts, masks (core prompts pass through)."""
    out: list[Any] = []
    for p in points:
        out.append(p if isinstance(p, Point) else Point(*p[:2], positive=bool(p[2]) if len(p) > 2 else True))
    out += [b if isinstance(b, Box) else Box(*b) for b in boxes]
    out += [m if isinstance(m, MaskPrompt) else MaskPrompt(getattr(m, "mask", m)) for m in masks]
    out += [t if isinstance(t, Text) else Text(t) for t in texts]
    return out
