"""Tracking sessions: the base class every tracker's session extends, and the host's table.

:class:`TrackingSession` owns everything about a session that is not model maths:
lifecycle (a lock, closed checks, context manager), object ids, frame bounds,
``propagate`` semantics (start, direction, ``max_frames``), the prompt log, the
latest masks of every frame, remove/reset bookkeeping and ``save``. A tracker plugin
subclasses it and fills in a few per-frame hooks (see the class docstring).

:class:`ObjectIndex` and :func:`check_frame` are the pieces the base uses, so every
tracker enforces the same rules with the same messages. The IPC service keeps its open
sessions in :class:`segmentkit.ipc.session_table.SessionTable`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from . import contract
from .errors import PromptError, SessionError

__all__ = [
    "DIRECTIONS", "Direction", "ObjectIndex", "Propagation", "TrackingSession", "check_frame",
    "check_object_id",
]

# --------------------------------------------------------------------------- per-session pieces


def check_object_id(object_id: Any) -> int:
    """A user object id: an int >= 0 (bools are refused)."""
    if isinstance(object_id, bool) or not isinstance(object_id, int) or object_id < 0:
        raise SessionError(f"object id must be an integer >= 0, got {object_id!r}")
    return int(object_id)


def check_frame(frame: Any, num_frames: int, *, first: int = 0, what: str = "video") -> int:
    """``frame`` as an int in ``[first, num_frames)``, else a :class:`SessionError` saying the range.

    ``first`` > 0 describes a live stream that only holds its most recent frames.
    """
    if isinstance(frame, bool) or not isinstance(frame, int):
        raise SessionError(f"frame index must be an integer, got {frame!r}")
    if num_frames <= 0:
        raise SessionError(f"frame {frame} is out of range: the {what} has no frames yet")
    if not first <= frame < num_frames:
        if first and 0 <= frame < first:
            raise SessionError(
                f"frame {frame} is no longer held: the {what} keeps frames {first}..{num_frames - 1}"
            )
        raise SessionError(f"frame {frame} is out of range: the {what} has frames {first}..{num_frames - 1}")
    return frame


class ObjectIndex:
    """User-chosen object ids <-> contiguous internal indices ``0..n-1`` (in order of arrival).

    Removing an object shifts the indices after it down by one. A removed id cannot
    come back in the same session until :meth:`reset`: results already handed out under
    that id would otherwise describe two different objects.
    """

    def __init__(self, max_objects: int | None = None):
        self.max_objects = max_objects
        self._ids: list[int] = []
        self._removed: set[int] = set()

    def add(self, object_id: int) -> int:
        """Index of ``object_id``, registering it if new."""
        object_id = check_object_id(object_id)
        if object_id in self._ids:
            return self._ids.index(object_id)
        if object_id in self._removed:
            raise SessionError(
                f"object id {object_id} was removed from this session; ids are not reused "
                "(pick a new id, or reset() the session)"
            )
        if self.max_objects is not None and len(self._ids) >= self.max_objects:
            raise SessionError(f"too many objects: a session tracks at most {self.max_objects}")
        self._ids.append(object_id)
        return len(self._ids) - 1

    def index(self, object_id: int) -> int:
        """Index of a registered ``object_id``; unknown -> :class:`SessionError`."""
        try:
            return self._ids.index(object_id)
        except ValueError:
            known = ", ".join(map(str, self._ids)) or "none"
            raise SessionError(f"unknown object id {object_id!r} (objects in this session: {known})") from None

    def id_of(self, index: int) -> int:
        return self._ids[index]

    def remove(self, object_id: int) -> int:
        """Forget ``object_id``; returns the index it had."""
        index = self.index(object_id)
        del self._ids[index]
        self._removed.add(object_id)
        return index

    def reset(self) -> None:
        self._ids.clear()
        self._removed.clear()

    @property
    def ids(self) -> list[int]:
        return list(self._ids)

    @property
    def removed(self) -> set[int]:
        """Ids removed since the last reset (they cannot come back)."""
        return set(self._removed)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._ids


# --------------------------------------------------------------------------- the session base class

Direction = Literal["forward", "backward", "both"]
DIRECTIONS: tuple[str, ...] = ("forward", "backward", "both")


class Propagation(Iterator[Any]):
    """The frames of one ``propagate`` call as they are computed; ``total`` says how many will come."""

    def __init__(self, frames: Iterator[Any], total: int):
        self._frames = frames
        self.total = total

    def __next__(self) -> Any:
        return next(self._frames)

    def close(self) -> None:
        """Stop early (the frames computed so far stay in the session)."""
        self._frames.close()


class TrackingSession:
    """One video (file, frame folder, frame sequence or live stream) and the objects tracked in it.

    The base owns the session; a tracker plugin subclasses it and writes only the model
    maths. Public calls (thread-safe, serialised by one lock, :class:`SessionError` once
    closed):

    - ``add_prompts(frame, object_id, prompts)`` prompts an object on a frame (the
      prompts replace that object's earlier prompts on that frame); returns the frame's masks.
    - ``propagate(start=None, *, direction="forward", max_frames=None)`` is a generator of
      every object's masks frame by frame. ``direction`` is ``"forward"`` (towards the
      last frame), ``"backward"`` (towards frame 0) or ``"both"`` (forward, then backward
      from the same start without repeating it). ``start`` defaults to the frames prompted
      since the last propagation (a correction on frame k re-propagates from k: frames
      before k forwards, or after k backwards, cannot change), else to the prompted
      frames: the earliest for forward, the latest for backward. ``max_frames`` caps
      each direction's pass (a start frame both passes share counts in each).
    - ``push_frame(image)`` appends a live frame and returns its masks (streams).
    - ``remove_object(object_id)`` (the id is not reused until ``reset()``), ``reset()``
      (forget every object and prompt), ``save(path)`` (see
      :mod:`segmentkit.session_files`), ``close()``; the session is a context manager.
    - ``frame_masks(frame)``: the latest masks computed for a frame (kept compressed;
      a stream keeps those of the frames it holds); ``mask(frame, object_id)``: one of them.

    A subclass uses only public names and the hooks and helpers listed here (a test holds
    every shipped plugin to this list). Hooks it implements, called with the lock held, on
    an open session, with frame indices and object ids already checked:

    - ``_encode(frame, prompts)``: validate and convert prompts, changing no state
      (default: :func:`segmentkit.types.validate_prompts` at the frame size);
    - ``_prompt(frame, index, encoded)`` -> :class:`FrameMasks`: apply them to the
      object at internal ``index`` (``self.objects`` maps ids to indices);
    - ``_prompt_text(frame, text)`` -> :class:`FrameMasks` or ``None``: a text query (a
      tracker that implements it takes text, :attr:`takes_text`). The base sends a prompt
      list holding a :class:`~segmentkit.types.Text` here once it is one text prompt on its
      own on a frame of the video, or on frame 0 of a live stream that has no frames yet
      (return ``None`` until frames come: no masks yet); it logs the query and marks the
      frame for the next propagation. A query is no object's prompt: it stays in the log
      when objects are removed, and the objects it finds may be missing from frames where
      they are not found;
    - ``_track(frame, reverse)`` -> :class:`FrameMasks`: every object's masks on one frame;
    - ``_push(image)`` -> :class:`FrameMasks`: append a live frame (``self.frames.push``
      returns its index) and track it (default: ``_track``, no masks before any object);
    - ``_before_propagate(passes)``: see the passes a ``propagate`` call planned,
      ``[(frames, reverse), ...]`` in the order they will run, before any frame is tracked
      (e.g. to look ahead), or refuse with a :class:`SessionError`;
    - ``_remove(object_id, index)``, ``_clear()`` (after reset), ``_release()`` (on close;
      the base then closes the frames);
    - ``_state()`` / ``_load_state(meta, arrays)``: the model state ``save`` writes and a
      restored session reads back (JSON-able dict, dict of numpy arrays;
      :func:`segmentkit.session_files.pack_tree` flattens nested tensors); a tracker that
      does not implement them cannot save, one that does needs ``restore(path,
      source=None)`` on the tracker (:func:`segmentkit.session_files.restore_session`).
      A session wrapping another may call the wrapped one's.

    Helpers: ``self.objects``, ``self.frames`` and the public facts above;
    ``frame_result(frame, masks)`` builds a :class:`FrameMasks` with one mask per object
    in ``object_ids`` order; ``empty_masks(frame)`` one with no masks; ``log_prompts(frame,
    object_id, prompts)`` logs prompts the session gave an object itself (a detector's
    boxes), so ``prompts`` and ``save`` include them.

    Every result a hook returns is checked (:func:`segmentkit.contract.check_frame`): a
    :class:`FrameMasks` of the frame asked for, at the frame size, with one mask per
    object in ``object_ids`` order (a text query's objects may be missing); anything else
    raises :class:`segmentkit.contract.Violation` naming the class and the hook.
    """

    def __init__(self, frames: Any, *, model_id: str = "", max_objects: int | None = None):
        self.id = uuid.uuid4().hex
        self.model_id = model_id
        self.frames = frames
        self.objects = ObjectIndex(max_objects=max_objects)
        self._lock = threading.RLock()
        self._closed = False
        # (frame, object id, is a text query) -> prompts, in order
        self._prompts: dict[tuple[int, int, bool], list[Any]] = {}
        self._pending: set[int] = set()  # frames prompted since the last propagation
        self._results: dict[int, dict[int, dict[str, Any]]] = {}  # frame -> object id -> RLE

    # ------------------------------------------------------------------ facts

    @property
    def is_stream(self) -> bool:
        """Whether frames are pushed live (``start(stream=True)``)."""
        return hasattr(self.frames, "push")

    @property
    def num_frames(self) -> int:
        """Frames in the video (for a stream: frames pushed so far)."""
        return len(self.frames)

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """(height, width) of the frames; ``None`` for a stream before its first frame."""
        return self.frames.frame_size

    @property
    def object_ids(self) -> list[int]:
        return self.objects.ids

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def takes_text(self) -> bool:
        """Whether text prompts are text queries (the subclass implements ``_prompt_text``)."""
        return type(self)._prompt_text is not TrackingSession._prompt_text

    @property
    def prompts(self) -> list[tuple[int, int, list[Any]]]:
        """The prompt log: ``(frame, object_id, prompts)`` in the order they were given."""
        with self._lock:
            return [(f, o, list(p)) for (f, o, _), p in self._prompts.items()]

    def frame_masks(self, frame: int) -> Any:
        """The latest :class:`~segmentkit.types.FrameMasks` computed for ``frame``, or ``None``."""
        from . import rle
        from .types import FrameMasks, Masks

        with self._lock:
            self._check_open()
            known = self._results.get(frame)
            if known is None:
                return None
            ids = [i for i in self.objects.ids if i in known]
            stack = [rle.decode(known[i]) for i in ids]
        masks = np.stack(stack) if stack else np.zeros((0, *self.frame_size), dtype=bool)
        return FrameMasks(frame, Masks(masks, object_ids=np.asarray(ids, dtype=np.int64)))

    def mask(self, frame: int, object_id: int) -> np.ndarray | None:
        """The latest (H, W) bool mask computed for ``object_id`` on ``frame``, or ``None``
        (none computed; any ``frame``, even one outside the video)."""
        from . import rle

        with self._lock:
            self._check_open()
            known = self._results.get(frame, {}).get(object_id)
        return None if known is None else rle.decode(known)

    # ------------------------------------------------------------------ public calls

    def add_prompts(self, frame: int, object_id: int, prompts: Sequence[Any]) -> Any:
        """Prompt ``object_id`` on ``frame`` (see the class docstring); returns that frame's masks."""
        from .types import Text

        with self._lock:
            self._check_open()
            object_id = check_object_id(object_id)
            query = self.takes_text and any(isinstance(p, Text) for p in prompts)
            if query:
                frame, text = self._text_query(frame, prompts)
                result = self._prompt_text(frame, text)
                result, hook = (self.empty_masks(frame) if result is None else result), "_prompt_text"
            else:
                frame = self._check_frame(frame)
                encoded = self._encode(frame, list(prompts))
                index = self.objects.add(object_id)
                result, hook = self._prompt(frame, index, encoded), "_prompt"
            self._log(frame, object_id, prompts, query)
            self._pending.add(frame)
            return self._accept(result, hook, frame)

    def propagate(self, start: int | None = None, *, direction: Direction = "forward",
                  max_frames: int | None = None) -> Propagation:
        """Yield every object's masks frame by frame (see the class docstring).

        Arguments are checked when called, not when iteration starts."""
        with self._lock:
            self._check_open()
            if self.is_stream:
                raise SessionError("a live stream is tracked frame by frame with push_frame(), not propagate()")
            if not (len(self.objects) or self._prompts):  # objects, or a text query to find them
                raise SessionError("no objects to track: add prompts first")
            if direction not in DIRECTIONS:
                raise SessionError(f"direction must be one of {', '.join(DIRECTIONS)}; got {direction!r}")
            if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int)
                                           or max_frames < 1):
                raise SessionError(f"max_frames must be an integer >= 1, got {max_frames!r}")
            passes = self._passes(start, direction, max_frames)
            self._before_propagate(passes)
            self._pending.clear()
        return Propagation(self._run(passes), sum(len(frames) for frames, _ in passes))

    def push_frame(self, image: Any) -> Any:
        """Append a live frame and return every object's masks on it (streams)."""
        with self._lock:
            self._check_open()
            if not self.is_stream:
                raise SessionError("push_frame() needs a live session: start(stream=True)")
            result = self._push(image)
            return self._accept(result, "_push", self.num_frames - 1)

    def remove_object(self, object_id: int) -> None:
        """Stop tracking ``object_id`` and free its memory; the id is not reused until reset()."""
        with self._lock:
            self._check_open()
            index = self.objects.remove(check_object_id(object_id))
            self._remove(object_id, index)
            for key in [k for k in self._prompts if k[1] == object_id and not k[2]]:
                del self._prompts[key]
            self._pending = {f for f, _, _ in self._prompts} & self._pending
            for masks in self._results.values():
                masks.pop(object_id, None)

    def reset(self) -> None:
        """Forget every object, prompt and result; the video stays open."""
        with self._lock:
            self._check_open()
            self.objects.reset()
            self._prompts.clear()
            self._pending.clear()
            self._results.clear()
            self._clear()

    def save(self, path: Any) -> Any:
        """Write the session (prompts, per-frame masks, model state) to ``path``; returns the path.

        :func:`segmentkit.session_files.read_session` reads it; a tracker's ``restore(path)``
        continues it."""
        from .session_files import write_session

        with self._lock:
            self._check_open()
            return write_session(path, self)

    def close(self) -> None:
        """Free the session's memory and video (idempotent); later calls raise :class:`SessionError`."""
        with self._lock:
            if not self._closed:
                self._closed = True
                try:
                    self._release()
                finally:
                    self._results.clear()
                    self.frames.close()

    def __enter__(self) -> TrackingSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = "stream" if self.is_stream else f"{self.num_frames} frames"
        return f"<{type(self).__name__} {self.id[:8]} {kind}{' closed' if self._closed else ''}>"

    # ------------------------------------------------------------------ hooks

    def _encode(self, frame: int, prompts: list[Any]) -> Any:
        from .types import validate_prompts

        return validate_prompts(prompts, self.frame_size)

    def _prompt(self, frame: int, index: int, encoded: Any) -> Any:
        raise NotImplementedError

    def _prompt_text(self, frame: int, text: str) -> Any:
        """Answer a text query (implementing this makes the session take text: :attr:`takes_text`)."""
        raise NotImplementedError

    def _track(self, frame: int, reverse: bool) -> Any:
        raise NotImplementedError

    def _push(self, image: Any) -> Any:
        """Append ``image`` to the stream and track it (override to wrap another session)."""
        frame = self.frames.push(image)
        return self._track(frame, False) if len(self.objects) else self.empty_masks(frame)

    def _before_propagate(self, passes: list[tuple[range, bool]]) -> None:
        """See the planned ``(frames, reverse)`` passes before the first frame is tracked."""

    def _remove(self, object_id: int, index: int) -> None:
        """Forget the object that had ``index`` (indices after it have moved down one)."""

    def _clear(self) -> None:
        """Forget every object's model state (after ``reset``)."""

    def _release(self) -> None:
        """Drop the model state (on ``close``)."""

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        raise SessionError(f"{type(self).__name__} cannot save its state")

    def _load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        raise SessionError(f"{type(self).__name__} cannot restore a saved state")

    # ------------------------------------------------------------------ helpers for subclasses

    def frame_result(self, frame: int, masks: Mapping[int, np.ndarray | None]) -> Any:
        """A :class:`FrameMasks` of ``frame`` with one mask per object, in ``object_ids`` order:
        ``masks[object_id]`` ((H, W) bool), or an empty mask for an object left out or mapped to ``None``
        (a mask for an object the session does not track is a plugin bug: :class:`~segmentkit.contract.Violation`)."""
        from .types import FrameMasks, Masks

        ids = self.objects.ids
        unknown = sorted(set(masks) - set(ids))
        if unknown:
            raise contract.Violation(f"{type(self).__name__}.frame_result got masks for objects {unknown}, "
                                     f"which the session does not track ({ids})")
        size = self.frame_size or (0, 0)
        rows = [np.zeros(size, dtype=bool) if (m := masks.get(i)) is None else np.asarray(m, dtype=bool) for i in ids]
        stack = np.stack(rows) if rows else np.zeros((0, *size), dtype=bool)
        return FrameMasks(frame, Masks(stack, object_ids=np.asarray(ids, dtype=np.int64)))

    def empty_masks(self, frame: int) -> Any:
        """A :class:`FrameMasks` of ``frame`` with no masks (nothing tracked or found there yet)."""
        from .types import FrameMasks, Masks

        size = self.frame_size or (0, 0)  # a stream before its first frame
        return FrameMasks(frame, Masks.empty(size, object_ids=np.zeros(0, dtype=np.int64)))

    def log_prompts(self, frame: int, object_id: int, prompts: Sequence[Any]) -> None:
        """Log prompts the session gave ``object_id`` itself on ``frame`` (e.g. a detector's boxes),
        replacing its earlier ones there, so ``prompts`` and ``save`` include them; a call from
        a hook during propagation does not change where the next propagation starts."""
        with self._lock:
            self._log(frame, check_object_id(object_id), prompts, False)

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            raise SessionError(f"session {self.id!r} is closed")

    def _check_frame(self, frame: Any) -> int:
        if self.is_stream:
            return check_frame(frame, len(self.frames), first=self.frames.first_held, what="stream")
        return check_frame(frame, len(self.frames))

    def _text_query(self, frame: Any, prompts: Sequence[Any]) -> tuple[int, str]:
        """``frame`` and the text of a text query: one text prompt on its own, on a frame of the
        session, or on frame 0 of a live stream that has no frames yet (a query may come first)."""
        from .types import Text

        if len(prompts) != 1 or not isinstance(prompts[0], Text):
            raise PromptError("give one text prompt on its own (a noun phrase), not mixed with points, boxes "
                              "or another text")
        if self.num_frames == 0 and (isinstance(frame, bool) or not isinstance(frame, int) or frame != 0):
            raise SessionError(f"a live stream with no frames yet takes a text query on frame 0 (the first "
                               f"frame to come), not on frame {frame!r}")
        return (frame if self.num_frames == 0 else self._check_frame(frame)), prompts[0].text

    def _log(self, frame: int, object_id: int, prompts: Sequence[Any], query: bool) -> None:
        key = (frame, object_id, query)
        self._prompts.pop(key, None)  # a replacement goes to the end of the log
        self._prompts[key] = list(prompts)

    def _restore(self, saved: Any) -> None:
        """Take the state of a :class:`~segmentkit.session_files.SavedSession` (a fresh session only)."""
        from .types import Text

        manifest = saved.manifest
        size = None if self.frame_size is None else list(self.frame_size)
        if manifest["num_frames"] != self.num_frames or manifest["frame_size"] != size:
            raise SessionError(
                f"the video has {self.num_frames} frames of {size}, the saved session "
                f"{manifest['num_frames']} of {manifest['frame_size']}: not the video it was saved over"
            )
        with self._lock:
            self._check_open()
            if len(self.objects) or self._prompts:
                raise SessionError("only a fresh session can take a saved state")
            for object_id in manifest["objects"]:
                self.objects.add(object_id)
            self.objects._removed.update(manifest["removed"])
            for frame, object_id, prompts in saved.prompts():
                query = self.takes_text and len(prompts) == 1 and isinstance(prompts[0], Text)
                self._log(frame, object_id, prompts, query)
            for entry in manifest["masks"]:
                self._results.setdefault(entry["frame"], {})[entry["object_id"]] = entry["rle"]
            self._pending = set(manifest["pending"])
            self._load_state(manifest["state"], saved.state_arrays)

    def _passes(self, start: int | None, direction: str, max_frames: int | None) -> list[tuple[range, bool]]:
        prompted = self._pending or {f for f, _, _ in self._prompts}
        if start is None and not prompted:
            raise SessionError("no prompted frame to start from: pass start")
        passes: list[tuple[range, bool]] = []
        if direction != "backward":
            first = self._check_frame(min(prompted) if start is None else start)
            count = self.num_frames - first
            passes.append((range(first, first + min(count, max_frames or count)), False))
        if direction != "forward":
            first = self._check_frame(max(prompted) if start is None else start)
            count = limit = first + 1
            if max_frames is not None:
                limit = max_frames
            if passes and passes[0][0].start == first:  # "both": the shared start frame is yielded once
                first, count, limit = first - 1, count - 1, limit - 1
            passes.append((range(first, first - min(count, limit), -1), True))
        return passes

    def _run(self, passes: list[tuple[range, bool]]) -> Iterator[Any]:
        for frames, reverse in passes:
            for frame in frames:
                with self._lock:
                    self._check_open()
                    result = self._accept(self._track(frame, reverse), "_track", frame)
                yield result

    def _accept(self, result: Any, hook: str, frame: int) -> Any:
        """Check what ``hook`` answered for ``frame`` (see the class docstring), then keep its masks
        (compressed) as the latest of the frame; returns it."""
        from . import rle
        from .types import FrameMasks

        where = f"{type(self).__name__}.{hook}"
        if not isinstance(result, FrameMasks):
            raise contract.Violation(f"{where} must return segmentkit.FrameMasks, got {type(result).__name__}")
        query = any(q for _, _, q in self._prompts)
        try:
            contract.check_frame(result, self.frame_size, self.num_frames, frame, stream=self.is_stream,
                                 object_ids=self.objects.ids, complete=not query)
        except contract.Violation as exc:
            raise contract.Violation(f"{where}: {exc}") from None
        if self.frame_size is None:  # a live stream before its first frame: nothing to keep
            return result
        self._results[frame] = {i: rle.encode(m) for i, m in zip(result.object_ids, result.masks.masks)}
        if self.is_stream:
            first = self.frames.first_held
            for old in [f for f in self._results if f < first]:
                del self._results[old]
        return result
