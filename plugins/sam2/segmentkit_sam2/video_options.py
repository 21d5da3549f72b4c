"""Per-model options of the SAM-family tracker (pydantic, no torch)."""

from __future__ import annotations

from pydantic import Field

from .options import SamFamilyOptions


class Sam2TrackerOptions(SamFamilyOptions):
    """Options of the SAM-family video tracker."""

    mask_threshold: float = Field(default=0.0, description="Logit above which a pixel belongs to an object.")
    cache_frames: int = Field(
        default=8, ge=1, le=1024,
        description="Decoded frames a session keeps (files: an LRU for random access; streams: the most "
                    "recent frames, the only ones prompts can still be added to).",
    )
    max_objects: int = Field(default=64, ge=1, description="Most objects one session tracks.")
    memory_frames: int | None = Field(
        default=None, ge=1,
        description="Recent tracked frames in each object's memory (default: the checkpoint's, 6 for SAM 2.1). "
                    "Fewer is faster (memory attention's cost grows with it) and less accurate on long motion.",
    )
