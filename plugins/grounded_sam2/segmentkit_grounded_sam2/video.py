"""Grounded-SAM 2 on video: detect every K frames, track with SAM 2, keep ids and labels.

The grounder runs on the first frame and every ``detect_every`` frames after it;
detections that overlap no current track (box IoU below ``match_iou``) become new
objects, prompted with their box on that frame. Existing objects keep their id and
the phrase they were first detected as.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from segmentkit.cards import ModelCard
from segmentkit.errors import SessionError
from segmentkit.io import load_image
from segmentkit.io.video import open_video
from segmentkit.types import Box, FrameMasks, Masks, Text

from .matching import unmatched_detections
from .options import GroundedOptions
from .parts import Parts


class GroundedTracker:
    """Tracker for text queries; each session wraps one session of the SAM 2 tracker."""

    def __init__(self, card: ModelCard, options: GroundedOptions):
        self.card, self.options = card, options
        self.parts = Parts(options)

    def start(self, source: Any = None, *, stream: bool = False) -> "GroundedSession":
        if stream == (source is not None):
            raise SessionError("start a session with a video source, or with stream=True for pushed frames")
        return GroundedSession(self.parts, self.options, source)


class GroundedSession:
    """A tracking session whose objects come from a text query (and optional manual prompts)."""

    def __init__(self, parts: Parts, options: GroundedOptions, source: Any):
        self.id = uuid.uuid4().hex
        self._parts, self._options = parts, options
        self._frames = None if source is None else open_video(source)
        self._inner = parts.tracker.start(self._frames if source is not None else None, stream=source is None)
        self._text: str | None = None
        self._first_frame = 0
        self._labels: dict[int, str] = {}
        self._classes: list[str] = []  # labels in order of first appearance: stable class ids
        self._pushed = 0
        self._closed = False

    # ---------------------------------------------------------------- TrackingSession

    @property
    def num_frames(self) -> int:
        return self._inner.num_frames

    @property
    def frame_size(self) -> tuple[int, int] | None:
        return self._inner.frame_size

    @property
    def labels(self) -> dict[int, str]:
        """Object id -> phrase it was detected as."""
        return dict(self._labels)

    def add_prompts(self, frame: int, object_id: int, prompts: Sequence[Any]) -> FrameMasks:
        """A text prompt sets the query (objects get fresh ids); other prompts refine ``object_id``."""
        self._check_open()
        texts = [p for p in prompts if isinstance(p, Text)]
        if texts:
            if len(texts) != len(prompts):
                raise SessionError("give a text prompt on its own, not mixed with points or boxes")
            self._text, self._first_frame = texts[0].text, int(frame)
            result = self._detect_and_add(int(frame), self._frames[int(frame)] if self._frames else None, None)
            return result if result is not None else FrameMasks(int(frame), self._empty())
        self._set_label(int(object_id), self._labels.get(int(object_id), "object"))
        return self._labelled(self._inner.add_prompts(frame, object_id, prompts))

    def propagate(self, start: int | None = None, *, reverse: bool = False,
                  max_frames: int | None = None) -> Iterator[FrameMasks]:
        """Yield every frame's masks; the grounder runs every ``detect_every`` frames on the way."""
        self._check_open()
        if self._text is None or self._frames is None:
            for masks in self._inner.propagate(start, reverse=reverse, max_frames=max_frames):
                yield self._labelled(masks)
            return
        step = -1 if reverse else 1
        frame = self._first_frame if start is None else int(start)
        last = 0 if reverse else self.num_frames - 1
        if max_frames is not None:
            last = frame + step * (max_frames - 1)
            last = max(last, 0) if reverse else min(last, self.num_frames - 1)
        every = self._options.detect_every
        boundary: FrameMasks | None = None
        while (frame - last) * step <= 0:
            if frame != self._first_frame or boundary is not None:
                if boundary is None:  # starting mid-video: match against the tracks as they stand here
                    boundary = next(iter(self._inner.propagate(frame, reverse=reverse, max_frames=1)))
                self._detect_and_add(frame, self._frames[frame], boundary)
            span = min(every, abs(last - frame) + 1)
            # One frame past the span gives the masks to match the next detections against.
            ahead = span + 1 if abs(last - frame) + 1 > span else span
            boundary = None
            for masks in self._inner.propagate(frame, reverse=reverse, max_frames=ahead):
                if abs(masks.frame_index - frame) < span:
                    yield self._labelled(masks)
                else:
                    boundary = masks
            frame += step * span

    def push_frame(self, image: Any) -> FrameMasks:
        """Track a live frame; the grounder runs on every ``detect_every``-th pushed frame."""
        self._check_open()
        array = load_image(image)
        masks = self._inner.push_frame(array)
        self._pushed += 1
        if self._text is not None and (self._pushed - 1) % self._options.detect_every == 0:
            updated = self._detect_and_add(masks.frame_index, array, masks)
            if updated is not None:
                masks = updated
        return self._labelled(masks)

    def remove_object(self, object_id: int) -> None:
        self._check_open()
        self._inner.remove_object(object_id)
        self._labels.pop(int(object_id), None)

    def reset(self) -> None:
        self._check_open()
        self._inner.reset()
        self._labels.clear()
        self._classes.clear()
        self._text = None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._inner.close()
            if self._frames is not None:
                self._frames.close()

    def __enter__(self) -> "GroundedSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- internals

    def _check_open(self) -> None:
        if self._closed:
            raise SessionError(f"session {self.id} is closed")

    def _empty(self) -> Masks:
        size = self.frame_size or (1, 1)
        return Masks.empty(size, object_ids=np.zeros(0, np.int64))

    def _detect_and_add(self, frame: int, image: np.ndarray | None, current: FrameMasks | None) -> FrameMasks | None:
        """Detect on ``frame``; prompt each detection that matches no current track as a new object."""
        if image is None:  # a stream session before its first frame: detection waits for push_frame
            return None
        found = self._parts.detect(image, self._text)
        tracks = current.masks.boxes if current is not None else np.zeros((0, 4), np.float32)
        fresh = unmatched_detections(found.boxes, tracks, self._options.match_iou)
        room = self._options.max_objects - len(self._labels)
        result = None
        h, w = found.image_size
        for d in fresh[: max(room, 0)]:
            object_id = max(self._labels, default=0) + 1
            self._set_label(object_id, found.labels[d])
            box = Box(*np.clip(found.boxes[d], 0, [w, h, w, h]))
            result = self._inner.add_prompts(frame, object_id, [box])
        return None if result is None else self._labelled(result)

    def _set_label(self, object_id: int, label: str) -> None:
        self._labels[object_id] = label
        if label not in self._classes:
            self._classes.append(label)

    def _labelled(self, frame_masks: FrameMasks) -> FrameMasks:
        """Attach each object's label as a class id (stable for the whole session)."""
        masks = frame_masks.masks
        ids = [] if masks.object_ids is None else [int(i) for i in masks.object_ids]
        class_ids = np.array([self._classes.index(self._labels.get(i, "object"))
                              if self._labels.get(i, "object") in self._classes else -1 for i in ids],
                             dtype=np.int64)
        labelled = Masks(masks.masks, scores=masks.scores, boxes=masks.boxes, object_ids=masks.object_ids,
                         class_ids=class_ids, data=dict(masks.data), id2label=dict(enumerate(self._classes)))
        return FrameMasks(frame_masks.frame_index, labelled)
