"""Grounded-SAM 2 on images: text -> grounder boxes -> one SAM 2 mask per box."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from segmentkit.cards import ModelCard
from segmentkit.errors import PromptError
from segmentkit.io import load_image
from segmentkit.roles import Detections, Embedding
from segmentkit.types import Box, Masks, Text, validate_prompts

from .options import GroundedOptions
from .parts import Parts


def text_of(prompts: Sequence[Any], image_size: tuple[int, int]) -> str:
    """The one text prompt of a prompt set (grounded-sam2 takes text only)."""
    prompts = validate_prompts(prompts, image_size)
    texts = [p for p in prompts if isinstance(p, Text)]
    if len(texts) != 1 or len(prompts) != 1:
        raise PromptError("grounded-sam2 takes exactly one text prompt per prompt set, e.g. Text('a dog. a ball.')")
    return texts[0].text


def masks_for_detections(prompter: Any, embedding: Any, found: Detections) -> Masks:
    """One SAM 2 mask per detected box, labelled with its phrase and both scores."""
    if len(found) == 0:
        return Masks.empty(found.image_size, class_ids=np.zeros(0), id2label=dict(enumerate(found.phrases)),
                           data={"detector_score": np.zeros(0, np.float32), "mask_score": np.zeros(0, np.float32)})
    boxes = [[Box(*np.clip(b, 0, [found.image_size[1], found.image_size[0]] * 2))] for b in found.boxes]
    per_box = Masks.concatenate(prompter.predict_batch(embedding, boxes))
    class_ids = found.phrase_ids if found.phrase_ids is not None else np.arange(len(found))
    labels = dict(enumerate(found.phrases)) if found.phrases else dict(enumerate(found.labels))
    return Masks(
        per_box.masks, scores=found.scores, class_ids=class_ids, id2label=labels,
        data={"detector_score": found.scores, "mask_score": per_box.scores,
              "detector_box": found.boxes},
    )


class GroundedPrompter:
    """Prompter for text: ``prompt(image, text=...)`` or ``predict(embed(image), [Text(...)])``."""

    def __init__(self, card: ModelCard, options: GroundedOptions):
        self.card, self.options = card, options
        self.parts = Parts(options)

    def embed(self, image: Any) -> Embedding:
        array = load_image(image)
        inner = self.parts.prompter.embed(array)
        return Embedding(model_id=self.card.id, image_size=inner.image_size, key=inner.key, data=(array, inner))

    def predict(self, embedding: Embedding, prompts: Sequence[Any], *, multimask: bool = False) -> Masks:
        array, inner = embedding.data
        found = self.parts.detect(array, text_of(prompts, embedding.image_size))
        return masks_for_detections(self.parts.prompter, inner, found)

    def predict_batch(self, embedding: Embedding, prompt_sets: Sequence[Sequence[Any]], *,
                      multimask: bool = False) -> list[Masks]:
        return [self.predict(embedding, prompts) for prompts in prompt_sets]

    def prompt(self, image: Any, text: str) -> Masks:
        """Masks of every instance of the phrases in ``text`` (empty when nothing matches)."""
        return self.predict(self.embed(image), [Text(text)])
