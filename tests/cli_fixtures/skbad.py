"""A plugin that breaks the contract on purpose, one way per model (distribution ``skbad``).

``bad-half`` answers half-size masks, ``bad-transposed`` (W, H) masks, ``bad-nonbool``
uint8 masks and ``bad-nanbox`` NaN boxes; each model is a prompter, a segmenter and a
tracker. Everything else it does is right, so only the core's output checks stand
between it and a host.
"""

from __future__ import annotations

import itertools

import numpy as np
import segmentkit as sk
from segmentkit.io.image import image_key
from segmentkit.types import FrameMasks, Masks, Segmentation

FLAWS = ("half", "transposed", "nonbool", "nanbox")
_ids = itertools.count(1)


def _card(flaw: str) -> sk.ModelCard:
    return sk.ModelCard(id=f"bad-{flaw}", family="bad", roles=("prompter", "segmenter", "tracker"),
                        tasks=("instance", "prompt", "track"), prompt_kinds=("point", "box"), license="MIT",
                        runtimes=("numpy",))


@sk.hookimpl
def segmentkit_prompters():
    return [sk.ModelSpec(card=_card(f), role="prompter", loader="skbad:Bad") for f in FLAWS]


@sk.hookimpl
def segmentkit_segmenters():
    return [sk.ModelSpec(card=_card(f), role="segmenter", loader="skbad:Bad") for f in FLAWS]


@sk.hookimpl
def segmentkit_trackers():
    return [sk.ModelSpec(card=_card(f), role="tracker", loader="skbad:Bad") for f in FLAWS]


def flawed(flaw: str, size: tuple[int, int], object_ids: list[int] | None = None) -> Masks:
    """One square mask at ``size`` (H, W), broken the model's way."""
    h, w = size
    good = np.zeros((1, h, w), bool)
    good[:, h // 4: h // 2, w // 4: w // 2] = True
    ids = object_ids
    if flaw == "half":
        return Masks(good[:, ::2, ::2], object_ids=ids)
    if flaw == "transposed":
        return Masks(good.transpose(0, 2, 1).copy(), object_ids=ids)
    if flaw == "nonbool":
        masks = Masks(good, object_ids=ids)
        masks.masks = good.astype(np.uint8)  # what a plugin that skips the constructor leaves
        return masks
    return Masks(good, boxes=[[np.nan, 0, 1, 1]], object_ids=ids)


class Bad:
    """Prompter, segmenter and tracker in one class, each answer broken by the card's flaw."""

    def __init__(self, card: sk.ModelCard, options: sk.ModelOptions):
        self.card = card
        self.options = options
        self.flaw = card.id.removeprefix("bad-")

    def embed(self, image):
        return sk.Embedding(self.card.id, image.shape[:2], image_key(image))

    def predict(self, embedding, prompts, *, multimask=False):
        return flawed(self.flaw, embedding.image_size)

    def segment(self, image, *, task=None):
        masks = flawed(self.flaw, image.shape[:2])
        return Segmentation(kind="instance", image_size=masks.masks.shape[1:], masks=masks)

    def start(self, source=None, *, stream=False):
        return BadSession(self.flaw, source)


class BadSession:
    def __init__(self, flaw: str, source):
        from segmentkit.io.video import open_video

        self.flaw = flaw
        self.id = f"bad-{next(_ids)}"
        self.frames = source if hasattr(source, "frame_size") else open_video(source)
        self.objects: list[int] = []

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    @property
    def frame_size(self):
        return self.frames.frame_size

    def _frame(self, index: int) -> FrameMasks:
        return FrameMasks(index, flawed(self.flaw, self.frame_size, self.objects[:1]))

    def add_prompts(self, frame, object_id, prompts):
        self.objects.append(object_id)
        return self._frame(frame)

    def propagate(self, start=None, *, direction="forward", max_frames=None):
        for index in range(start or 0, self.num_frames):
            yield self._frame(index)

    def push_frame(self, image):
        raise NotImplementedError

    def remove_object(self, object_id):
        self.objects.remove(object_id)

    def reset(self):
        self.objects.clear()

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
