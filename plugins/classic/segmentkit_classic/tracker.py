"""The ``classic`` tracker: GrabCut on prompted frames, optical flow + GrabCut in between.

A prompt makes its frame a *key frame* of the object: the mask there is the classic
prompter's answer (prompts on a frame replace earlier ones of that object there).
Propagation walks from a start frame forwards or backwards; on each frame an object
takes its key-frame mask if it has one, else its mask on the frame before is carried
over (:func:`.flow.follow`). On the start frame an object without a key frame there
starts from the mask last computed there, if any; otherwise it is absent (an empty
mask) until its next key frame. Only the last mask of each object is kept, so memory
stays flat however long the video.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from segmentkit.cards import ModelCard
from segmentkit.errors import SessionError
from segmentkit.io.video import FrameSource, FrameStream, open_video
from segmentkit.sessions import ObjectIndex, check_frame, check_object_id
from segmentkit.types import FrameMasks, Masks

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


class ClassicSession:
    """One video and its objects (see the module docstring); one caller at a time."""

    def __init__(self, prompter: Classic, frames: FrameSource | FrameStream):
        self.id = uuid.uuid4().hex
        self._prompter = prompter
        self._frames: FrameSource | FrameStream | None = frames
        self._objects = ObjectIndex()
        self._keys: dict[int, dict[int, np.ndarray]] = {}  # object id -> frame -> prompted mask
        self._last: dict[int, tuple[int, np.ndarray]] = {}  # object id -> (frame, mask) computed last
        self._lock = threading.RLock()

    @property
    def num_frames(self) -> int:
        return len(self._live())

    @property
    def frame_size(self) -> tuple[int, int] | None:
        return self._live().frame_size

    @property
    def object_ids(self) -> list[int]:
        return self._objects.ids

    @property
    def closed(self) -> bool:
        return self._frames is None

    def add_prompts(self, frame: int, object_id: int, prompts: Sequence[Any]) -> FrameMasks:
        """Make ``frame`` a key frame of ``object_id``; returns every object's mask there."""
        with self._lock:
            frames = self._live()
            frame = self._check_frame(frame)
            object_id = check_object_id(object_id)
            embedding = self._prompter.embed(frames[frame])
            mask = self._prompter.predict(embedding, prompts).masks[0]
            self._objects.add(object_id)
            self._keys.setdefault(object_id, {})[frame] = mask
            self._last[object_id] = (frame, mask)
            return self._result(frame, {o: self._known(o, frame) for o in self._objects.ids})

    def propagate(
        self, start: int | None = None, *, reverse: bool = False, max_frames: int | None = None
    ) -> Iterator[FrameMasks]:
        """Every object's masks frame by frame from ``start`` (default: the first key frame)."""
        with self._lock:
            frames = self._live()
            if isinstance(frames, FrameStream):
                raise SessionError("a live stream is tracked frame by frame with push_frame(), not propagate()")
            if not len(self._objects):
                raise SessionError("no objects to track: add prompts first")
            if start is None:
                start = min(f for keys in self._keys.values() for f in keys)
            start = self._check_frame(start)
            if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int)
                                           or max_frames < 1):
                raise SessionError(f"max_frames must be an integer >= 1, got {max_frames!r}")
            end = -1 if reverse else len(frames)
            order = range(start, end, -1 if reverse else 1)[:max_frames]
        return self._walk(order)

    def _walk(self, order: range) -> Iterator[FrameMasks]:
        masks = {o: self._known(o, order[0]) for o in self._objects.ids}
        previous = None
        for frame in order:
            with self._lock:
                image = self._live()[frame]
                masks = {o: self._next(o, frame, masks.get(o), previous, image) for o in self._objects.ids}
                previous = image
                result = self._result(frame, masks)
            yield result

    def push_frame(self, image: Any) -> FrameMasks:
        """Append a live frame and carry every object onto it (stream sessions)."""
        with self._lock:
            stream = self._live()
            if not isinstance(stream, FrameStream):
                raise SessionError("push_frame() needs a live session: start(stream=True)")
            frame = stream.push(image)
            previous = stream[frame - 1] if frame > stream.first_held else None
            masks = {o: self._next(o, frame, self._known(o, frame - 1), previous, stream[frame])
                     for o in self._objects.ids}
            return self._result(frame, masks)

    def remove_object(self, object_id: int) -> None:
        """Stop tracking ``object_id``; the id cannot be used again until :meth:`reset`."""
        with self._lock:
            self._live()
            self._objects.remove(object_id)
            self._keys.pop(object_id, None)
            self._last.pop(object_id, None)

    def reset(self) -> None:
        """Forget every object and prompt; the video stays open."""
        with self._lock:
            self._live()
            self._objects.reset()
            self._keys.clear()
            self._last.clear()

    def close(self) -> None:
        """Release the video; further calls raise :class:`SessionError`."""
        with self._lock:
            if self._frames is not None:
                self._frames.close()
                self._frames = None
                self._keys.clear()
                self._last.clear()

    def __enter__(self) -> ClassicSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _live(self) -> FrameSource | FrameStream:
        if self._frames is None:
            raise SessionError(f"session {self.id!r} is closed")
        return self._frames

    def _check_frame(self, frame: Any) -> int:
        frames = self._live()
        if isinstance(frames, FrameStream):
            return check_frame(frame, len(frames), first=frames.first_held, what="stream")
        return check_frame(frame, len(frames))

    def _known(self, object_id: int, frame: int) -> np.ndarray | None:
        """The object's mask on ``frame`` if it is a key frame or was computed there last."""
        key = self._keys.get(object_id, {}).get(frame)
        if key is not None:
            return key
        last = self._last.get(object_id)
        return last[1] if last is not None and last[0] == frame else None

    def _next(self, object_id: int, frame: int, mask: np.ndarray | None, previous: np.ndarray | None,
              image: np.ndarray) -> np.ndarray | None:
        """The object's mask on ``frame``: its key frame, else ``mask`` carried over from ``previous``."""
        key = self._keys[object_id].get(frame)
        if key is not None:
            found = key
        elif mask is None or previous is None:
            return mask if previous is None else None
        else:
            options = self._prompter.options
            found = follow(previous, image, mask, max_side=options.max_side, iterations=options.iterations,
                           seed=options.seed)
        self._last[object_id] = (frame, found)
        return found

    def _result(self, frame: int, masks: dict[int, np.ndarray | None]) -> FrameMasks:
        size = self._live().frame_size
        ids = self._objects.ids
        empty = np.zeros(size, dtype=bool)
        stack = np.stack([masks.get(o) if masks.get(o) is not None else empty for o in ids]) if ids \
            else np.zeros((0, *size), dtype=bool)
        return FrameMasks(frame, Masks(stack, object_ids=np.asarray(ids, dtype=np.int64)))
