"""The SAM 2 / SAM 2.1 model cards (one card per checkpoint, shared by every role)."""

from __future__ import annotations

import functools

from segmentkit.cards import ModelCard, WeightsSource

# The hub repositories hold transformers weights whose config has model_type "sam2_video";
# one checkpoint serves every role. Commit hashes could not be looked up offline, so the
# revision is "main" (pin a hash here once known).
_REVISION = "main"
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
            weights=WeightsSource(
                repo_id=f"facebook/sam{version}-hiera-{size}", revision=_REVISION, files=WEIGHT_FILES
            ),
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
