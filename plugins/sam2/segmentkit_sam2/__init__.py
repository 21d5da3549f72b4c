"""segmentkit plugin: the SAM family (SAM 2, SAM 2.1; see ``family.py``) as prompter, automatic
segmenter and tracker.

Only hook implementations live here; model code is imported when a model is loaded.
"""

from __future__ import annotations

from segmentkit import hookimpl
from segmentkit.cards import ModelSpec

from .catalog import cards
from .options import Sam2AutomaticOptions, Sam2Options
from .video_options import Sam2TrackerOptions

__all__ = ["cards", "segmentkit_prompters", "segmentkit_segmenters", "segmentkit_trackers"]


@hookimpl
def segmentkit_prompters() -> list[ModelSpec]:
    """SAM-family prompters: points (+/-), a box, a previous mask; multimask output."""
    return [
        ModelSpec(card=c, role="prompter", loader="segmentkit_sam2.prompter:Sam2Prompter", options=Sam2Options)
        for c in cards()
    ]


@hookimpl
def segmentkit_segmenters() -> list[ModelSpec]:
    """SAM-family automatic mask generation (task ``automatic``)."""
    return [
        ModelSpec(
            card=c, role="segmenter", loader="segmentkit_sam2.automatic:Sam2AutomaticSegmenter",
            options=Sam2AutomaticOptions,
        )
        for c in cards()
    ]


@hookimpl
def segmentkit_trackers() -> list[ModelSpec]:
    """SAM-family video trackers: prompt objects on any frame, propagate them, or follow a live stream."""
    return [
        ModelSpec(card=c, role="tracker", loader="segmentkit_sam2.tracker:Sam2Tracker", options=Sam2TrackerOptions)
        for c in cards()
    ]
