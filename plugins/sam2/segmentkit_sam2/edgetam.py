"""Build transformers' EdgeTAM models without timm (the EdgeTAM family descriptor's loaders).

A hub EdgeTAM checkpoint (``model_type: edgetam_video``) names its image backbone as a
``timm_wrapper`` config; transformers would build it with timm, whose import needs
torchvision (even parsing that config does). Here the backbone config is swapped for a
:class:`~.repvit.RepVitConfig` before any transformers config is made, so ``EdgeTamModel``
/ ``EdgeTamVideoModel`` get our :class:`~.repvit.RepVitBackbone` (same parameter names: the
checkpoint loads as is). The rest of the model (neck, prompt encoder, mask decoder, memory
modules, spatial perceiver) is transformers' own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .repvit import timm_free_vision_config

_DROP = ("model_type", "architectures", "transformers_version", "_name_or_path", "dtype", "torch_dtype")


def image_config_of(**parts: Any) -> Any:
    """``EdgeTamConfig(**parts)`` with the vision part made timm-free (the descriptor's ``image_config``)."""
    from transformers import EdgeTamConfig

    return EdgeTamConfig(**{**parts, "vision_config": timm_free_vision_config(dict(parts["vision_config"]))})


def video_config(config: dict[str, Any]) -> Any:
    """A timm-free transformers ``EdgeTamVideoConfig`` from an edgetam_video ``config.json`` dict."""
    from transformers import EdgeTamVideoConfig

    rest = {k: v for k, v in config.items() if k not in _DROP}
    return EdgeTamVideoConfig(**{**rest, "vision_config": timm_free_vision_config(dict(config["vision_config"]))})


def video_model_from_config(config: dict[str, Any]) -> Any:
    """A randomly initialised ``EdgeTamVideoModel`` (eval mode) for an edgetam_video config dict."""
    from transformers import EdgeTamVideoModel

    return EdgeTamVideoModel(video_config(config)).eval()


class EdgeTamVideo:
    """``EdgeTamVideoModel.from_pretrained`` on a timm-free config read from the checkpoint
    (the descriptor's ``video_model``)."""

    @staticmethod
    def from_pretrained(path: str | Path, **kwargs: Any) -> Any:
        from transformers import EdgeTamVideoModel

        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
        return EdgeTamVideoModel.from_pretrained(path, config=video_config(config), **kwargs)


def lean_memory(view: Any, model: Any, dtype: Any) -> None:
    """EdgeTAM's memory attention in ``view``: transformers' own; with bf16 its attention products
    run as blocked bf16 products (:mod:`.attention`) and its MLPs on bf16 weight copies."""
    import torch

    from .attention import CastLinear, use_bf16_attention

    if dtype != torch.bfloat16:
        return
    memory = use_bf16_attention(model.memory_attention)  # a copy: the loaded model stays fp32
    for layer in memory.layers:
        mlp = layer.mlp
        mlp._modules.update(up_proj=CastLinear(mlp.up_proj, dtype), down_proj=CastLinear(mlp.down_proj, dtype))
    view._modules["memory_attention"] = memory
