"""A SAM-family model as a :class:`~segmentkit.roles.Tracker`: one loaded video model, many sessions."""

from __future__ import annotations

from typing import Any

from segmentkit.cards import ModelCard
from segmentkit.errors import OptionsError, SessionError
from segmentkit.io.video import FrameStream, open_video
from segmentkit.roles import VideoSource
from segmentkit.session_files import restore_session

from .family import family_of
from .loading import load_video_model
from .video_fast import lean_view
from .video_options import Sam2TrackerOptions
from .video_session import Sam2TrackingSession


class Sam2Tracker:
    """Track prompted objects through videos, frame folders and live streams."""

    def __init__(self, card: ModelCard, options: Sam2TrackerOptions | None = None):
        self.card = card
        self.options = options if options is not None else Sam2TrackerOptions()
        self.family = family_of(card)
        if self.options.runtime not in (None, "torch"):
            raise OptionsError(f"{card.id!r} tracks on torch only, not runtime {self.options.runtime!r}")
        self.model = load_video_model(card, self.options)
        self._fast = lean_view(self.model, self.family, bf16=self.options.precision == "bf16",
                               memory_frames=self.options.memory_frames,
                               reference=self.options.engine == "reference")

    def start(self, source: VideoSource | None = None, *, stream: bool = False) -> Sam2TrackingSession:
        """A session over ``source`` (video file, frame folder or image sequence), or with
        ``stream=True`` a live one that receives frames through ``push_frame``."""
        if stream:
            if source is not None:
                raise SessionError("a live session takes no source: start(stream=True), then push_frame()")
            frames: Any = FrameStream(max_held=self.options.cache_frames)
        else:
            if source is None:
                raise SessionError("start() needs a video file, a frame folder or frames (or stream=True)")
            frames = open_video(source, cache_frames=self.options.cache_frames)
        return Sam2TrackingSession(self._fast, frames, self.options, self.family, model_id=self.card.id)

    def restore(self, path: Any, source: VideoSource | None = None) -> Sam2TrackingSession:
        """A session saved with ``session.save(path)``, over its video (or ``source``), ready to continue."""
        return restore_session(self, path, source)
