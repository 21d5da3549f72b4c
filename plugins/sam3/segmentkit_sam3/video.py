"""A SAM 3 tracking session: text concepts with stable ids, or clicked / boxed objects.

The first prompt decides what a session follows:

- a :class:`~segmentkit.types.Text` (one noun phrase; more phrases may be added before
  propagation starts) runs ``Sam3VideoModel``: the detector finds every instance on each
  frame, the tracker carries them, detections and tracks are matched, and every object
  keeps one id (the model's id + 1) and the phrase that found it as its label. As in
  transformers' ``propagate_in_video_iterator``, a frame's masks are given out after the
  model has seen ``hotstart_delay - 1`` further frames, so objects that the hot-start
  heuristics drop (unmatched or duplicate tracks) never appear; live streams give each
  frame out at once.
- points and boxes run ``Sam3TrackerVideoModel`` (SAM 2-style): objects get the ids the
  user chose, prompts on a tracked frame correct the object.

Masks are the low-resolution logits upsampled to the frame (bilinear) and thresholded at 0;
concept masks of one phrase do not overlap (the higher tracker score keeps a pixel), as
transformers' ``Sam3VideoProcessor.postprocess_outputs`` does.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from segmentkit.errors import PromptError, SessionError
from segmentkit.sessions import TrackingSession
from segmentkit.types import Box, FrameMasks, Masks, Point, validate_prompts

from . import preprocess
from .frames import LazyPixels
from .loading import Sam3Models
from .options import Sam3Options

log = logging.getLogger(__name__)


class Sam3Session(TrackingSession):
    """Track a text concept or prompted objects through one video (see the module docstring)."""

    def __init__(self, models: Sam3Models, frames: Any, options: Sam3Options, *, model_id: str = ""):
        super().__init__(frames, model_id=model_id, max_objects=options.max_objects)
        self._models, self._options = models, options
        self._pixels = LazyPixels(frames, models.image_size)
        self._mode: str | None = None  # "concept" | "objects", set by the first prompt
        self._inference: Any = None  # the transformers inference session
        self._texts: list[tuple[int, str]] = []  # (frame, phrase) in order of arrival
        self._outputs: dict[int, Any] = {}  # concept: the model's output per frame (run once, either direction)
        self._plan: list[tuple[range, bool]] = []
        self._propagated = False
        self._hidden: set[int] = set()  # objects removed by the user (objects mode)

    # ------------------------------------------------------------------ prompts

    def _prompt_text(self, frame: int, text: str) -> FrameMasks | None:
        """A text prompt starts (or extends) a concept query; points and boxes prompt objects."""
        self._set_mode("concept")
        if self._propagated:
            raise SessionError("add every phrase before propagating; reset() to start a new query")
        if self._texts and frame != self._texts[0][0]:
            raise SessionError(f"give every phrase on frame {self._texts[0][0]}, where the query started")
        self._texts.append((frame, text))
        if self.num_frames == 0:  # a live stream before its first frame: the query waits for it
            return None
        self._outputs.clear()
        self._inference = self._concept_state()
        return self._concept_frame(frame, self._concept_step(frame, False))

    def _encode(self, frame: int, prompts: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        prompts = validate_prompts(prompts, self.frame_size)
        boxes = [p for p in prompts if isinstance(p, Box)]
        points = [p for p in prompts if isinstance(p, Point)]
        if len(boxes) + len(points) != len(prompts):
            raise PromptError("a SAM 3 session takes points, boxes or a text prompt")
        size, square = self.frame_size, self._models.image_size
        xy = [[boxes[0].x0, boxes[0].y0], [boxes[0].x1, boxes[0].y1]] if boxes else []
        xy += [[p.x, p.y] for p in points]
        labels = ([2, 3] if boxes else []) + [1 if p.positive else 0 for p in points]
        coords = preprocess.to_model_square(np.array(xy, np.float32).reshape(-1, 2), size, square)
        return coords[None, None], torch.tensor(labels, dtype=torch.int64)[None, None]

    def _prompt(self, frame: int, index: int, encoded: tuple[torch.Tensor, torch.Tensor]) -> FrameMasks:
        self._set_mode("objects")
        if self._inference is None:
            self._inference = self._objects_state()
        object_id = self.objects.id_of(index)
        state = self._inference
        obj_idx = state.obj_id_to_idx(object_id)
        state.add_point_inputs(obj_idx, frame, {"point_coords": encoded[0], "point_labels": encoded[1]})
        state.remove_mask_inputs(obj_idx, frame)
        state.obj_with_new_inputs = [object_id]
        return self._objects_frame(frame, False)

    # ------------------------------------------------------------------ tracking hooks

    def _before_propagate(self, passes: list[tuple[range, bool]]) -> None:
        self._plan = passes  # the hot-start look-ahead reads the frames to come
        self._propagated = True

    def _track(self, frame: int, reverse: bool) -> FrameMasks:
        if self._mode == "objects":
            return self._objects_frame(frame, reverse)
        if self.is_stream:
            return self._concept_frame(frame, self._concept_step(frame, False))
        for ahead in self._lookahead(frame, reverse):
            self._concept_step(ahead, reverse)
        return self._concept_frame(frame, self._concept_step(frame, reverse))

    def _push(self, image: Any) -> FrameMasks:
        frame = self.frames.push(image)
        if self._mode == "concept" and self._texts:
            if self._inference is None:  # the query came before the first frame
                self._inference = self._concept_state()
            return self._concept_frame(frame, self._concept_step(frame, False))
        return self._objects_frame(frame, False) if len(self.objects) else self.empty_masks(frame)

    def _remove(self, object_id: int, index: int) -> None:
        if self._mode == "concept" and self._inference is not None:
            self._inference.remove_object(object_id - 1)
        self._hidden.add(object_id)

    def _clear(self) -> None:
        self._mode, self._inference, self._plan, self._propagated = None, None, [], False
        self._texts.clear()
        self._outputs.clear()
        self._hidden.clear()

    def _release(self) -> None:
        self._clear()

    # ------------------------------------------------------------------ concept tracking

    def _concept_state(self) -> Any:
        from transformers.models.sam3_video.modeling_sam3_video import Sam3VideoInferenceSession

        models = self._models
        h, w = self.frame_size
        state = Sam3VideoInferenceSession(video_height=h, video_width=w, inference_device=models.device,
                                          inference_state_device=models.device, video_storage_device=models.device,
                                          dtype=torch.float32)
        state.processed_frames = self._pixels
        phrases = list(dict.fromkeys(text for _, text in self._texts))
        ids, attention = preprocess.tokens(models.tokenizer, phrases)
        for row, phrase in enumerate(phrases):
            prompt_id = state.add_prompt(phrase)
            state.prompt_input_ids[prompt_id] = ids[row : row + 1].to(models.device)
            state.prompt_attention_masks[prompt_id] = attention[row : row + 1].to(models.device)
        return state

    def _lookahead(self, frame: int, reverse: bool) -> list[int]:
        """Frames of this pass the model must see before ``frame``'s masks are final (hot start)."""
        delay = int(self._models.video.hotstart_delay)
        for frames, backwards in self._plan:
            if backwards == reverse and frame in frames:
                order = list(frames)
                at = order.index(frame)
                return order[at + 1 : at + max(delay, 1)] if delay > 0 else []
        return []

    @torch.inference_mode()
    def _concept_step(self, frame: int, reverse: bool) -> Any:
        """The model's output on ``frame`` (run once: a frame the query or a pass has seen is not rerun)."""
        if frame not in self._outputs:
            state = self._inference
            out = self._models.video(inference_session=state, frame_idx=frame, reverse=reverse)
            state.hotstart_removed_obj_ids.update(out.removed_obj_ids)
            self._outputs[frame] = out
            for old in [f for f in self._outputs if abs(f - frame) > 64]:
                del self._outputs[old]  # keep a window around the work in progress, not the whole video
        return self._outputs[frame]

    def _concept_frame(self, frame: int, out: Any) -> FrameMasks:
        state = self._inference
        hidden = set(out.suppressed_obj_ids or ()) | set(state.hotstart_removed_obj_ids)
        ids = sorted(i for i in out.obj_id_to_mask if i not in hidden and i + 1 not in self._hidden)
        h, w = self.frame_size
        if not ids:
            return FrameMasks(frame, Masks.empty((h, w), object_ids=np.zeros(0, np.int64),
                                                 id2label=self._phrases()))
        logits = torch.cat([out.obj_id_to_mask[i] for i in ids])[:, None]
        masks = torch.nn.functional.interpolate(logits.float(), size=(h, w), mode="bilinear",
                                                align_corners=False)[:, 0] > 0
        keep = masks.flatten(1).any(1)
        ids = [i for i, k in zip(ids, keep.tolist()) if k]
        masks = masks[keep]
        prompt_of = [state.obj_id_to_prompt_id[i] for i in ids]
        tracker_scores = torch.tensor([out.obj_id_to_tracker_score.get(i, 0.0) for i in ids], dtype=torch.float32)
        masks = _without_overlaps(masks, tracker_scores, prompt_of)
        ids, masks, prompt_of = self._register(ids, masks, prompt_of)
        scores = np.array([float(out.obj_id_to_score[i - 1]) for i in ids], np.float32)
        return FrameMasks(frame, Masks(masks, scores=scores, object_ids=np.array(ids, np.int64),
                                       class_ids=np.array(prompt_of, np.int64), id2label=self._phrases()))

    def _register(self, model_ids: list[int], masks: torch.Tensor,
                  prompt_of: list[int]) -> tuple[list[int], np.ndarray, list[int]]:
        """Session ids (model id + 1) of the objects, registered on first sight (up to max_objects)."""
        kept = []
        for row, model_id in enumerate(model_ids):
            object_id = model_id + 1
            if object_id not in self.objects:
                if len(self.objects) >= self._options.max_objects:
                    log.warning("SAM 3 found more than %d objects; object %d is not reported",
                                self._options.max_objects, object_id)
                    continue
                self.objects.add(object_id)
            kept.append(row)
        array = masks.cpu().numpy()[kept]
        return [model_ids[r] + 1 for r in kept], array, [prompt_of[r] for r in kept]

    def _phrases(self) -> dict[int, str]:
        return dict(enumerate(dict.fromkeys(text for _, text in self._texts)))

    # ------------------------------------------------------------------ object tracking

    def _objects_state(self) -> Any:
        from transformers.models.sam3_tracker_video.modeling_sam3_tracker_video import (
            Sam3TrackerVideoInferenceSession,
        )

        models = self._models
        h, w = self.frame_size
        state = Sam3TrackerVideoInferenceSession(video_height=h, video_width=w, inference_device=models.device,
                                                 inference_state_device=models.device,
                                                 video_storage_device=models.device, dtype=torch.float32)
        state.processed_frames = self._pixels
        return state

    @torch.inference_mode()
    def _objects_frame(self, frame: int, reverse: bool) -> FrameMasks:
        out = self._models.tracker_video(inference_session=self._inference, frame_idx=frame, reverse=reverse)
        h, w = self.frame_size
        ids = [int(i) for i in out.object_ids]
        rows = [r for r, i in enumerate(ids) if i not in self._hidden]
        logits = torch.nn.functional.interpolate(out.pred_masks[rows].float(), size=(h, w), mode="bilinear",
                                                 align_corners=False)[:, 0]
        scores = out.object_score_logits.reshape(-1)[rows].sigmoid().float().cpu().numpy()
        return FrameMasks(frame, Masks((logits > 0).cpu().numpy(), scores=scores,
                                       object_ids=np.array([ids[r] for r in rows], np.int64)))

    def _set_mode(self, mode: str) -> None:
        if self._mode not in (None, mode):
            follows = "a text concept" if self._mode == "concept" else "prompted objects"
            raise SessionError(f"this session follows {follows}"
                               f"; start another session (or reset() this one) for {mode} prompts")
        self._mode = mode


def _without_overlaps(masks: torch.Tensor, scores: torch.Tensor, groups: list[int]) -> torch.Tensor:
    """Within each group (one phrase), a pixel stays only in the object with the highest score there."""
    out = masks.clone()
    for group in set(groups):
        rows = torch.tensor([r for r, g in enumerate(groups) if g == group])
        if len(rows) < 2:
            continue
        claim = torch.where(masks[rows], scores[rows, None, None], torch.zeros(()))
        winner = claim.argmax(dim=0)
        out[rows] = masks[rows] & (winner[None] == torch.arange(len(rows))[:, None, None])
    return out
