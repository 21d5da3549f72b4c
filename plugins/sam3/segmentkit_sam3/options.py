"""Per-model and per-call options of SAM 3."""

from __future__ import annotations

from pydantic import Field
from segmentkit import CallOptions, ModelOptions


class Sam3Options(ModelOptions):
    """Thresholds of concept segmentation and how many objects a video session follows."""

    threshold: float = Field(default=0.5, ge=0, le=1, description="Keep instances whose score is above this.")
    mask_threshold: float = Field(default=0.5, gt=0, lt=1, description="Mask probability that counts as inside.")
    max_objects: int = Field(default=64, ge=1, description="Video: most objects a session tracks at once.")


class Sam3Call(CallOptions):
    """Per-call thresholds (``predict(emb, [Text("dog")], threshold=0.3)``); unset ones keep the load options."""

    threshold: float | None = Field(default=None, ge=0, le=1, description="Keep instances scoring above this.")
    mask_threshold: float | None = Field(default=None, gt=0, lt=1, description="Mask probability inside.")
    exemplars: bool = Field(default=False, description="Boxes without text are exemplars of a concept.")
