"""EoMT model cards and options (cheap: pydantic only, no torch).

The checkpoints are the ones tue-mps publishes in transformers format on the hub
(``tue-mps/<dataset>_eomt_<size>_<input>``, listed in github.com/tue-mps/eomt's model zoo and
transformers' EoMT docs). Tasks follow the training data as for Mask2Former (:mod:`.specs`).
"""

from __future__ import annotations

from pydantic import Field
from segmentkit import ModelCard, ModelSpec

from .specs import DATASETS, Mask2FormerCall, Mask2FormerOptions, family_card

LOADER = "segmentkit_mask2former.eomt:EomtSegmenter"
_UNPINNED = "main"  # no commit hash of these repositories could be found offline; pin one when known
LICENSE = "MIT"
HOMEPAGE = "https://arxiv.org/abs/2503.19108"

# (card dataset key, hub dataset name, backbone, input size, hub suffix) of each published checkpoint.
_PUBLISHED = (
    ("coco-panoptic", "coco_panoptic", "small", 640, "_2x"),
    ("coco-panoptic", "coco_panoptic", "base", 640, "_2x"),
    ("coco-panoptic", "coco_panoptic", "large", 640, ""),
    ("coco-panoptic", "coco_panoptic", "large", 1280, ""),
    ("coco-panoptic", "coco_panoptic", "giant", 640, ""),
    ("coco-panoptic", "coco_panoptic", "giant", 1280, ""),
    ("ade-panoptic", "ade20k_panoptic", "large", 640, ""),
    ("ade-panoptic", "ade20k_panoptic", "large", 1280, ""),
    ("ade-panoptic", "ade20k_panoptic", "giant", 640, ""),
    ("ade-panoptic", "ade20k_panoptic", "giant", 1280, ""),
    ("coco-instance", "coco_instance", "large", 640, ""),
    ("coco-instance", "coco_instance", "large", 1280, ""),
    ("ade-semantic", "ade20k_semantic", "large", 512, ""),
    ("cityscapes-semantic", "cityscapes_semantic", "large", 1024, ""),
)
# DINOv2 ViT-S/B/L/g with EoMT's query, mask and class heads (approximate).
_PARAMS = {"small": 24_000_000, "base": 93_000_000, "large": 316_000_000, "giant": 1_160_000_000}
REVISIONS = {f"tue-mps/{hub}_eomt_{backbone}_{size}{suffix}": _UNPINNED
             for _, hub, backbone, size, suffix in _PUBLISHED}


class EomtOptions(Mask2FormerOptions):
    """Mask2Former's thresholds, with ``EomtImageProcessor``'s default score threshold (0.8)."""

    threshold: float = Field(default=0.8, ge=0.0, le=1.0,
                             description=Mask2FormerOptions.model_fields["threshold"].description)


class EomtCall(Mask2FormerCall):
    """Per-call overrides of the thresholds; unset ones keep the load options."""

    threshold: float = Field(default=0.8, ge=0.0, le=1.0,
                             description=Mask2FormerOptions.model_fields["threshold"].description)


def _card(key: str, hub: str, backbone: str, size: int, suffix: str) -> ModelCard:
    repo = f"tue-mps/{hub}_eomt_{backbone}_{size}{suffix}"
    return family_card(
        key, repo=repo, revision=REVISIONS[repo], id=f"eomt-{backbone}-{size}-{key}", family="eomt",
        description=f"EoMT (encoder-only mask transformer) on a DINOv2 ViT-{backbone} at {size} px, "
                    f"trained on {DATASETS[key].name}.",
        params=_PARAMS[backbone], license=LICENSE, input_size=size, precisions=("fp32", "bf16"), homepage=HOMEPAGE,
    )


CARDS: tuple[ModelCard, ...] = tuple(_card(*row) for row in _PUBLISHED)


def specs() -> list[ModelSpec]:
    """One segmenter spec per EoMT card."""
    return [ModelSpec(card=card, role="segmenter", loader=LOADER, options=EomtOptions, call_options=EomtCall)
            for card in CARDS]
