"""Grounding DINO as a grounder, and Grounded-SAM 2 composed from a grounder and SAM 2.

Only cards and hookimpls live here; model code is imported when a model is loaded.
"""

from __future__ import annotations

from segmentkit import ModelCard, ModelSpec, WeightsSource, hookimpl

from .options import GroundedOptions, GroundingCall, GroundingOptions

_DINO_LICENSE = "Apache-2.0"

_DETECTORS = {
    # id: (hub repo, pinned revision, parameters)
    "grounding-dino-tiny": (
        "IDEA-Research/grounding-dino-tiny", "a2bb814dd30d776dcf7e30523b00659f4f141c71", 172_000_000),
    "grounding-dino-base": (
        "IDEA-Research/grounding-dino-base", "12bdfa3120f3e7ec7b434d90674b3396eccf88eb", 233_000_000),
}


def detector_cards() -> list[ModelCard]:
    return [
        ModelCard(
            id=model_id,
            family="grounding-dino",
            roles=("grounder",),
            tasks=("ground",),
            description="Open-vocabulary detector: text phrases -> labelled boxes.",
            params=params,
            license=_DINO_LICENSE,
            weights=WeightsSource(repo_id=repo, revision=revision),
            input_size=1333,
            homepage="https://arxiv.org/abs/2303.05499",
        )
        for model_id, (repo, revision, params) in _DETECTORS.items()
    ]


GROUNDED_CARD = ModelCard(
    id="grounded-sam2",
    family="grounded-sam2",
    roles=("prompter", "tracker"),
    tasks=("prompt", "track"),
    prompt_kinds=("text",),
    description="Text -> masks: a grounder finds boxes, SAM 2 turns them into masks and tracks them.",
    license="Apache-2.0",
    homepage="https://github.com/IDEA-Research/Grounded-SAM-2",
)


@hookimpl
def segmentkit_grounders() -> list[ModelSpec]:
    return [
        ModelSpec(card=card, role="grounder", loader="segmentkit_grounded_sam2.grounding_dino:GroundingDino",
                  options=GroundingOptions, call_options=GroundingCall)
        for card in detector_cards()
    ]


@hookimpl
def segmentkit_prompters() -> list[ModelSpec]:
    return [ModelSpec(card=GROUNDED_CARD, role="prompter", loader="segmentkit_grounded_sam2.image:GroundedPrompter",
                      options=GroundedOptions)]


@hookimpl
def segmentkit_trackers() -> list[ModelSpec]:
    return [ModelSpec(card=GROUNDED_CARD, role="tracker", loader="segmentkit_grounded_sam2.video:GroundedTracker",
                      options=GroundedOptions)]
