"""Per-model options of the grounder and of the grounded pipeline."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from segmentkit import CallOptions, ModelOptions


class GroundingOptions(ModelOptions):
    """Grounding DINO thresholds (the reference defaults of Grounded-SAM 2's demos)."""

    box_threshold: float = Field(default=0.35, ge=0, le=1, description="Keep boxes scoring above this.")
    text_threshold: float = Field(default=0.25, ge=0, le=1, description="Tokens above this name the box.")
    shortest_edge: int = Field(default=800, gt=0, description="Resize so the short side is this long...")
    longest_edge: int = Field(default=1333, gt=0, description="...and the long side at most this.")


class GroundingCall(CallOptions):
    """Per-call thresholds (``detect(image, text, box_threshold=0.3)``); unset ones keep the load options."""

    box_threshold: float = Field(default=0.35, ge=0, le=1, description="Keep boxes scoring above this.")
    text_threshold: float = Field(default=0.25, ge=0, le=1, description="Tokens above this name the box.")


class GroundedOptions(ModelOptions):
    """Which grounder and SAM 2 models the pipeline composes, and how video detection runs."""

    detector: str = Field(default="grounding-dino-tiny", description="Grounder model id (registry).")
    sam: str = Field(default="sam2.1-hiera-tiny", description="Prompter / tracker model id (registry).")
    detector_weights: Path | None = Field(default=None, description="Local checkpoint dir for the grounder.")
    sam_weights: Path | None = Field(default=None, description="Local checkpoint dir for SAM 2.")
    box_threshold: float = Field(default=0.35, ge=0, le=1, description="Grounder box threshold.")
    text_threshold: float = Field(default=0.25, ge=0, le=1, description="Grounder text threshold.")
    detect_every: int = Field(default=10, ge=1, description="Video: run the grounder every K frames.")
    match_iou: float = Field(default=0.5, gt=0, le=1, description="Video: IoU that ties a detection to a track.")
    max_objects: int = Field(default=32, ge=1, description="Video: most objects tracked at once.")

    @model_validator(mode="after")
    def _no_single_weights(self) -> GroundedOptions:
        if self.weights is not None:
            raise ValueError("grounded-sam2 composes two models: use detector_weights and sam_weights")
        return self
