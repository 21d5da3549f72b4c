"""A SAM 2 tracking session: one video (file, frame folder or live stream) and its objects.

Prompt semantics follow transformers' ``Sam2VideoModel``: the first prompts of an object
on a frame make that frame a *conditioning* frame for the object (its mask comes from
the prompts alone); ``propagate()`` tracks every object from the earliest conditioning
frame, forwards or backwards. Prompts on a frame the object was already tracked into
*correct* it: the model decodes them together with the object's memory, and the result
becomes a conditioning frame, so later propagation keeps the correction (transformers
keeps such a result only until the frame is tracked again).

A session serves one caller at a time (calls are serialised by a lock); sessions do not
share state, so several can run on one model.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from segmentkit.errors import SessionError
from segmentkit.io.video import FrameSource, FrameStream
from segmentkit.sessions import ObjectIndex, check_frame, check_object_id
from segmentkit.types import FrameMasks, Masks

from .preprocess import upscale_masks
from .video_options import Sam2TrackerOptions
from .video_prompts import encode_video_prompts
from .video_state import TrackState

log = logging.getLogger(__name__)


class Sam2TrackingSession:
    """Track objects through one video with a loaded ``Sam2VideoModel`` (see the module docstring)."""

    def __init__(self, model: Any, frames: FrameSource | FrameStream, options: Sam2TrackerOptions):
        self.id = uuid.uuid4().hex
        self.options = options
        self._model = model
        self._device = torch.device(options.device)
        self._bf16 = options.precision == "bf16"
        self._frames = frames
        self._lock = threading.RLock()
        self._state: TrackState | None = TrackState(
            model, frames, ObjectIndex(max_objects=options.max_objects), device=self._device
        )

    # ------------------------------------------------------------------ facts

    @property
    def is_stream(self) -> bool:
        return isinstance(self._frames, FrameStream)

    @property
    def num_frames(self) -> int:
        """Frames in the video (for a stream: frames pushed so far)."""
        return len(self._frames)

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """(height, width) of the frames; ``None`` for a stream before its first frame."""
        return self._frames.frame_size

    @property
    def object_ids(self) -> list[int]:
        return self._live().objects.ids

    @property
    def closed(self) -> bool:
        return self._state is None

    # ------------------------------------------------------------------ prompts

    def add_prompts(self, frame: int, object_id: int, prompts: Sequence[Any]) -> FrameMasks:
        """Prompt ``object_id`` on ``frame`` (points, a box, or a mask); returns that frame's masks.

        The prompts replace any earlier prompts of this object on this frame.
        """
        with self._lock:
            state = self._live()
            object_id = check_object_id(object_id)
            frame = self._check_frame(frame)
            size = self._frames.frame_size
            encoded = encode_video_prompts(prompts, size, state.input_size)
            obj_idx = state.add_object(object_id)
            correcting = state.is_tracked(obj_idx, frame)
            if correcting:
                state.drop_conditioning(obj_idx, frame)
            if encoded.mask is not None:
                state.set_mask(obj_idx, frame, encoded.mask)
            else:
                state.set_points(obj_idx, frame, encoded.coords, encoded.labels)
            state.obj_with_new_inputs = [object_id]
            reverse = correcting and state.frames_tracked_per_obj[obj_idx][frame]["reverse"]
            return self._step(frame, reverse=reverse, corrected=obj_idx if correcting else None)

    def remove_object(self, object_id: int) -> None:
        """Stop tracking ``object_id`` and free its memory; the id cannot be used again until reset()."""
        with self._lock:
            self._live().remove_object(object_id)

    def reset(self) -> None:
        """Forget every object and prompt; the video stays open."""
        with self._lock:
            self._live().reset()

    # ------------------------------------------------------------------ tracking

    def propagate(
        self, start: int | None = None, *, reverse: bool = False, max_frames: int | None = None
    ) -> Iterator[FrameMasks]:
        """Yield every object's masks frame by frame, from ``start`` (default: the earliest
        prompted frame), forwards or with ``reverse`` backwards, for at most ``max_frames`` frames."""
        with self._lock:
            state = self._live()
            if self.is_stream:
                raise SessionError("a live stream is tracked frame by frame with push_frame(), not propagate()")
            if not len(state.objects):
                raise SessionError("no objects to track: add prompts first")
            if start is None:
                start = min(f for out in state.output_dict_per_obj.values() for f in out["cond_frame_outputs"])
            start = self._check_frame(start)
            if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int)
                                           or max_frames < 1):
                raise SessionError(f"max_frames must be an integer >= 1, got {max_frames!r}")
            last = 0 if reverse else self.num_frames - 1
            count = abs(last - start) + 1 if max_frames is None else min(max_frames, abs(last - start) + 1)
            order = range(start, start - count, -1) if reverse else range(start, start + count)
        return self._propagate(order, reverse)

    def _propagate(self, order: range, reverse: bool) -> Iterator[FrameMasks]:
        for frame in order:
            with self._lock:
                self._live()
                result = self._step(frame, reverse=reverse)
            yield result

    def push_frame(self, image: Any) -> FrameMasks:
        """Append a live frame and return every object's mask on it (stream sessions)."""
        with self._lock:
            state = self._live()
            stream = self._frames
            if not isinstance(stream, FrameStream):
                raise SessionError("push_frame() needs a live session: start(stream=True)")
            frame = stream.push(image)
            if state.video_height is None:
                state.video_height, state.video_width = stream.frame_size
            if not len(state.objects):
                return self._empty(frame)
            return self._step(frame, reverse=False)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Free the session's memory and video; further calls raise :class:`SessionError`."""
        with self._lock:
            if self._state is not None:
                self._state.release()
                self._state = None
                log.debug("closed tracking session %s", self.id)

    def __enter__(self) -> Sam2TrackingSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = "stream" if self.is_stream else f"{self.num_frames} frames"
        return f"<Sam2TrackingSession {self.id[:8]} {kind}{' closed' if self.closed else ''}>"

    # ------------------------------------------------------------------ internals

    def _live(self) -> TrackState:
        if self._state is None:
            raise SessionError(f"session {self.id!r} is closed")
        return self._state

    def _check_frame(self, frame: Any) -> int:
        if isinstance(self._frames, FrameStream):
            return check_frame(frame, len(self._frames), first=self._frames.first_held, what="stream")
        return check_frame(frame, len(self._frames))

    def _step(self, frame: int, *, reverse: bool, corrected: int | None = None) -> FrameMasks:
        """The forward stage: run the model on one frame for every object, then free what it
        no longer needs. ``corrected``: an object whose output here becomes a conditioning frame."""
        state = self._live()
        stream = {"frame": state.pixels(frame)} if self.is_stream else {}
        with torch.inference_mode(), torch.autocast(self._device.type, dtype=torch.bfloat16, enabled=self._bf16):
            out = self._model(inference_session=state, frame_idx=frame, reverse=reverse, **stream)
        if corrected is not None:
            state.make_conditioning(corrected, frame)
        state.trim(frame)
        return self._postprocess(frame, out.pred_masks, out.object_score_logits)

    def _postprocess(self, frame: int, low_res: torch.Tensor, score_logits: torch.Tensor) -> FrameMasks:
        size = self._frames.frame_size
        logits = upscale_masks(low_res.float(), size)[:, 0]
        score_logits = score_logits.float().reshape(-1)
        masks = Masks(
            masks=(logits > self.options.mask_threshold).cpu().numpy(),
            scores=torch.sigmoid(score_logits).cpu().numpy(),
            object_ids=np.asarray(self._live().objects.ids, dtype=np.int64),
            data={"object_score_logits": score_logits.cpu().numpy()},
        )
        return FrameMasks(frame_index=frame, masks=masks)

    def _empty(self, frame: int) -> FrameMasks:
        size = self._frames.frame_size
        return FrameMasks(frame, Masks.empty(size, object_ids=np.zeros(0, dtype=np.int64),
                                             data={"object_score_logits": np.zeros(0, np.float32)}))
