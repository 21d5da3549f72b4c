"""SAM 2 as a :class:`~segmentkit.roles.Tracker`: one loaded video model, many sessions."""

from __future__ import annotations

import logging
from typing import Any

from segmentkit.cards import ModelCard
from segmentkit.errors import OptionsError, SessionError, WeightsUnavailableError
from segmentkit.io.video import FrameStream, open_video
from segmentkit.roles import VideoSource
from segmentkit.session_files import restore_session

from .loading import load_sam2_config_and_weights
from .video_fast import lean_view
from .video_options import Sam2TrackerOptions
from .video_session import Sam2TrackingSession

log = logging.getLogger(__name__)


class Sam2Tracker:
    """Track prompted objects through videos, frame folders and live streams."""

    def __init__(self, card: ModelCard, options: Sam2TrackerOptions | None = None):
        self.card = card
        self.options = options if options is not None else Sam2TrackerOptions()
        if self.options.runtime not in (None, "torch"):
            raise OptionsError(f"{card.id!r} tracks on torch only, not runtime {self.options.runtime!r}")
        self.model = load_video_model(card, self.options)
        self._fast = lean_view(self.model, bf16=self.options.precision == "bf16",
                               memory_frames=self.options.memory_frames)

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
        return Sam2TrackingSession(self._fast, frames, self.options, model_id=self.card.id)

    def restore(self, path: Any, source: VideoSource | None = None) -> Sam2TrackingSession:
        """A session saved with ``session.save(path)``, over its video (or ``source``), ready to continue."""
        return restore_session(self, path, source)


def load_video_model(card: ModelCard, options: Sam2TrackerOptions) -> Any:
    """A ``transformers.Sam2VideoModel`` in eval mode on ``options.device``."""
    from transformers import Sam2VideoModel

    path, config = load_sam2_config_and_weights(card, options)
    if config.get("model_type") != "sam2_video":
        raise WeightsUnavailableError(
            f"weights for {card.id!r} in {path} are an image-only SAM 2 checkpoint (model_type "
            f"{config.get('model_type')!r}); tracking needs the video checkpoint (model_type 'sam2_video'), "
            f"as published in the hub repository {card.weights.repo_id if card.weights else ''}".rstrip()
        )
    try:
        model, info = Sam2VideoModel.from_pretrained(path, output_loading_info=True)
    except Exception as exc:  # truncated file, wrong shapes, unreadable tensors...
        raise WeightsUnavailableError(
            f"weights for {card.id!r} in {path} cannot be loaded: {type(exc).__name__}: {_first_line(exc)}"
        ) from None
    missing = list(info.get("missing_keys") or []) + list(info.get("mismatched_keys") or [])
    if missing:
        names = ", ".join(str(k[0] if isinstance(k, tuple) else k) for k in missing[:3])
        raise WeightsUnavailableError(
            f"weights for {card.id!r} in {path} do not match the config ({len(missing)} tensors missing or "
            f"mis-shaped, e.g. {names})"
        )
    log.debug("loaded %s (video) from %s", card.id, path)
    try:
        return model.eval().to(options.device)
    except (RuntimeError, AssertionError) as exc:
        raise OptionsError(f"{card.id!r}: cannot move the model to device {options.device!r} "
                           f"({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
