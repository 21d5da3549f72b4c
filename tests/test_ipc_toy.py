"""A tiny real model plugin for the IPC tests: colour thresholds, no weights.

``toy-color`` is a prompter (the pixels within ``TOLERANCE`` of the colour under a
click / inside a box centre), a semantic segmenter (nearest of three palette colours)
and a tracker (each object keeps the colour it was prompted with and is found again
on every frame). Its answers are easy to compute by hand, which is what the IPC tests
compare against. The server loads it with ``segmentkit serve --plugin test_ipc_toy``
(this folder on ``PYTHONPATH``); ``TOY_LOAD_LOG`` names a file that gets one line per
model load, ``TOY_DELAY_S`` slows propagation down so it can be cancelled and
``TOY_CHATTY`` makes loading print to stdout.

The tests at the bottom check the toy itself against the synthetic scenes' true masks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from segmentkit import ModelCard, ModelOptions, ModelSpec, hookimpl
from segmentkit.errors import PromptError, SessionError
from segmentkit.roles import Embedding
from segmentkit.session_files import restore_session
from segmentkit.sessions import TrackingSession
from segmentkit.types import Box, FrameMasks, MaskPrompt, Masks, Point, Segmentation

TOLERANCE = 40.0
PALETTE = np.array([[205, 45, 50], [95, 150, 105], [60, 120, 150]], dtype=np.float64)
LABELS = {0: "red", 1: "green", 2: "blue"}

CARD = ModelCard(
    id="toy-color", aliases=("toy",), family="toy", roles=("prompter", "segmenter", "tracker"),
    tasks=("prompt", "semantic", "track"), prompt_kinds=("point", "box", "mask"),
    labels=tuple(LABELS.values()), description="Colour thresholds (IPC test plugin).", license="Apache-2.0",
    runtimes=("numpy",),
)
LOADER = f"{__name__}:Toy"


@hookimpl
def segmentkit_prompters() -> list[ModelSpec]:
    return [ModelSpec(card=CARD, role="prompter", loader=LOADER)]


@hookimpl
def segmentkit_segmenters() -> list[ModelSpec]:
    return [ModelSpec(card=CARD, role="segmenter", loader=LOADER)]


@hookimpl
def segmentkit_trackers() -> list[ModelSpec]:
    return [ModelSpec(card=CARD, role="tracker", loader=LOADER)]


def color_mask(image: np.ndarray, color: np.ndarray, tolerance: float = TOLERANCE) -> np.ndarray:
    """Pixels within ``tolerance`` (Euclidean, RGB) of ``color``."""
    return np.linalg.norm(image.astype(np.float64) - color, axis=2) <= tolerance


def prompt_color(image: np.ndarray, prompts: Sequence[Any]) -> np.ndarray:
    """The colour an object was prompted with: under the first positive click, the box centre or the mask."""
    for p in prompts:
        if isinstance(p, Point) and p.positive:
            x = min(int(p.x), image.shape[1] - 1)
            y = min(int(p.y), image.shape[0] - 1)
            return image[y, x].astype(np.float64)
        if isinstance(p, Box):
            x, y = int((p.x0 + p.x1) / 2), int((p.y0 + p.y1) / 2)
            return image[y, x].astype(np.float64)
        if isinstance(p, MaskPrompt) and not p.is_logits and p.mask.any():
            return image[p.mask].mean(axis=0)
    raise PromptError("toy-color needs a positive point, a box or a mask")


class Toy:
    """Loader class of every role (the registry calls ``Toy(card, options)``)."""

    def __init__(self, card: ModelCard, options: ModelOptions):
        self.card = card
        self.options = options
        if os.environ.get("TOY_CHATTY"):
            print("toy-color: a plugin that prints to stdout")  # must not break the stdio protocol
        log = os.environ.get("TOY_LOAD_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(f"{os.getpid()} {card.id}\n")

    def segment(self, image: Any, *, task: str | None = None) -> Segmentation:
        from segmentkit.io import load_image

        if task not in (None, "semantic"):
            from segmentkit.errors import TaskError

            raise TaskError(f"toy-color does only semantic segmentation, not {task!r}")
        pixels = load_image(image).astype(np.float64)
        distances = np.linalg.norm(pixels[:, :, None, :] - PALETTE[None, None], axis=3)
        return Segmentation.from_label_map(distances.argmin(axis=2), LABELS)

    def embed(self, image: Any) -> Embedding:
        from segmentkit.io import image_key, load_image

        pixels = load_image(image)
        return Embedding(self.card.id, pixels.shape[:2], image_key(pixels), pixels)

    def predict(self, embedding: Embedding, prompts: Sequence[Any], *, multimask: bool = False) -> Masks:
        image = embedding.data
        color = prompt_color(image, prompts)
        tolerances = (TOLERANCE / 2, TOLERANCE, TOLERANCE * 2) if multimask else (TOLERANCE,)
        masks = np.stack([color_mask(image, color, t) for t in tolerances])
        return Masks(masks, scores=np.linspace(0.9, 0.7, len(tolerances)))

    def predict_batch(self, embedding: Embedding, prompt_sets: Sequence[Sequence[Any]], *,
                      multimask: bool = False) -> list[Masks]:
        return [self.predict(embedding, p, multimask=multimask) for p in prompt_sets]

    def start(self, source: Any = None, *, stream: bool = False) -> ToySession:
        from segmentkit.io.video import FrameStream, open_video

        if stream == (source is not None):
            raise SessionError("give a source or stream=True")
        return ToySession(FrameStream() if stream else open_video(source))

    def restore(self, path: Any, source: Any = None) -> ToySession:
        return restore_session(self, path, source)


class ToySession(TrackingSession):
    """Objects keep their prompt colour; every frame is thresholded on each colour."""

    def __init__(self, frames: Any):
        super().__init__(frames, model_id=CARD.id)
        self.colors: dict[int, np.ndarray] = {}

    def _masks(self, index: int) -> FrameMasks:
        image = np.asarray(self.frames[index])
        ids = self.object_ids
        stack = np.stack([color_mask(image, self.colors[i]) for i in ids]) if ids else \
            np.zeros((0, *image.shape[:2]), dtype=bool)
        return FrameMasks(index, Masks(stack, object_ids=np.array(ids, dtype=np.int64)))

    def _prompt(self, frame: int, index: int, prompts: Any) -> FrameMasks:
        self.colors[self.objects.id_of(index)] = prompt_color(np.asarray(self.frames[frame]), prompts)
        return self._masks(frame)

    def _track(self, frame: int, reverse: bool) -> FrameMasks:
        time.sleep(float(os.environ.get("TOY_DELAY_S", "0")))
        return self._masks(frame)

    def _remove(self, object_id: int, index: int) -> None:
        del self.colors[object_id]

    def _clear(self) -> None:
        self.colors.clear()

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"colors": {str(k): v.tolist() for k, v in self.colors.items()}}, {}

    def _load_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.colors = {int(k): np.asarray(v) for k, v in meta["colors"].items()}


# --------------------------------------------------------------------------- the toy's own checks


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_toy_prompter_finds_the_scene_object() -> None:
    from segmentkit.testing.scenes import synthetic_scene

    scene = synthetic_scene((48, 64), seed=1)
    toy = Toy(CARD, ModelOptions())
    masks = toy.predict(toy.embed(scene.image), [Point(*scene.inside)])
    assert _iou(masks.masks[0], scene.mask) > 0.95


def test_toy_tracker_follows_a_moving_object(tmp_path: Any) -> None:
    from PIL import Image
    from segmentkit.testing.scenes import synthetic_frames

    scenes = synthetic_frames(4, (48, 64), step=3.0)
    for i, scene in enumerate(scenes):
        Image.fromarray(scene.image).save(tmp_path / f"{i:03d}.png")
    with Toy(CARD, ModelOptions()).start(str(tmp_path)) as session:
        session.add_prompts(0, 7, [Point(*scenes[0].inside)])
        frames = list(session.propagate())
    assert [f.frame_index for f in frames] == [0, 1, 2, 3]
    for frame, scene in zip(frames, scenes):
        assert frame.object_ids == [7]
        assert _iou(frame.masks.masks[0], scene.mask) > 0.95
