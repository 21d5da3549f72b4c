"""The ``classic`` tracker: GrabCut on prompted frames, optical flow + GrabCut in between.

A prompt makes its frame a *key frame* of the object: the mask there is the classic
prompter's answer (prompts on a frame replace earlier ones of that object there).
Tracking frame f (forwards; backwards mirrors it) gives an object its key-frame mask
if f is one, else carries its mask on frame f - 1 over (:func:`.flow.follow`); an
object with no mask on f - 1 keeps the mask it already has on f, or is absent (an
empty mask) until its next key frame. Lifecycle, prompts log, per-frame results and
save / restore come from :class:`segmentkit.sessions.TrackingSession`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from segmentkit.cards import ModelCard
from segmentkit.errors import SessionError
from segmentkit.io.video import FrameStream, open_video
from segmentkit.session_files import restore_session
from segmentkit.sessions import TrackingSession
from segmentkit.types import FrameMasks

from .flow import follow
from .model import Classic
from .options import ClassicOptions


class ClassicTracker:
    """Starts :class:`ClassicSession` objects (the tracker role of ``classic``)."""

    def __init__(self, card: ModelCard, options: ClassicOptions):
        self._prompter = Classic(card, options)
        self.card = card
        self.options = options

    def start(self, source: Any = None, *, stream: bool = False) -> ClassicSession:
        """A session over a video file, frame folder or image sequence, or a live one with ``stream``."""
        if stream == (source is not None):
            raise SessionError("start() takes a video source or stream=True (not both, not neither)")
        return ClassicSession(self._prompter, FrameStream(max_held=2) if stream else open_video(source))

    def restore(self, path: Any, source: Any = None) -> ClassicSession:
        """A session continuing the one saved at ``path`` (over ``source``, default the saved video)."""
        return restore_session(self, path, source)


class ClassicSession(TrackingSession):
    """One video and its objects (see the module docstring)."""

    def __init__(self, prompter: Classic, frames: Any):
        super().__init__(frames, model_id=prompter.card.id)
        self._prompter = prompter
        self._keys: dict[int, dict[int, np.ndarray]] = {}  # object id -> frame -> prompted mask

    def _encode(self, frame: int, prompts: list[Any]) -> np.ndarray:
        embedding = self._prompter.embed(self.frames[frame])
        return self._prompter.predict(embedding, prompts).masks[0]

    def _prompt(self, frame: int, index: int, mask: np.ndarray) -> FrameMasks:
        self._keys.setdefault(self.objects.id_of(index), {})[frame] = mask
        return self.frame_result(frame, {o: self._mask_on(o, frame) for o in self.objects.ids})

    def _track(self, frame: int, reverse: bool) -> FrameMasks:
        before = frame + 1 if reverse else frame - 1
        image = self.frames[frame]
        options = self._prompter.options
        masks = {}
        for object_id in self.objects.ids:
            mask = self._keys[object_id].get(frame)
            previous = None if mask is not None else self._mask_on(object_id, before)
            if previous is not None:
                mask = follow(self.frames[before], image, previous, max_side=options.max_side,
                              iterations=options.iterations, seed=options.seed)
            masks[object_id] = mask if mask is not None else self._mask_on(object_id, frame)
        return self.frame_result(frame, masks)

    def _remove(self, object_id: int, index: int) -> None:
        self._keys.pop(object_id, None)

    def _clear(self) -> None:
        self._keys.clear()

    def _release(self) -> None:
        self._keys.clear()

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        keys = [(o, f) for o, frames in self._keys.items() for f in frames]
        return {"keys": keys}, {f"key_{n}": self._keys[o][f] for n, (o, f) in enumerate(keys)}

    def _load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        for n, (object_id, frame) in enumerate(meta["keys"]):
            self._keys.setdefault(int(object_id), {})[int(frame)] = arrays[f"key_{n}"].astype(bool)

    def _mask_on(self, object_id: int, frame: int) -> np.ndarray | None:
        """The object's key-frame mask on ``frame``, else its latest result there (``None``: unknown)."""
        key = self._keys.get(object_id, {}).get(frame)
        return key if key is not None else self.mask(frame, object_id)
