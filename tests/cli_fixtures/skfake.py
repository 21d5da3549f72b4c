"""A tiny deterministic plugin for CLI tests, installed through a dist-info on PYTHONPATH.

Prompter ``fake-prompter``: a box prompt gives exactly the box's pixels; clicks give disks
of radius 20 (positive add, negative remove). ``fake-buggy`` raises ZeroDivisionError.
Segmenter ``fake-semantic``: class 0/1/2 by grey level (< 85, < 170, else), labelled dark/mid/bright. No torch.
"""

from __future__ import annotations

import numpy as np
import segmentkit as sk
from segmentkit.io.image import image_key, load_image
from segmentkit.types import Box, Masks, Point, Segmentation, validate_prompts

PROMPTER = sk.ModelCard(
    id="fake-prompter", family="fake", roles=("prompter",), tasks=("prompt",),
    prompt_kinds=("point", "box"), license="MIT", runtimes=("numpy",),
)
SEGMENTER = sk.ModelCard(
    id="fake-semantic", family="fake", roles=("segmenter",), tasks=("semantic",),
    labels=("dark", "mid", "bright"), license="MIT", runtimes=("numpy",),
    weights=sk.WeightsSource(repo_id="nobody/fake-semantic", revision="0" * 40),
)


BUGGY = sk.ModelCard(
    id="fake-buggy", family="fake", roles=("prompter",), tasks=("prompt",), prompt_kinds=("point",),
    license="MIT", runtimes=("numpy",),
)


@sk.hookimpl
def segmentkit_prompters():
    return [sk.ModelSpec(card=PROMPTER, role="prompter", loader="skfake:FakePrompter"),
            sk.ModelSpec(card=BUGGY, role="prompter", loader="skfake:BuggyPrompter")]


@sk.hookimpl
def segmentkit_segmenters():
    return [sk.ModelSpec(card=SEGMENTER, role="segmenter", loader="skfake:FakeSegmenter")]


class FakePrompter:
    def __init__(self, card, options):
        self.card, self.options = card, options

    def embed(self, image):
        rgb = load_image(image)
        return sk.Embedding(self.card.id, rgb.shape[:2], image_key(rgb), rgb)

    def predict(self, embedding, prompts, *, multimask=False):
        h, w = embedding.image_size
        prompts = validate_prompts(prompts, (h, w))
        yy, xx = np.mgrid[:h, :w]
        radii = (10, 20, 30) if multimask else (20,)
        masks = []
        for r in radii:
            m = np.zeros((h, w), bool)
            for p in prompts:
                if isinstance(p, Box):
                    m[int(p.y0):int(p.y1), int(p.x0):int(p.x1)] = True
            for p in prompts:
                if isinstance(p, Point):
                    disk = (xx - p.x) ** 2 + (yy - p.y) ** 2 <= r * r
                    m = (m | disk) if p.positive else (m & ~disk)
            masks.append(m)
        n = len(masks)
        return Masks(np.stack(masks), scores=np.linspace(0.9, 0.7, n),
                     data={"iou_pred": np.linspace(0.8, 0.6, n), "stability": np.full(n, 0.5)})

    def predict_batch(self, embedding, prompt_sets, *, multimask=False):
        return [self.predict(embedding, s, multimask=multimask) for s in prompt_sets]


class BuggyPrompter(FakePrompter):
    """Fails like a bug would: an exception that is not a SegmentkitError."""

    def predict(self, embedding, prompts, *, multimask=False):
        return 1 / 0


class FakeSegmenter:
    def __init__(self, card, options):
        self.card, self.options = card, options

    def segment(self, image, *, task=None):
        grey = load_image(image).mean(axis=2)
        label_map = np.digitize(grey, [85, 170]).astype(np.int32)
        return Segmentation.from_label_map(label_map, dict(enumerate(self.card.labels)))
