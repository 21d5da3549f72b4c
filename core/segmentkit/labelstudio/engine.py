"""The core calls the Label Studio face makes, in one adapter.

Everything model-side goes through the IPC :class:`~segmentkit.ipc.service.Service`:
its registry and grants choose the model, the registry's plan checks the prompts against
the card, its model cache loads the model once, its embedding cache (by model and image
content, counted in ``vision.stats``) makes a second click on an image run the decoder
alone, its limits bound inputs, its thread pool runs the work.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cards import ModelCard
from ..embedding_cache import EmbeddingCache
from ..errors import TaskError
from ..io.image import image_key
from ..ipc.manifest import App
from ..ipc.service import Service
from ..types import FrameMasks, Masks


@dataclass
class Labelled:
    """Masks and the label name of each (None where the model has no labels)."""

    masks: Masks
    labels: list[str | None]


class Engine:
    """One served model (``model``; None: the registry's default per role) over ``service``."""

    def __init__(self, service: Service, model: str | None = None):
        self.service = service
        self.model = model
        self.app: App = next(iter(service.apps.values()))

    @property
    def embeddings(self) -> EmbeddingCache:
        """The service's embedding cache (hits and misses are ``vision.stats``' counters)."""
        return self.service.embeddings

    def card(self, role: str | None = None) -> ModelCard:
        """The served model's card (in ``role``: granted to the app and installed in that role)."""
        if role is None:
            name = self.model or self.service.registry.default_model_id("prompter")
            return self.service.registry.resolve(name).spec.card
        return self.service.pick_model(self.app, self.model, role).spec.card

    def model_version(self) -> str:
        """``id@revision`` of the served model (``id@local`` for local weights, ``@none`` if weightless)."""
        card = self.card()
        if "weights" in self.service.cache.per_model.get(card.id, {}):
            return f"{card.id}@local"
        return f"{card.id}@{card.weights.revision[:12] if card.weights else 'none'}"

    def roles(self) -> tuple[str, ...]:
        return tuple(self.card().roles)

    # ------------------------------------------------------------------ images

    def prompt(self, rgb: np.ndarray, prompt_sets: Sequence[Sequence[Any]]) -> Masks:
        """One mask per prompt set (object ``k`` = set ``k``), the embedding taken from the cache."""
        card = self.service.registry.plan(self.card("prompter").id, "prompter", objects=prompt_sets).card
        with self.service.cache.get(card.id, "prompter").use() as prompter:
            embedding = self.embeddings.get((card.id, image_key(rgb)), lambda: prompter.embed(rgb))
            return prompter.predict_objects(embedding, [list(s) for s in prompt_sets])

    def whole_image(self, rgb: np.ndarray) -> Labelled:
        """The model's whole-image result: its segmentation (automatic masks for a prompter)."""
        card = self.card()
        if "segmenter" not in card.roles:
            raise TaskError(
                f"model {card.id!r} gives no whole-image result (roles: {', '.join(card.roles)}); "
                "give it a prompt, or serve a segmenter"
            )
        with self.service.cache.get(card.id, "segmenter").use() as segmenter:
            result = segmenter.segment(rgb)
        masks = result.masks
        names = masks.id2label
        if masks.class_ids is None:
            return Labelled(masks, [None] * len(masks))
        return Labelled(masks, [names.get(int(c)) for c in masks.class_ids])

    def model_labels(self) -> tuple[str, ...]:
        """The served model's fixed label set (empty for class-agnostic models)."""
        return tuple(self.card().labels)

    # ------------------------------------------------------------------ video

    def track(
        self, source: Any, keyframes: dict[int, list[tuple[int, list[Any]]]], start: int, frames: int
    ) -> Iterator[FrameMasks]:
        """Masks of every object from frame ``start`` on, ``frames`` frames at most.

        ``keyframes``: object id -> [(frame, prompts), ...]; all objects share one session.
        """
        objects = [items for prompts in keyframes.values() for _, items in prompts]
        card = self.service.registry.plan(self.card("tracker").id, "tracker", objects=objects).card
        with self.service.cache.get(card.id, "tracker").use() as tracker, tracker.start(source) as session:
            for object_id, prompts in keyframes.items():
                for frame, items in prompts:
                    session.add_prompts(frame, object_id, items)
            yield from session.propagate(start, max_frames=frames)
