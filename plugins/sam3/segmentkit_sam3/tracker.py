"""SAM 3 as a tracker: sessions over a video file, a frame folder, frames, or live pushed frames."""

from __future__ import annotations

from typing import Any

from segmentkit.cards import ModelCard
from segmentkit.errors import SessionError
from segmentkit.io.video import FrameStream, open_video

from .loading import load_models
from .options import Sam3Options
from .video import Sam3Session


class Sam3Tracker:
    """One loaded checkpoint; each ``start`` opens a :class:`~segmentkit_sam3.video.Sam3Session`.

    Sessions do not save their model state (``session.save`` raises a SessionError)."""

    def __init__(self, card: ModelCard, options: Sam3Options):
        self.card, self.options = card, options
        self.models = load_models(card, options)

    def start(self, source: Any = None, *, stream: bool = False) -> Sam3Session:
        if stream == (source is not None):
            raise SessionError("start a session with a video source, or with stream=True for pushed frames")
        frames = FrameStream() if stream else open_video(source)
        return Sam3Session(self.models, frames, self.options, model_id=self.card.id)
