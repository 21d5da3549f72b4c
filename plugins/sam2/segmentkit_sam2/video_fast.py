"""The tracker's fast path: a view of a loaded SAM-family video model with the family's lean parts.

transformers' video model ``forward`` keeps driving the tracking (memory selection,
prompt and mask decoding, memory encoding); the view swaps in the parts the family's
descriptor names, on the same weights (nothing is copied except bf16 weight copies):

- ``get_image_features``: the lean image encoder (SAM 2: :class:`~.hiera.LeanImageEncoder`,
  every Hiera stage in bf16 with ``precision="bf16"``), plus the neck's sine position
  encodings, which depend only on the feature-map sizes and are computed once per model;
- ``memory_attention``: the lean memory attention (SAM 2: :class:`~.video_memory.LeanMemoryAttention`,
  its attention products and MLP in bf16 with ``precision="bf16"``, told which stored memory
  frames make up each bank as transformers gathers them, so that each frame's keys are
  projected once, not on every frame that reads them).

With ``engine="reference"`` nothing is swapped (transformers' own forward). The loaded
model itself is left untouched (tests run it as the reference).
"""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import torch
from segmentkit.errors import OptionsError

from .family import SamFamily
from .image_encoder import build_image_encoder
from .video_memory import LeanMemoryAttention


def lean_view(model: Any, family: SamFamily, *, bf16: bool, memory_frames: int | None = None,
              reference: bool = False) -> Any:
    """A shallow copy of ``model`` whose image features and memory attention run the family's lean
    forwards (``reference``: transformers' own).

    ``memory_frames`` (at most the checkpoint's ``num_maskmem - 1``) shortens the recent-frame
    memory: transformers reads it from the instance's ``num_maskmem``."""
    view = copy.copy(model)
    view._modules = dict(model._modules)
    if not reference and family.lean_image_encoder is not None:
        encoder = build_image_encoder(family, model, bf16=bf16, video=True)
        positions = _position_encodings(model)

        def image_features(pixel_values: torch.Tensor, **_: Any) -> SimpleNamespace:
            embedding, high_res_0, high_res_1 = encoder(pixel_values)
            maps = [m.flatten(2).permute(2, 0, 1) for m in (high_res_0, high_res_1, embedding)]
            return SimpleNamespace(fpn_hidden_states=maps, fpn_position_encoding=positions)

        view.get_image_features = image_features
    if not reference and family.lean_memory_attention is not None:
        family.load("lean_memory_attention")(view, model, torch.bfloat16 if bf16 else torch.float32)
    if memory_frames is not None:
        if memory_frames > model.num_maskmem - 1:
            raise OptionsError(f"memory_frames is at most {model.num_maskmem - 1} for this checkpoint")
        view.num_maskmem = memory_frames + 1
    return view


def lean_memory(view: Any, model: Any, dtype: torch.dtype) -> None:
    """SAM 2's memory attention in ``view``: :class:`~.video_memory.LeanMemoryAttention`, same weights,
    with ``_build_memory_attention_inputs`` wrapped to plan each bank's stored frames."""
    attention = LeanMemoryAttention(model.memory_attention, dtype, bank_capacity=2 * int(model.num_maskmem) + 2)
    view._modules["memory_attention"] = attention
    gather = type(model)._build_memory_attention_inputs

    def memory_inputs(outputs: list[tuple[int, dict | None]], device: Any) -> tuple[list, list]:
        attention.plan([(out["maskmem_features"], out["maskmem_pos_enc"],
                         view.memory_temporal_positional_encoding[offset - 1].reshape(-1))
                        for offset, out in outputs if out is not None])
        return gather(view, outputs, device)

    view._build_memory_attention_inputs = memory_inputs


def _position_encodings(model: Any) -> list[torch.Tensor]:
    """The neck's position encodings of the three feature levels, flattened as the model uses them."""
    neck = model.vision_encoder.neck
    size = int(model.config.image_size)
    stride = 4  # the highest-resolution level is 1/4 of the input
    channels = int(model.config.vision_config.fpn_hidden_size)
    device = model.no_memory_embedding.device
    out = []
    with torch.no_grad():
        for level in range(int(model.config.vision_config.num_feature_levels)):
            side = size // (stride * 2**level)
            encoding = neck.position_encoding((1, channels, side, side), device, torch.float32)
            out.append(encoding.flatten(2).permute(2, 0, 1))
    return out
