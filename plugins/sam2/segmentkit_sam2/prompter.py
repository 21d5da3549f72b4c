"""A SAM-family model as a :class:`~segmentkit.roles.Prompter`: embed once, predict for many prompt sets."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from segmentkit.cards import ModelCard
from segmentkit.errors import PromptError
from segmentkit.io.image import image_key, load_image
from segmentkit.roles import Embedding, ImageInput
from segmentkit.types import Masks

from .cache import ByteLRU
from .engine import ImageFeatures
from .family import family_of
from .options import Sam2Options
from .postprocess import to_masks
from .preprocess import preprocess_image
from .prompts import PromptTensors, encode_prompts, stack
from .runtime import build_engine

log = logging.getLogger(__name__)


class Sam2Prompter:
    """Points (+/-), a box, box + points and mask prompts -> masks, with an embedding cache."""

    def __init__(self, card: ModelCard, options: Sam2Options | None = None):
        self.card = card
        self.options = options if options is not None else Sam2Options()
        self.family = family_of(card)
        self.engine = build_engine(card, self.options)  # lean torch fp32 / bf16, reference, or ONNX Runtime
        self._normalization = self.family.normalization()
        self._cache: ByteLRU[Embedding] = ByteLRU(self.options.cache_bytes)

    # ------------------------------------------------------------------ image

    def embed(self, image: ImageInput) -> Embedding:
        """The image's embedding: from the cache when this content was embedded before."""
        pixels = load_image(image)
        key = image_key(pixels)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        features = self.embed_array(pixels)
        embedding = Embedding(model_id=self.card.id, image_size=features.original_size, key=key, data=features)
        self._cache.put(key, embedding, features.nbytes)
        return embedding

    def embed_array(self, pixels: np.ndarray) -> ImageFeatures:
        """Encode an (H, W, 3) uint8 image (no cache): preprocess, then the vision encoder."""
        pixel_values = preprocess_image(pixels, self.engine.input_size, self._normalization)
        return self.engine.encode(pixel_values, (int(pixels.shape[0]), int(pixels.shape[1])))

    # ------------------------------------------------------------------ prompts

    def predict(self, embedding: Embedding, prompts: Sequence[Any], *, multimask: bool = False) -> Masks:
        """Masks for one object: the best mask, or 3 candidates with ``multimask``."""
        return self.predict_batch(embedding, [prompts], multimask=multimask)[0]

    def predict_batch(
        self, embedding: Embedding, prompt_sets: Sequence[Sequence[Any]], *, multimask: bool = False
    ) -> list[Masks]:
        """Masks for several objects, one prompt set each. Sets with the same make-up
        (number of points, box or not, mask or not) are decoded in one call; every set's
        result equals what :meth:`predict` gives for it alone."""
        features = self._features(embedding)
        hw = features.original_size
        encoded = [
            encode_prompts(prompts, hw, self.engine.input_size, self.engine.mask_input_size)
            for prompts in prompt_sets
        ]
        groups: dict[tuple[int, bool, bool], list[int]] = defaultdict(list)
        for i, item in enumerate(encoded):
            groups[item.group].append(i)
        results: list[Masks | None] = [None] * len(encoded)
        for indices in groups.values():
            for i, masks in zip(indices, self._decode(features, [encoded[i] for i in indices], multimask)):
                results[i] = masks
        return [r for r in results if r is not None]

    def _decode(self, features: ImageFeatures, items: list[PromptTensors], multimask: bool) -> list[Masks]:
        batch = stack(items)
        out = self.engine.decode(features, batch.points, batch.labels, batch.boxes, batch.masks, multimask=multimask)
        low_res = out.low_res_logits.flatten(0, 1)  # (n, C, h, w): one row per object in either layout
        iou = out.iou_scores.flatten(0, 1)
        return [
            to_masks(low_res[i], iou[i], features.original_size, threshold=self.options.mask_threshold)
            for i in range(len(items))
        ]

    def _features(self, embedding: Embedding) -> ImageFeatures:
        data = getattr(embedding, "data", None)
        if not isinstance(data, ImageFeatures):
            raise PromptError(f"not a {self.family.label} embedding: pass the result of this model's embed()")
        if data.engine != self.engine.token:
            raise PromptError(
                f"this embedding was computed by another model instance ({embedding.model_id!r}); "
                "embed the image with this model first"
            )
        return data
