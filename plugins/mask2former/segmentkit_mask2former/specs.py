"""Mask2Former model cards and options (cheap: pydantic only, no torch).

Which tasks a card offers follows the dataset its checkpoint was trained on: panoptic
checkpoints (COCO, Cityscapes) were evaluated for panoptic, instance and semantic output
from the same head; instance checkpoints know only thing classes (no stuff, so no
semantic or panoptic map); semantic checkpoints have no notion of instances.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field
from segmentkit import CallOptions, ModelCard, ModelOptions, ModelSpec, WeightsSource
from segmentkit.label_sets import ADE20K, CITYSCAPES

from .labels import ADE20K_STUFF_IDS, CITYSCAPES_THINGS, COCO_INSTANCE, COCO_PANOPTIC, COCO_THINGS

LOADER = "segmentkit_mask2former.model:Mask2FormerSegmenter"
_UNPINNED = "main"  # no commit hash of this repository could be found offline; pin one when known
# The commit each hub repository is pinned to (`segmentkit pull --revision` chooses another).
REVISIONS = {
    "facebook/mask2former-swin-tiny-coco-panoptic": "df6b1142ff50c3276559d9d78f35f6a579c75a77",
    "facebook/mask2former-swin-small-coco-panoptic": _UNPINNED,
    "facebook/mask2former-swin-base-coco-panoptic": "d14773b92666b4f3a984edbf34a86ce724b06dc8",
    "facebook/mask2former-swin-large-coco-panoptic": "85b535928a783691eaf27467a573b26d543336ea",
    "facebook/mask2former-swin-tiny-coco-instance": _UNPINNED,
    "facebook/mask2former-swin-small-coco-instance": _UNPINNED,
    "facebook/mask2former-swin-large-coco-instance": _UNPINNED,
    "facebook/mask2former-swin-tiny-ade-semantic": _UNPINNED,
    "facebook/mask2former-swin-small-ade-semantic": _UNPINNED,
    "facebook/mask2former-swin-base-IN21k-ade-semantic": _UNPINNED,
    "facebook/mask2former-swin-large-ade-semantic": _UNPINNED,
    "facebook/mask2former-swin-tiny-cityscapes-semantic": "414e5f2219df2e2e56703b856bbce4cc7b7046b9",
    "facebook/mask2former-swin-small-cityscapes-semantic": _UNPINNED,
    "facebook/mask2former-swin-base-IN21k-cityscapes-semantic": _UNPINNED,
    "facebook/mask2former-swin-large-cityscapes-semantic": _UNPINNED,
    "facebook/mask2former-swin-tiny-cityscapes-panoptic": _UNPINNED,
    "facebook/mask2former-swin-small-cityscapes-panoptic": _UNPINNED,
    "facebook/mask2former-swin-large-cityscapes-panoptic": _UNPINNED,
}
LICENSE = "other (see the hub model card)"
HOMEPAGE = "https://arxiv.org/abs/2112.01527"
INPUT_SIZE = 384  # the hub checkpoints' preprocessor_config.json resize to 384x384


@dataclass(frozen=True)
class Dataset:
    """What a checkpoint's training data decides: labels, thing classes and tasks."""

    name: str
    labels: tuple[str, ...]
    things: tuple[str, ...]
    tasks: tuple[str, ...]

    @property
    def stuff_ids(self) -> tuple[int, ...]:
        return tuple(i for i, name in enumerate(self.labels) if name not in self.things)


DATASETS = {
    "coco-panoptic": Dataset("COCO panoptic (133 classes)", COCO_PANOPTIC, COCO_THINGS,
                             ("panoptic", "instance", "semantic")),
    "coco-instance": Dataset("COCO instances (80 classes)", COCO_INSTANCE, COCO_INSTANCE, ("instance",)),
    "ade-semantic": Dataset("ADE20k (150 classes)", ADE20K, (), ("semantic",)),
    "cityscapes-semantic": Dataset("Cityscapes (19 classes)", CITYSCAPES, (), ("semantic",)),
    "cityscapes-panoptic": Dataset("Cityscapes panoptic (19 classes)", CITYSCAPES, CITYSCAPES_THINGS,
                                   ("panoptic", "instance", "semantic")),
    "ade-panoptic": Dataset("ADE20k panoptic (150 classes)", ADE20K,
                            tuple(n for i, n in enumerate(ADE20K) if i not in ADE20K_STUFF_IDS),
                            ("panoptic", "instance", "semantic")),
}

# (backbone, dataset) pairs published as facebook/mask2former-swin-<backbone>-<dataset>.
_PUBLISHED = {
    "coco-panoptic": ("tiny", "small", "base", "large"),
    "coco-instance": ("tiny", "small", "large"),
    "ade-semantic": ("tiny", "small", "base-IN21k", "large"),
    "cityscapes-semantic": ("tiny", "small", "base-IN21k", "large"),
    "cityscapes-panoptic": ("tiny", "small", "large"),
}
_PARAMS = {"tiny": 47_000_000, "small": 69_000_000, "base": 107_000_000, "base-IN21k": 107_000_000,
           "large": 216_000_000}


class Mask2FormerOptions(ModelOptions):
    """Post-processing thresholds, as transformers' ``post_process_*_segmentation`` take them."""

    threshold: float = Field(default=0.5, ge=0.0, le=1.0,
                             description="Minimum score of a query to be kept (instance, panoptic).")
    mask_threshold: float = Field(default=0.5, gt=0.0, lt=1.0,
                                  description="Probability above which a mask pixel is on.")
    overlap_mask_area_threshold: float = Field(
        default=0.8, ge=0.0, le=1.0,
        description="Panoptic: keep a segment only if this fraction of its mask survives the overlaps.",
    )
    label_ids_to_fuse: tuple[int, ...] | None = Field(
        default=None,
        description="Panoptic: class ids whose segments merge into one; None = the dataset's stuff classes.",
    )


class Mask2FormerCall(CallOptions):
    """Per-call overrides of the thresholds (``segment(image, threshold=0.3)``); unset ones keep the load options."""

    threshold: float = Field(default=0.5, ge=0.0, le=1.0,
                             description=Mask2FormerOptions.model_fields["threshold"].description)
    mask_threshold: float = Field(default=0.5, gt=0.0, lt=1.0,
                                  description=Mask2FormerOptions.model_fields["mask_threshold"].description)
    overlap_mask_area_threshold: float = Field(
        default=0.8, ge=0.0, le=1.0,
        description=Mask2FormerOptions.model_fields["overlap_mask_area_threshold"].description,
    )
    label_ids_to_fuse: tuple[int, ...] | None = Field(
        default=None, description=Mask2FormerOptions.model_fields["label_ids_to_fuse"].description,
    )


def card_dataset(card: ModelCard) -> Dataset:
    """The training dataset of a card, from its id (``<model>-<size>-<dataset>``)."""
    for key, dataset in DATASETS.items():
        if card.id.endswith(key):
            return dataset
    raise KeyError(card.id)


def family_card(key: str, *, repo: str, revision: str, **fields: object) -> ModelCard:
    """A segmenter card of the family trained on dataset ``key``: tasks and labels from the dataset,
    weights from the hub ``repo`` at ``revision``, torch runtime; ``fields`` are the rest."""
    dataset = DATASETS[key]
    return ModelCard(
        roles=("segmenter",),
        tasks=dataset.tasks,  # type: ignore[arg-type]
        labels=dataset.labels,
        weights=WeightsSource(repo_id=repo, revision=revision,
                              files=("config.json", "preprocessor_config.json", "*.safetensors",
                                     "pytorch_model.bin")),
        runtimes=("torch",),
        **fields,  # type: ignore[arg-type]
    )


def _card(backbone: str, key: str) -> ModelCard:
    repo = f"facebook/mask2former-swin-{backbone}-{key}"
    return family_card(
        key, repo=repo, revision=REVISIONS[repo], id=f"mask2former-swin-{backbone.lower()}-{key}", family="mask2former",
        description=f"Mask2Former with a Swin-{backbone} backbone trained on {DATASETS[key].name}.",
        params=_PARAMS[backbone], license=LICENSE, input_size=INPUT_SIZE, precisions=("fp32",), homepage=HOMEPAGE,
    )


CARDS: tuple[ModelCard, ...] = tuple(_card(b, key) for key, sizes in _PUBLISHED.items() for b in sizes)


def specs() -> list[ModelSpec]:
    """One segmenter spec per Mask2Former card."""
    return [ModelSpec(card=card, role="segmenter", loader=LOADER, options=Mask2FormerOptions,
                      call_options=Mask2FormerCall) for card in CARDS]
