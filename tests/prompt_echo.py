"""A plugin whose masks spell out their prompts: what the prompt-face tests compare.

``echo`` (prompter and tracker, no weights) paints every box of an object's prompt set,
adds a 5x5 square at each positive click and clears one at each negative click; its
score counts the prompts and the text's characters. Two faces that hand it different
objects (grouped differently, a box dropped, a click flipped) get different masks.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from segmentkit import ModelCard, ModelOptions, ModelSpec, hookimpl
from segmentkit.roles import Embedding
from segmentkit.session_files import restore_session
from segmentkit.sessions import TrackingSession
from segmentkit.types import Box, FrameMasks, Masks, Point, Text

CARD = ModelCard(
    id="echo", family="echo", roles=("prompter", "tracker"), tasks=("prompt", "track"),
    prompt_kinds=("point", "box", "text"), description="Masks that spell out their prompts (tests).",
    license="Apache-2.0", runtimes=("numpy",),
)
LOADER = f"{__name__}:Echo"
PLUGIN = sys.modules[__name__]  # for hosts that take "module:attr" (a batch's plugins=)


@hookimpl
def segmentkit_prompters() -> list[ModelSpec]:
    return [ModelSpec(card=CARD, role="prompter", loader=LOADER)]


@hookimpl
def segmentkit_trackers() -> list[ModelSpec]:
    return [ModelSpec(card=CARD, role="tracker", loader=LOADER)]


def echo(size: tuple[int, int], prompts: Sequence[Any]) -> tuple[np.ndarray, float]:
    """The mask and score of one object's prompts."""
    mask = np.zeros(size, dtype=bool)
    for p in prompts:
        if isinstance(p, Box):
            mask[int(p.y0):int(p.y1), int(p.x0):int(p.x1)] = True
    for p in prompts:
        if isinstance(p, Point):
            x, y = int(p.x), int(p.y)
            mask[max(0, y - 2):y + 3, max(0, x - 2):x + 3] = p.positive
    text = sum(len(p.text) for p in prompts if isinstance(p, Text))
    return mask, (len(prompts) + text / 100) / 100


class Echo:
    def __init__(self, card: ModelCard, options: ModelOptions):
        self.card = card

    def embed(self, image: Any) -> Embedding:
        return Embedding(self.card.id, image.shape[:2], "echo", None)

    def predict(self, embedding: Embedding, prompts: Sequence[Any], *, multimask: bool = False) -> Masks:
        mask, score = echo(tuple(embedding.image_size), prompts)
        return Masks(mask[None], scores=[score])

    def start(self, source: Any = None, *, stream: bool = False) -> EchoSession:
        from segmentkit.io.video import open_video

        return EchoSession(open_video(source))

    def restore(self, path: Any, source: Any = None) -> EchoSession:
        return restore_session(self, path, source)


class EchoSession(TrackingSession):
    """Every frame shows each object's echo mask (the objects never move)."""

    def __init__(self, frames: Any):
        super().__init__(frames, model_id=CARD.id)
        self.sets: dict[int, list[Any]] = {}

    def _masks(self, index: int) -> FrameMasks:
        ids = self.object_ids
        masks = [echo(self.frame_size, self.sets[i]) for i in ids]
        stack = np.stack([m for m, _ in masks]) if masks else np.zeros((0, *self.frame_size), dtype=bool)
        ids_array = np.array(ids, dtype=np.int64)
        return FrameMasks(index, Masks(stack, scores=[s for _, s in masks], object_ids=ids_array))

    def _prompt(self, frame: int, index: int, prompts: Any) -> FrameMasks:
        self.sets[self.objects.id_of(index)] = list(prompts)
        return self._masks(frame)

    def _track(self, frame: int, reverse: bool) -> FrameMasks:
        return self._masks(frame)

    def _remove(self, object_id: int, index: int) -> None:
        del self.sets[object_id]

    def _clear(self) -> None:
        self.sets.clear()

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {}

    def _load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.sets = {o: list(p) for _, o, p in self.prompts}
