"""A SAM-family tracking session: the model maths behind :class:`segmentkit.sessions.TrackingSession`.

Prompt semantics follow transformers' ``Sam2VideoModel`` (and the other families' video
models): the first prompts of an object on a frame make that frame a *conditioning* frame
for the object (its mask comes from the prompts alone); propagation tracks every object
frame by frame, forwards or backwards. Prompts on a frame the object was already tracked into *correct* it: the
model decodes them together with the object's memory, and the result becomes a
conditioning frame, so later propagation keeps the correction (transformers keeps such
a result only until the frame is tracked again).

The core base owns lifecycle, ids, frame bounds and propagation order; this class
runs the model on one frame and turns its output into masks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from segmentkit.sessions import TrackingSession
from segmentkit.types import FrameMasks, Masks

from .family import SamFamily
from .preprocess import upscale_masks
from .video_options import Sam2TrackerOptions
from .video_prompts import VideoPrompt, encode_video_prompts
from .video_saving import load_into, state_of
from .video_state import TrackState, new_track_state

log = logging.getLogger(__name__)


class Sam2TrackingSession(TrackingSession):
    """Track objects through one video with a loaded SAM-family video model (see the module docstring)."""

    def __init__(self, model: Any, frames: Any, options: Sam2TrackerOptions, family: SamFamily, *,
                 model_id: str = ""):
        super().__init__(frames, model_id=model_id, max_objects=options.max_objects)
        self.options = options
        self._model = model
        self._device = torch.device(options.device)
        self._memory: TrackState | None = new_track_state(family, model, frames, self.objects,
                                                          device=self._device)

    # ------------------------------------------------------------------ hooks

    def _encode(self, frame: int, prompts: Sequence[Any]) -> VideoPrompt:
        return encode_video_prompts(prompts, self.frame_size, self._memory.input_size)

    def _prompt(self, frame: int, index: int, encoded: VideoPrompt) -> FrameMasks:
        state = self._memory
        state.add_object(index)
        correcting = state.is_tracked(index, frame)
        if correcting:
            state.drop_conditioning(index, frame)
        if encoded.mask is not None:
            state.set_mask(index, frame, encoded.mask)
        else:
            state.set_points(index, frame, encoded.coords, encoded.labels)
        state.obj_with_new_inputs = [self.objects.id_of(index)]
        reverse = correcting and state.frames_tracked_per_obj[index][frame]["reverse"]
        return self._step(frame, reverse=reverse, corrected=index if correcting else None)

    def _track(self, frame: int, reverse: bool) -> FrameMasks:
        return self._step(frame, reverse=reverse)

    def _remove(self, object_id: int, index: int) -> None:
        self._memory.remove_object(index, object_id)

    def _clear(self) -> None:
        self._memory.reset()

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return state_of(self._memory)

    def _load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        load_into(self._memory, meta, arrays)

    def _release(self) -> None:
        self._memory.release()
        self._memory = None
        log.debug("closed tracking session %s", self.id)

    # ------------------------------------------------------------------ internals

    def _step(self, frame: int, *, reverse: bool, corrected: int | None = None) -> FrameMasks:
        """The forward stage: run the model on one frame for every object, then free what it
        no longer needs. ``corrected``: an object whose output here becomes a conditioning frame."""
        state = self._memory
        if self.is_stream:
            state.video_height, state.video_width = self.frame_size
        stream = {"frame": state.pixels(frame)} if self.is_stream else {}
        with torch.inference_mode():
            out = self._model(inference_session=state, frame_idx=frame, reverse=reverse, **stream)
        if corrected is not None:
            state.make_conditioning(corrected, frame)
        state.trim(frame)
        return self._postprocess(frame, out.pred_masks, out.object_score_logits)

    def _postprocess(self, frame: int, low_res: torch.Tensor, score_logits: torch.Tensor) -> FrameMasks:
        logits = upscale_masks(low_res.float(), self.frame_size)[:, 0]
        score_logits = score_logits.float().reshape(-1)
        masks = Masks(
            masks=(logits > self.options.mask_threshold).cpu().numpy(),
            scores=torch.sigmoid(score_logits).cpu().numpy(),
            object_ids=np.asarray(self.objects.ids, dtype=np.int64),
            data={"object_score_logits": score_logits.cpu().numpy()},
        )
        return FrameMasks(frame_index=frame, masks=masks)
