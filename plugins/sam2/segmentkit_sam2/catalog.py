"""The SAM 2 / SAM 2.1 model cards (one card per checkpoint, shared by every role)."""

from __future__ import annotations

import functools

from segmentkit.cards import ModelCard, WeightsSource

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
    """Cards of every SAM 2 checkpoint in a stable order; the same objects on every call."""
    return list(_cards())


def _weights(repo: str) -> WeightsSource:
    return WeightsSource(repo_id=repo, revision=REVISIONS[repo], files=WEIGHT_FILES)


@functools.cache
def _cards() -> tuple[ModelCard, ...]:
    return tuple(
        ModelCard(
            id=f"sam{version}-hiera-{size}",
            family="sam2",
            roles=("prompter", "segmenter", "tracker"),
            tasks=("prompt", "automatic", "track"),
            prompt_kinds=("point", "box", "mask"),
            description=f"SAM {version} Hiera-{label}: promptable image and video segmentation.",
            params=params,
            license="Apache-2.0",
            weights=_weights(f"facebook/sam{version}-hiera-{size}"),
            input_size=1024,
            runtimes=("torch", "onnxruntime"),
            precisions=("fp32", "bf16"),
            homepage="https://ai.meta.com/sam2/",
        )
        for version in _VERSIONS
        for size, label, params in _SIZES
    )


def card(model_id: str) -> ModelCard:
    """The card with ``model_id``."""
    for c in cards():
        if c.id == model_id:
            return c
    raise KeyError(model_id)
