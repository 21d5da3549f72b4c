"""Build transformers' EdgeTAM models without timm.

A hub EdgeTAM checkpoint (``model_type: edgetam_video``) names its image backbone as a
``timm_wrapper`` config; transformers would build it with timm, whose import needs
torchvision. Here the backbone config is swapped for a :class:`~.repvit.RepVitConfig`
before any transformers config is made, so ``EdgeTamModel`` / ``EdgeTamVideoModel`` get
our :class:`~.repvit.RepVitBackbone` (same parameter names: the checkpoint loads as is).
The rest of the model (neck, prompt encoder, mask decoder, memory modules, spatial
perceiver) is transformers' own.
"""

from __future__ import annotations

from typing import Any

from .repvit import timm_free_vision_config

_IMAGE_PARTS = ("vision_config", "prompt_encoder_config", "mask_decoder_config")


def _parts(config: dict[str, Any]) -> dict[str, Any]:
    parts = {}
    for key in _IMAGE_PARTS:
        part = dict(config[key])
        if key != "vision_config":
            part.pop("model_type", None)  # edgetam_video_* sub-types carry the same fields
        parts[key] = part
    parts["vision_config"] = timm_free_vision_config(parts["vision_config"])
    return parts


def image_config(config: dict[str, Any]) -> Any:
    """A transformers ``EdgeTamConfig`` (timm-free) from the image parts of an edgetam / edgetam_video config."""
    from transformers import EdgeTamConfig

    extra = {k: config[k] for k in ("initializer_range",) if k in config}
    return EdgeTamConfig(**_parts(config), **extra)


def video_config(config: dict[str, Any]) -> Any:
    """A transformers ``EdgeTamVideoConfig`` (timm-free) from an edgetam_video config dict."""
    from transformers import EdgeTamVideoConfig

    rest = {k: v for k, v in config.items() if k not in _IMAGE_PARTS and k not in _DROP}
    return EdgeTamVideoConfig(**_parts(config), **rest)


_DROP = ("model_type", "architectures", "transformers_version", "_name_or_path", "dtype", "torch_dtype")


def video_model_from_config(config: dict[str, Any]) -> Any:
    """A randomly initialised ``EdgeTamVideoModel`` (eval mode) for an edgetam_video config dict."""
    from transformers import EdgeTamVideoModel

    return EdgeTamVideoModel(video_config(config)).eval()
