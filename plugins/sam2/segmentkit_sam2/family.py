"""SAM-family descriptors: what differs between the checkpoints this distribution serves.

SAM 2, SAM 2.1 and their relatives (EdgeTAM: another image encoder and a memory perceiver)
share prompt encoding, mask decoding, automatic masks, tracking sessions and the export
cache. Everything that differs is one :class:`SamFamily`; a card names its family in
``card.family`` and every module reads the descriptor through :func:`family_of`.
Classes and factories are ``"package.module:name"`` strings, imported on first use, so
this module (and the catalog) imports neither torch nor transformers.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from segmentkit.cards import ModelCard
from segmentkit.errors import SpecError

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class SamFamily:
    """One SAM-family architecture (see the module docstring)."""

    name: str  # the cards' ``family``
    label: str  # for messages: "SAM 2"
    image_model: str  # class with ``from_pretrained(path, config=..., output_loading_info=True)``
    image_config: str  # its config class, built from the checkpoint's image parts
    video_model: str  # the video model class (``from_pretrained(path, output_loading_info=True)``)
    video_session: str  # transformers' inference-session class the video model reads memory from
    model_types: tuple[str, ...]  # config ``model_type`` values whose image parts load
    video_model_type: str  # the one that also holds the video weights
    image_parts: tuple[str, ...] = ("vision_config", "prompt_encoder_config", "mask_decoder_config")
    input_size: int = 1024  # the published checkpoints' (a checkpoint's config has the final say)
    image_mean: tuple[float, float, float] = _IMAGENET_MEAN
    image_std: tuple[float, float, float] = _IMAGENET_STD
    # ``f(model, *, bf16: bool, video: bool)`` -> callable (1, 3, S, S) pixels -> (embedding,
    # high_res_0, high_res_1), NCHW, with the no-memory embedding added when not ``video``.
    # None: transformers' own vision encoder (:class:`~.image_encoder.TransformersImageEncoder`).
    lean_image_encoder: str | None = None
    # ``f(view, model, dtype)``: put the lean memory attention into ``view`` (a shallow copy of the
    # loaded video model ``model``, see :func:`~.video_fast.lean_view`); None keeps transformers'.
    lean_memory_attention: str | None = None
    # Module with ``FORMAT``, ``GRAPHS`` and ``export_all(model, folder, opset)``; None: no onnxruntime.
    onnx_export: str | None = None

    def load(self, field: str) -> Any:
        """Import the object that field ``field`` names (e.g. ``fam.load("image_model")``)."""
        return load_object(getattr(self, field))

    @property
    def runtimes(self) -> tuple[str, ...]:
        return ("torch", "onnxruntime") if self.onnx_export else ("torch",)

    def normalization(self) -> Any:
        """The pixel normalisation (:class:`segmentkit.runtime.pixels.Normalization`)."""
        from segmentkit.runtime.pixels import Normalization

        return Normalization(image_mean=self.image_mean, image_std=self.image_std)


SAM2 = SamFamily(
    name="sam2",
    label="SAM 2",
    image_model="transformers:Sam2Model",
    image_config="transformers:Sam2Config",
    video_model="transformers:Sam2VideoModel",
    video_session="transformers.models.sam2_video.modeling_sam2_video:Sam2VideoInferenceSession",
    model_types=("sam2", "sam2_video"),
    video_model_type="sam2_video",
    lean_image_encoder="segmentkit_sam2.image_encoder:lean_hiera",
    lean_memory_attention="segmentkit_sam2.video_fast:lean_memory",
    onnx_export="segmentkit_sam2.onnx_export",
)

# EdgeTAM: SAM 2 with a RepViT image encoder and a spatial perceiver over the memory bank.
# transformers builds its backbone with timm; segmentkit_sam2.edgetam loads it timm-free.
EDGETAM = SamFamily(
    name="edgetam",
    label="EdgeTAM",
    image_model="transformers:EdgeTamModel",
    image_config="segmentkit_sam2.edgetam:image_config_of",
    video_model="segmentkit_sam2.edgetam:EdgeTamVideo",
    video_session="transformers.models.edgetam_video.modeling_edgetam_video:EdgeTamVideoInferenceSession",
    model_types=("edgetam", "edgetam_video"),
    video_model_type="edgetam_video",
    lean_image_encoder="segmentkit_sam2.repvit_encoder:lean_repvit",
    lean_memory_attention="segmentkit_sam2.edgetam:lean_memory",
)

FAMILIES: dict[str, SamFamily] = {f.name: f for f in (SAM2, EDGETAM)}


def family_of(card: ModelCard) -> SamFamily:
    """The descriptor of ``card.family``."""
    try:
        return FAMILIES[card.family]
    except KeyError:
        raise SpecError(f"{card.id!r} has family {card.family!r}; segmentkit-sam2 serves "
                        f"{', '.join(sorted(FAMILIES))}") from None


def load_object(path: str) -> Any:
    """``"package.module:name"`` (or a bare module path) -> the object."""
    module, _, name = path.partition(":")
    obj = importlib.import_module(module)
    return getattr(obj, name) if name else obj
