"""SAM 3 (Segment Anything with concepts): text / exemplar prompts find every instance, in images
and through video with stable ids; clicks and boxes prompt single objects through its tracker.

Only the card and hookimpls live here; model code is imported when a model is loaded.
"""

from __future__ import annotations

from segmentkit import ModelCard, ModelSpec, WeightsSource, hookimpl

from .options import Sam3Call, Sam3Options

# facebook/sam3 is gated (SAM License): accept it on the hub and log in before `segmentkit pull sam3`.
# The revision is the one third-party setup scripts pin for this repository (found with a code
# search, not fetched here: no hub access); the transformers-format weights are model.safetensors.
_REPO, _REVISION = "facebook/sam3", "3c879f39826c281e95690f02c7821c4de09afae7"

SAM3_CARD = ModelCard(
    id="sam3",
    family="sam3",
    roles=("prompter", "tracker"),
    tasks=("prompt", "track"),
    prompt_kinds=("point", "box", "text"),
    description=("Concept segmentation: a noun phrase (or exemplar boxes) -> every matching instance with "
                 "scores, in images and video with stable ids; clicks / boxes -> one object."),
    params=848_000_000,
    license="SAM License",
    weights=WeightsSource(repo_id=_REPO, revision=_REVISION,
                          files=("*.json", "*.txt", "model*.safetensors")),
    input_size=1008,
    homepage="https://ai.meta.com/sam3",
)


@hookimpl
def segmentkit_prompters() -> list[ModelSpec]:
    return [ModelSpec(card=SAM3_CARD, role="prompter", loader="segmentkit_sam3.prompter:Sam3Prompter",
                      options=Sam3Options, call_options=Sam3Call)]


@hookimpl
def segmentkit_trackers() -> list[ModelSpec]:
    return [ModelSpec(card=SAM3_CARD, role="tracker", loader="segmentkit_sam3.tracker:Sam3Tracker",
                      options=Sam3Options)]
