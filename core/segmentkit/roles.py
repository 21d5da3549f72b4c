"""The roles a loaded model plays, as typing Protocols.

The core never imports a plugin's classes: it loads the spec's loader class, calls
``Class(card, options)`` and uses the object through these protocols. Images may be
given as a path, bytes, a PIL image or an (H, W, 3) uint8 RGB array; implementations
normalise them with :func:`segmentkit.io.load_image`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from .cards import ModelCard, ModelOptions
from .sessions import TrackingSession
from .types import Detections, Embedding, Masks, Segmentation

ImageInput = Any  # str | Path | bytes | np.ndarray | PIL.Image.Image
VideoSource = Any  # str | Path (video file or frame directory) | sequence of images


@runtime_checkable
class Model(Protocol):
    """Every loaded model keeps its card and the options it was loaded with."""

    card: ModelCard
    options: ModelOptions


@runtime_checkable
class Segmenter(Model, Protocol):
    """Whole-image segmentation: semantic, instance, panoptic or automatic masks."""

    def segment(self, image: ImageInput, *, task: str | None = None) -> Segmentation:
        """Segment ``image``; ``task`` defaults to the card's first task."""
        ...


@runtime_checkable
class Prompter(Model, Protocol):
    """Prompt -> mask: embed an image once, predict for many prompt sets."""

    def embed(self, image: ImageInput) -> Embedding:
        """Compute (or fetch from cache) the image's embedding."""
        ...

    def predict(self, embedding: Embedding, prompts: Sequence[Any], *, multimask: bool = False) -> Masks:
        """Masks for one object described by ``prompts``: 1 mask, or 3 with ``multimask``."""
        ...

    def predict_batch(
        self, embedding: Embedding, prompt_sets: Sequence[Sequence[Any]], *, multimask: bool = False
    ) -> list[Masks]:
        """Masks for several objects, one prompt set each, in one call."""
        ...


@runtime_checkable
class Tracker(Model, Protocol):
    """Starts tracking sessions; one set of weights serves many sessions."""

    def start(self, source: VideoSource | None = None, *, stream: bool = False) -> TrackingSession:
        """Open a session over ``source`` (file or frame folder), or a live one with ``stream``.

        Sessions are :class:`segmentkit.sessions.TrackingSession` subclasses. A tracker whose
        sessions can save their state also has ``restore(path, source=None)``, usually
        :func:`segmentkit.session_files.restore_session`."""
        ...


@runtime_checkable
class Grounder(Model, Protocol):
    """Open-vocabulary detection: text phrases -> labelled boxes."""

    def detect(self, image: ImageInput, text: str) -> Detections:
        """Boxes for the phrases of ``text`` (phrases separated by '.')."""
        ...


ROLE_PROTOCOLS: dict[str, type] = {
    "segmenter": Segmenter,
    "prompter": Prompter,
    "tracker": Tracker,
    "grounder": Grounder,
}

__all__ = [
    "Detections", "Embedding", "Grounder", "ImageInput", "Model", "Prompter", "ROLE_PROTOCOLS",
    "Segmenter", "Tracker", "TrackingSession", "VideoSource",
]
