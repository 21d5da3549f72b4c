"""SAM 3 as a prompter: text (and exemplar boxes) find every instance; clicks and a box find one object.

A prompt set with a :class:`~segmentkit.types.Text` is a *concept* query: the masks of all
matching instances, scored, labelled with the phrase; boxes given with it are exemplars
(more instances like these). A set without text goes to the SAM 3 tracker's prompt
encoder: clicks (+/-) and at most one box describe one object. ``exemplars=True`` makes a
box alone a concept query too (several exemplar boxes need a text next to them: the core
reads several boxes without text as several objects).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from segmentkit.cards import ModelCard
from segmentkit.errors import PromptError
from segmentkit.io.image import image_key, load_image
from segmentkit.roles import Embedding
from segmentkit.types import Box, Masks, Point, Text

from .engine import ImageFeatures, Sam3Engine
from .loading import load_models
from .options import Sam3Call, Sam3Options
from .preprocess import VISUAL


class Sam3Prompter:
    """``embed`` once per image; ``predict`` a concept (text / exemplars) or one object (clicks / box)."""

    def __init__(self, card: ModelCard, options: Sam3Options):
        self.card, self.options = card, options
        self.engine = Sam3Engine(load_models(card, options))

    def embed(self, image: Any) -> Embedding:
        rgb = load_image(image)
        features = self.engine.features(rgb)
        return Embedding(model_id=self.card.id, image_size=features.image_size, key=image_key(rgb), data=features)

    def predict(self, embedding: Embedding, prompts: Sequence[Any], *, multimask: bool = False,
                options: Sam3Call | None = None) -> Masks:
        if embedding.model_id != self.card.id or not isinstance(embedding.data, ImageFeatures):
            raise PromptError(f"this embedding was made by {embedding.model_id!r}, not {self.card.id!r}: embed the "
                              "image with this model")
        call = options or Sam3Call()
        texts = [p for p in prompts if isinstance(p, Text)]
        boxes = [p for p in prompts if isinstance(p, Box)]
        points = [p for p in prompts if isinstance(p, Point)]
        if texts or call.exemplars:
            return self._concept(embedding, texts, boxes, points, call)
        xy = np.array([[p.x, p.y] for p in points], dtype=np.float32).reshape(-1, 2)
        labels = np.array([1 if p.positive else 0 for p in points], dtype=np.int64)
        box = np.array([boxes[0].x0, boxes[0].y0, boxes[0].x1, boxes[0].y1], np.float32) if boxes else None
        return self.engine.interactive(embedding.data, xy, labels, box, multimask=multimask)

    def predict_batch(self, embedding: Embedding, prompt_sets: Sequence[Sequence[Any]], *,
                      multimask: bool = False, options: Sam3Call | None = None) -> list[Masks]:
        return [self.predict(embedding, prompts, multimask=multimask, options=options) for prompts in prompt_sets]

    def _concept(self, embedding: Embedding, texts: list[Text], boxes: list[Box], points: list[Point],
                 call: Sam3Call) -> Masks:
        if points:
            raise PromptError("a SAM 3 concept query takes a text and/or exemplar boxes, not points")
        if len(texts) > 1:
            raise PromptError("give one text prompt per prompt set (one noun phrase, e.g. Text('yellow school bus'))")
        text = texts[0].text if texts else VISUAL
        xyxy = np.array([[b.x0, b.y0, b.x1, b.y1] for b in boxes], dtype=np.float32).reshape(-1, 4)
        threshold = self.options.threshold if call.threshold is None else call.threshold
        mask_threshold = self.options.mask_threshold if call.mask_threshold is None else call.mask_threshold
        return self.engine.concept(embedding.data, text, xyxy, threshold=threshold, mask_threshold=mask_threshold)
