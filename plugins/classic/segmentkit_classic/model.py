"""The ``classic`` model: one object serving the prompter and the segmenter roles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from segmentkit.cards import ModelCard
from segmentkit.errors import OptionsError, PromptError, SegmentkitError, TaskError
from segmentkit.io import image_key, load_image
from segmentkit.roles import Embedding, ImageInput
from segmentkit.types import Box, MaskPrompt, Masks, Point, Segmentation, validate_prompts

from . import grabcut, regions
from .options import ClassicOptions
from .window import Window, make_window


@dataclass(frozen=True)
class Features:
    """What ``embed`` keeps: the decoded image and its downscaled working copy."""

    image: np.ndarray  # (H, W, 3) uint8, read-only
    whole: Window


class Classic:
    """GrabCut from prompts (prompter) and Felzenszwalb regions (segmenter, ``automatic``)."""

    def __init__(self, card: ModelCard, options: ClassicOptions):
        if options.device != "cpu":
            raise OptionsError(f"{card.id!r} runs on the CPU only, not device={options.device!r}")
        self.card = card
        self.options = options

    # ------------------------------------------------------------------ prompter

    def embed(self, image: ImageInput) -> Embedding:
        """Decode ``image`` and prepare its working copy; reusable for many predictions."""
        rgb = load_image(image)
        rgb.setflags(write=False)
        h, w = rgb.shape[:2]
        whole = make_window(rgb, (0, 0, w, h), self.options.max_side)
        return Embedding(model_id=self.card.id, image_size=(h, w), key=image_key(rgb), data=Features(rgb, whole))

    def predict(self, embedding: Embedding, prompts: Sequence[Any], multimask: bool = False) -> Masks:
        """One mask (the best-scoring candidate), or three candidates with ``multimask``."""
        features = self._features(embedding)
        return self._predict(features, self._seeds(prompts, embedding.image_size), multimask)

    def predict_batch(
        self, embedding: Embedding, prompt_sets: Sequence[Sequence[Any]], multimask: bool = False
    ) -> list[Masks]:
        """One :class:`Masks` per prompt set; every set is validated before any work."""
        features = self._features(embedding)
        seeds = [self._seeds(prompts, embedding.image_size) for prompts in prompt_sets]
        return [self._predict(features, s, multimask) for s in seeds]

    def _features(self, embedding: Embedding) -> Features:
        if not isinstance(embedding, Embedding) or not isinstance(embedding.data, Features):
            raise SegmentkitError(
                f"not an embedding of {self.card.id!r}: pass what {self.card.id!r}.embed(image) returned"
            )
        return embedding.data

    def _seeds(self, prompts: Sequence[Any], size: tuple[int, int]) -> grabcut.Seeds:
        positives, negatives, box, mask = [], [], None, None
        for p in validate_prompts(prompts, size):
            if isinstance(p, Point):
                (positives if p.positive else negatives).append((p.x, p.y))
            elif isinstance(p, Box):
                box = p.xyxy
            elif isinstance(p, MaskPrompt):
                if mask is not None:
                    raise PromptError("one prompt set takes at most one mask prompt")
                mask = _mask_prompt(p, size)
            else:
                kinds = ", ".join(self.card.prompt_kinds)
                raise PromptError(f"{self.card.id!r} takes {kinds} prompts, not {p.kind!r}")
        return grabcut.Seeds(tuple(positives), tuple(negatives), box, mask)

    def _predict(self, features: Features, seeds: grabcut.Seeds, multimask: bool) -> Masks:
        found = grabcut.candidates(
            features.image, seeds, features.whole,
            max_side=self.options.max_side, iterations=self.options.iterations, seed=self.options.seed,
        )
        if not multimask:
            found = [max(found, key=lambda c: c.score)]
        return Masks(np.stack([c.mask for c in found]), scores=np.array([c.score for c in found]))

    # ------------------------------------------------------------------ segmenter

    def segment(self, image: ImageInput, task: str | None = None) -> Segmentation:
        """Automatic masks, one per region, largest first; ``label_map`` i is ``masks[i - 1]``."""
        task = task or "automatic"
        if task != "automatic":
            raise TaskError(f"{self.card.id!r} segments with task 'automatic' only, not {task!r}")
        rgb = load_image(image)
        o = self.options
        label_map, scores = regions.find_regions(
            rgb, max_side=o.max_side, scale=o.region_scale, sigma=o.region_sigma,
            min_region=o.min_region, max_regions=o.max_regions,
        )
        ids = np.arange(1, scores.size + 1, dtype=np.int32)
        masks = Masks(label_map[None] == ids[:, None, None], scores=scores)
        return Segmentation(kind="automatic", image_size=rgb.shape[:2], masks=masks, label_map=label_map)


def _mask_prompt(prompt: MaskPrompt, size: tuple[int, int]) -> np.ndarray:
    """A mask prompt as a bool (H, W) mask; logits of any size are stretched and cut at 0."""
    if not prompt.is_logits:
        return prompt.mask
    logits = np.asarray(prompt.mask, dtype=np.float32)
    if logits.shape != size:
        logits = cv2.resize(logits, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return logits > 0
