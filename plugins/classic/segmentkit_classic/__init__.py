"""segmentkit-classic: the weightless default model ``classic``.

Only the hook implementations and specs live here; OpenCV and scikit-image are
imported when the model is loaded (``segmentkit_classic.model``, ``.tracker``).
"""

from __future__ import annotations

from segmentkit import ModelCard, ModelSpec, hookimpl

from .options import ClassicOptions

CARD = ModelCard(
    id="classic",
    family="classic",
    roles=("prompter", "segmenter", "tracker"),
    tasks=("prompt", "automatic", "track"),
    prompt_kinds=("point", "box", "mask"),
    description=("Weightless default: GrabCut from prompts, Felzenszwalb regions for automatic masks, "
                 "optical flow + GrabCut for tracking."),
    license="Apache-2.0",
    weights=None,
    input_size=256,
    runtimes=("numpy",),
    homepage="https://docs.opencv.org/4.x/d8/d83/tutorial_py_grabcut.html",
)

LOADER = "segmentkit_classic.model:Classic"


@hookimpl
def segmentkit_prompters() -> list[ModelSpec]:
    return [ModelSpec(card=CARD, role="prompter", loader=LOADER, options=ClassicOptions)]


@hookimpl
def segmentkit_segmenters() -> list[ModelSpec]:
    return [ModelSpec(card=CARD, role="segmenter", loader=LOADER, options=ClassicOptions)]


@hookimpl
def segmentkit_trackers() -> list[ModelSpec]:
    return [ModelSpec(card=CARD, role="tracker", loader="segmentkit_classic.tracker:ClassicTracker",
                      options=ClassicOptions)]
