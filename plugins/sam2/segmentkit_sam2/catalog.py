"""The SAM-family model cards (one card per checkpoint, shared by every role).

A card's ``family`` selects its :class:`~.family.SamFamily` descriptor; :func:`family_card`
fills in what every card of a family shares.
"""

from __future__ import annotations

import functools

from segmentkit.cards import ModelCard, WeightsSource

from .family import EDGETAM, SAM2, SamFamily

# The hub repositories hold transformers weights whose config has model_type "sam2_video";
# one checkpoint serves every role. Each repository is pinned to a commit (what
# `segmentkit pull` fetches; `segmentkit pull --revision` chooses another).
REVISIONS = {
    "facebook/sam2.1-hiera-tiny": "de431c4043854a71d8101e17995dfe596bf101a5",
    "facebook/sam2.1-hiera-small": "ee5bba1d82bb8749febdf90f45e84b687142ba03",
    "facebook/sam2.1-hiera-base-plus": "b7320756a13354e7530a63935656d35b2f91a290",
    "facebook/sam2.1-hiera-large": "665f8e2ad61cf5f53d65644ff27c8ee525124610",
    # found in a third-party pin list; not yet checked to hold the transformers files (the others were)
    "facebook/sam2-hiera-tiny": "7c218beaf0bb87874785f32b582f640134fc1c09",
    "facebook/sam2-hiera-small": "main",  # no commit hash found offline; pin when one is known
    "facebook/sam2-hiera-base-plus": "main",  # no commit hash found offline; pin when one is known
    "facebook/sam2-hiera-large": "e6a8e8809b8f1bfa2238b6d080f3d05cc76bd251",
    # transformers' EdgeTAM port (model_type "edgetam_video"); the commit an unmodified public mirror
    # (huggingface.co/t3ta/EdgeTAM-hf) states it copied (last modified 2025-11-06)
    "yonigozlan/EdgeTAM-hf": "c266ce53b3fc00f0f495b583f6a116c4e57f53bb",
}
_SIZES: tuple[tuple[str, str, int], ...] = (
    ("tiny", "Tiny", 38_900_000),
    ("small", "Small", 46_000_000),
    ("base-plus", "Base+", 80_800_000),
    ("large", "Large", 224_400_000),
)
_VERSIONS = ("2.1", "2")

WEIGHT_FILES = ("*.json", "*.safetensors")


def cards() -> list[ModelCard]:
    """Cards of every checkpoint this distribution serves in a stable order; the same objects every call."""
    return list(_cards())


def family_card(family: SamFamily, model_id: str, repo: str, revision: str, *, description: str, params: int,
                license: str, homepage: str) -> ModelCard:
    """A card of ``family``: roles, tasks, prompt kinds, input size and runtimes come from the descriptor."""
    return ModelCard(
        id=model_id,
        family=family.name,
        roles=("prompter", "segmenter", "tracker"),
        tasks=("prompt", "automatic", "track"),
        prompt_kinds=("point", "box", "mask"),
        description=description,
        params=params,
        license=license,
        weights=WeightsSource(repo_id=repo, revision=revision, files=WEIGHT_FILES),
        input_size=family.input_size,
        runtimes=family.runtimes,
        precisions=("fp32", "bf16"),
        homepage=homepage,
    )


@functools.cache
def _cards() -> tuple[ModelCard, ...]:
    return tuple(
        family_card(
            SAM2, f"sam{version}-hiera-{size}", f"facebook/sam{version}-hiera-{size}",
            REVISIONS[f"facebook/sam{version}-hiera-{size}"],
            description=f"SAM {version} Hiera-{label}: promptable image and video segmentation.",
            params=params, license="Apache-2.0", homepage="https://ai.meta.com/sam2/",
        )
        for version in _VERSIONS
        for size, label, params in _SIZES
    ) + (
        family_card(
            EDGETAM, "edgetam", "yonigozlan/EdgeTAM-hf", REVISIONS["yonigozlan/EdgeTAM-hf"],
            description="EdgeTAM: SAM 2 with a RepViT-M1 encoder and a spatial memory perceiver; "
                        "on-device speed for promptable image and video segmentation.",
            params=14_100_000, license="Apache-2.0", homepage="https://github.com/facebookresearch/EdgeTAM",
        ),
    )


def card(model_id: str) -> ModelCard:
    """The card with ``model_id``."""
    for c in cards():
        if c.id == model_id:
            return c
    raise KeyError(model_id)
