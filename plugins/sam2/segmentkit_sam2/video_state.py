"""One tracking session's model state: transformers' video inference session, bounded.

``Sam2VideoModel.forward`` reads and writes its per-object memory through a
``Sam2VideoInferenceSession`` (each SAM family names its session class in its descriptor).
:class:`TrackState` is that object (:func:`new_track_state` adds the family's class as a base)
with four changes:

- frames come from a :mod:`segmentkit.io.video` source and are preprocessed on demand
  (a 2-frame LRU of pixel tensors), instead of the whole video as one tensor;
- object ids map to indices through the core :class:`~segmentkit.sessions.ObjectIndex`,
  which also lets an object be removed;
- :meth:`trim` keeps memory flat: conditioning outputs stay (they are the user's
  prompts), non-conditioning outputs are kept only within ``window`` frames of the
  current frame or (for files, which can be propagated again) of a conditioning frame,
  and the high-resolution masks the model stores with every output are dropped once
  memory has been encoded from them;
- a live stream forgets the tracked-frame marks of frames it no longer holds.

``window`` is ``max(num_maskmem, max_object_pointers_in_encoder) - 1``: the farthest
frame the model reads memory or object pointers from. Every propagation that starts
at a conditioning frame (the default) therefore sees exactly what transformers' own
session would give it.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Any

import torch
from segmentkit.io.video import FrameSource, FrameStream
from segmentkit.sessions import ObjectIndex

from .family import SamFamily, load_object
from .preprocess import preprocess_image

_PIXEL_CACHE = 2  # preprocessed frames kept (the model caches one frame's features itself)


def new_track_state(family: SamFamily, model: Any, frames: FrameSource | FrameStream, objects: ObjectIndex, *,
                    device: torch.device) -> TrackState:
    """A :class:`TrackState` on the family's inference-session class."""
    return _state_class(family.video_session)(model, frames, objects, family.normalization(), device=device)


@functools.cache
def _state_class(session_class: str) -> type:
    base = load_object(session_class)
    return type(f"{base.__name__}TrackState", (TrackState, base), {})


class TrackState:
    """Memory of the objects tracked in one video, read and written by the video model; mixed
    into the family's inference-session class by :func:`new_track_state`."""

    def __init__(
        self,
        model: Any,
        frames: FrameSource | FrameStream,
        objects: ObjectIndex,
        normalization: Any,
        *,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
    ):
        size = frames.frame_size
        super().__init__(
            video=None,
            video_height=None if size is None else size[0],
            video_width=None if size is None else size[1],
            inference_device=device,
            inference_state_device=device,
            video_storage_device="cpu",
            dtype=dtype,
            max_vision_features_cache_size=1,
        )
        self.frames = frames
        self.objects = objects
        self.normalization = normalization
        self.input_size = int(model.config.image_size)
        config = model.config
        self.window = max(int(config.num_maskmem), int(config.max_object_pointers_in_encoder)) - 1
        self._pixels: OrderedDict[int, torch.Tensor] = OrderedDict()

    # ------------------------------------------------------------------ frames

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def pixels(self, frame_idx: int) -> torch.Tensor:
        """(3, S, S) pixel values of one frame, preprocessed on first use."""
        pixels = self._pixels.get(frame_idx)
        if pixels is None:
            pixels = preprocess_image(self.frames[frame_idx], self.input_size, self.normalization)[0]
            pixels = pixels.to(self.dtype)
            self._remember(frame_idx, pixels)
        else:
            self._pixels.move_to_end(frame_idx)
        return pixels

    def get_frame(self, frame_idx: int) -> torch.Tensor:
        return self.pixels(frame_idx).to(self.inference_device, non_blocking=True)

    def add_new_frame(self, pixel_values: torch.Tensor, frame_idx: int | None = None) -> int:
        """Called by the model's streaming forward with a frame already pushed to ``frames``."""
        if frame_idx is None:
            frame_idx = len(self.frames) - 1
        self._remember(frame_idx, pixel_values.squeeze(0).to(self.dtype))
        return frame_idx

    def _remember(self, frame_idx: int, pixels: torch.Tensor) -> None:
        self._pixels[frame_idx] = pixels
        self._pixels.move_to_end(frame_idx)
        while len(self._pixels) > _PIXEL_CACHE:
            self._pixels.popitem(last=False)

    # ------------------------------------------------------------------ objects

    def obj_id_to_idx(self, obj_id: int) -> int:
        return self.objects.index(obj_id)

    def obj_idx_to_id(self, obj_idx: int) -> int:
        return self.objects.id_of(obj_idx)

    def get_obj_num(self) -> int:
        return len(self.objects)

    def add_object(self, obj_idx: int) -> None:
        """Give the object at ``obj_idx`` (registered in ``objects``) empty memory if it has none."""
        if obj_idx not in self.output_dict_per_obj:
            self.point_inputs_per_obj[obj_idx] = {}
            self.mask_inputs_per_obj[obj_idx] = {}
            self.output_dict_per_obj[obj_idx] = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
            self.frames_tracked_per_obj[obj_idx] = {}
            self.obj_ids = self.objects.ids

    def remove_object(self, gone: int, obj_id: int) -> None:
        """Forget the memory of ``obj_id``, which had index ``gone``; later objects move down one index."""
        for table in (self.point_inputs_per_obj, self.mask_inputs_per_obj, self.output_dict_per_obj,
                      self.frames_tracked_per_obj):
            items = sorted(table.items())
            table.clear()
            table.update({(i - 1 if i > gone else i): v for i, v in items if i != gone})
        self.obj_with_new_inputs = [i for i in self.obj_with_new_inputs if i != obj_id]
        self.obj_ids = self.objects.ids

    def reset(self) -> None:
        """Forget every object, prompt and memory (decoded frames and features stay)."""
        self.reset_tracking_data()
        self.obj_ids = []

    # ------------------------------------------------------------------ prompts

    def set_points(self, obj_idx: int, frame_idx: int, coords: torch.Tensor, labels: torch.Tensor) -> None:
        """Point prompts (box corners first, labels 2 and 3) in model coordinates: (K, 2), (K,)."""
        self.add_point_inputs(obj_idx, frame_idx, {
            "point_coords": coords.reshape(1, 1, -1, 2).to(torch.float32),
            "point_labels": labels.reshape(1, 1, -1).to(torch.int64),
        })
        self.remove_mask_inputs(obj_idx, frame_idx)

    def set_mask(self, obj_idx: int, frame_idx: int, mask: torch.Tensor) -> None:
        """A binary (1, 1, S, S) float mask prompt."""
        self.add_mask_inputs(obj_idx, frame_idx, mask)
        self.remove_point_inputs(obj_idx, frame_idx)

    # ------------------------------------------------------------------ memory bounds

    def is_tracked(self, obj_idx: int, frame_idx: int) -> bool:
        """Whether the model already tracked ``obj_idx`` into ``frame_idx`` (not a prompt frame)."""
        return frame_idx in self.frames_tracked_per_obj[obj_idx]

    def make_conditioning(self, obj_idx: int, frame_idx: int) -> None:
        """Keep a corrected output as a conditioning frame, so propagation keeps the correction."""
        outputs = self.output_dict_per_obj[obj_idx]
        out = outputs["non_cond_frame_outputs"].pop(frame_idx, None)
        if out is not None:
            outputs["cond_frame_outputs"][frame_idx] = out

    def drop_conditioning(self, obj_idx: int, frame_idx: int) -> None:
        self.output_dict_per_obj[obj_idx]["cond_frame_outputs"].pop(frame_idx, None)

    def trim(self, frame_idx: int) -> None:
        """Free what no later step can read (see the module docstring)."""
        live = isinstance(self.frames, FrameStream)
        anchors = {frame_idx} if live else {
            f for out in self.output_dict_per_obj.values() for f in out["cond_frame_outputs"]
        } | {frame_idx}
        for outputs in self.output_dict_per_obj.values():
            for out in outputs["cond_frame_outputs"].values():
                out.pop("high_res_masks", None)
            non_cond = outputs["non_cond_frame_outputs"]
            for f in list(non_cond):
                if all(abs(f - a) > self.window for a in anchors):
                    del non_cond[f]
                else:
                    non_cond[f].pop("high_res_masks", None)
                    non_cond[f].pop("pred_masks", None)
        if live:
            first = self.frames.first_held
            for tracked in self.frames_tracked_per_obj.values():
                for f in [f for f in tracked if f < first]:
                    del tracked[f]

    def held_outputs(self) -> int:
        """How many per-object frame outputs are held (for tests and benchmarks)."""
        return sum(len(o["cond_frame_outputs"]) + len(o["non_cond_frame_outputs"])
                   for o in self.output_dict_per_obj.values())

    def release(self) -> None:
        """Drop every tensor this state holds."""
        self.reset_inference_session()
        self._pixels.clear()
