"""Grounded-SAM 2 on video: detect every K frames, track with SAM 2, keep ids and labels.

The grounder runs on the first frame and every ``detect_every`` frames after it;
detections that overlap no current track (box IoU below ``match_iou``) become new
objects, prompted with their box on that frame. Existing objects keep their id and
the phrase they were first detected as.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from segmentkit.cards import ModelCard
from segmentkit.errors import SessionError
from segmentkit.io import load_image
from segmentkit.io.video import open_video
from segmentkit.session_files import restore_session
from segmentkit.sessions import TrackingSession
from segmentkit.types import Box, FrameMasks, Masks

from .matching import unmatched_detections
from .options import GroundedOptions
from .parts import Parts


class GroundedTracker:
    """Tracker for text queries; each session wraps one session of the SAM 2 tracker."""

    def __init__(self, card: ModelCard, options: GroundedOptions):
        self.card, self.options = card, options
        self.parts = Parts(options)

    def start(self, source: Any = None, *, stream: bool = False) -> GroundedSession:
        if stream == (source is not None):
            raise SessionError("start a session with a video source, or with stream=True for pushed frames")
        return GroundedSession(self.parts, self.options, source, model_id=self.card.id)

    def restore(self, path: Any, source: Any = None) -> GroundedSession:
        """A session saved with ``session.save(path)``, over its video (or ``source``), ready to continue."""
        return restore_session(self, path, source)


class GroundedSession(TrackingSession):
    """A tracking session whose objects come from a text query (and optional manual prompts).

    Detection runs on the query's frame and on every ``detect_every``-th frame from it,
    in either direction, whenever propagation passes there.
    """

    def __init__(self, parts: Parts, options: GroundedOptions, source: Any, *, model_id: str = ""):
        frames = None if source is None else open_video(source)
        self._inner = parts.tracker.start(frames, stream=source is None)
        super().__init__(self._inner.frames, model_id=model_id, max_objects=options.max_objects)
        self._parts, self._options = parts, options
        self._text: str | None = None
        self._first_frame = 0
        self._labels: dict[int, str] = {}
        self._classes: list[str] = []  # labels in order of first appearance: stable class ids
        self._pushed = 0

    @property
    def labels(self) -> dict[int, str]:
        """Object id -> phrase it was detected as."""
        return dict(self._labels)

    # ---------------------------------------------------------------- hooks

    def _prompt_text(self, frame: int, text: str) -> FrameMasks | None:
        """A text prompt sets the query (objects get fresh ids); other prompts refine ``object_id``."""
        self._first_frame, self._text = frame, text
        image = None if self.is_stream else self.frames[frame]  # a stream detects on pushed frames
        return self._detect_and_add(frame, image, None)

    def _prompt(self, frame: int, index: int, encoded: Any) -> FrameMasks:
        object_id = self.objects.id_of(index)
        self._set_label(object_id, self._labels.get(object_id, "object"))
        return self._labelled(self._inner.add_prompts(frame, object_id, encoded))

    def _track(self, frame: int, reverse: bool) -> FrameMasks:
        direction = "backward" if reverse else "forward"
        masks = (next(iter(self._inner.propagate(frame, direction=direction, max_frames=1)))
                 if self._inner.object_ids else self.empty_masks(frame))
        if (self._text is not None and frame != self._first_frame
                and (frame - self._first_frame) % self._options.detect_every == 0):
            masks = self._detect_and_add(frame, self.frames[frame], masks) or masks
        return self._labelled(masks)

    def _push(self, image: Any) -> FrameMasks:
        array = load_image(image)
        masks = self._inner.push_frame(array)
        self._pushed += 1
        if self._text is not None and (self._pushed - 1) % self._options.detect_every == 0:
            masks = self._detect_and_add(masks.frame_index, array, masks) or masks
        return self._labelled(masks)

    def _remove(self, object_id: int, index: int) -> None:
        self._inner.remove_object(object_id)
        self._labels.pop(object_id, None)

    def _clear(self) -> None:
        self._inner.reset()
        self._labels.clear()
        self._classes.clear()
        self._text = None

    def _release(self) -> None:
        self._inner.close()

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = self._inner.raw._state()  # the SAM 2 session's own state
        return {"tracker": meta, "tracker_objects": self._inner.object_ids, "text": self._text,
                "first_frame": self._first_frame, "labels": [[k, v] for k, v in self._labels.items()],
                "classes": self._classes, "pushed": self._pushed}, arrays

    def _load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        for object_id in meta["tracker_objects"]:
            self._inner.raw.objects.add(object_id)
        self._inner.raw._load_state(meta["tracker"], arrays)
        self._text, self._first_frame, self._pushed = meta["text"], meta["first_frame"], meta["pushed"]
        self._labels = {int(k): v for k, v in meta["labels"]}
        self._classes = list(meta["classes"])

    # ---------------------------------------------------------------- internals

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
            self.objects.add(object_id)
            self.log_prompts(frame, object_id, [box])
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
