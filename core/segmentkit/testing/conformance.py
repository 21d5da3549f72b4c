"""The contract every segmentkit model keeps, as pytest classes a plugin's tests subclass.

Subclass the contract of each role your model plays and override the ``model``
fixture (a loaded model; class scope keeps the suite fast)::

    import pytest
    import segmentkit
    from segmentkit.testing.conformance import PrompterContract

    class TestMyPrompter(PrompterContract):
        @pytest.fixture(scope="class")
        def model(self):
            return segmentkit.load("my-model", role="prompter")

Class attributes tune the checks (``image_size``, ``task``, ``tiny_sizes``, ...); see
each contract. The checks use small synthetic images, so they run in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
from PIL import Image

from ..cards import ModelCard, ModelOptions, Task
from ..errors import ImageError, PromptError, SegmentkitError, SessionError, TaskError
from ..roles import ROLE_PROTOCOLS, Embedding, TrackingSession
from ..types import Box, FrameMasks, MaskPrompt, Masks, Point, Segmentation, Text
from .scenes import Scene, synthetic_frames, synthetic_scene

__all__ = [
    "INPUT_KINDS", "PrompterContract", "ROLE_TASKS", "SegmenterContract", "TrackerContract",
    "as_input", "check_frame_masks", "check_masks", "check_segmentation",
]

INPUT_KINDS = ("path", "bytes", "pil", "array", "gray", "rgba")
SAME_PIXELS = ("path", "bytes", "pil", "array")  # decode to identical RGB arrays
ROLE_TASKS: dict[str, frozenset[str]] = {
    "segmenter": frozenset({"semantic", "instance", "panoptic", "automatic"}),
    "prompter": frozenset({"prompt"}),
    "tracker": frozenset({"track"}),
    "grounder": frozenset({"ground"}),
}


# --------------------------------------------------------------------------- checks


def as_input(image: np.ndarray, kind: str, tmp_path: Path) -> Any:
    """``image`` (H, W, 3) uint8 as one of :data:`INPUT_KINDS` (gray / rgba change the pixels)."""
    if kind == "array":
        return image.copy()
    if kind == "pil":
        return Image.fromarray(image)
    if kind == "gray":
        return np.asarray(Image.fromarray(image).convert("L"))
    if kind == "rgba":
        alpha = np.full(image.shape[:2] + (1,), 255, dtype=np.uint8)
        alpha[: image.shape[0] // 2, : image.shape[1] // 2] = 128
        return np.concatenate([image, alpha], axis=2)
    path = tmp_path / "input.png"
    Image.fromarray(image).save(path)
    if kind == "path":
        return str(path)
    if kind == "bytes":
        return path.read_bytes()
    raise ValueError(f"unknown input kind {kind!r}; expected one of {INPUT_KINDS}")


def check_masks(masks: Any, size: tuple[int, int], count: int | None = None) -> Masks:
    """Assert ``masks`` is a well-formed :class:`Masks` for an image of ``size`` = (H, W)."""
    assert isinstance(masks, Masks), f"expected segmentkit.Masks, got {type(masks).__name__}"
    h, w = size
    n = len(masks)
    if count is not None:
        assert n == count, f"expected {count} masks, got {n}"
    assert masks.masks.dtype == bool, f"masks must be bool, got {masks.masks.dtype}"
    assert masks.masks.shape == (n, h, w), f"masks must be {(n, h, w)} (input size), got {masks.masks.shape}"
    assert masks.scores is not None and masks.scores.shape == (n,)
    assert np.issubdtype(masks.scores.dtype, np.floating), f"scores must be float, got {masks.scores.dtype}"
    assert np.all(np.isfinite(masks.scores)), f"scores must be finite, got {masks.scores}"
    boxes = masks.boxes
    assert boxes is not None and boxes.shape == (n, 4) and np.all(np.isfinite(boxes))
    assert np.all(boxes[:, 0] >= 0) and np.all(boxes[:, 1] >= 0), f"boxes leave the image: {boxes}"
    assert np.all(boxes[:, 2] <= w) and np.all(boxes[:, 3] <= h), f"boxes leave the {w}x{h} image: {boxes}"
    assert np.all(boxes[:, 2] >= boxes[:, 0]) and np.all(boxes[:, 3] >= boxes[:, 1]), f"boxes not XYXY: {boxes}"
    return masks


def check_segmentation(seg: Any, size: tuple[int, int], task: str | None = None) -> Segmentation:
    """Assert ``seg`` is a well-formed :class:`Segmentation` of an image of ``size``."""
    assert isinstance(seg, Segmentation), f"expected segmentkit.Segmentation, got {type(seg).__name__}"
    assert seg.image_size == tuple(size), f"image_size {seg.image_size} != input {tuple(size)}"
    if task is not None:
        assert seg.kind == task, f"asked for task {task!r}, got a {seg.kind!r} segmentation"
    check_masks(seg.masks, size)
    if seg.kind == "semantic":
        assert seg.label_map is not None, "a semantic segmentation needs a label_map"
    if seg.label_map is not None:
        assert seg.label_map.shape == tuple(size), f"label_map {seg.label_map.shape} != input {tuple(size)}"
        assert np.issubdtype(seg.label_map.dtype, np.integer), f"label_map dtype {seg.label_map.dtype}"
    return seg


def check_frame_masks(
    fm: Any, size: tuple[int, int], frame_index: int | None = None, object_ids: set[int] | None = None
) -> FrameMasks:
    """Assert ``fm`` is a :class:`FrameMasks` with masks of ``size`` for ``object_ids``."""
    assert isinstance(fm, FrameMasks), f"expected segmentkit.FrameMasks, got {type(fm).__name__}"
    if frame_index is not None:
        assert fm.frame_index == frame_index, f"expected frame {frame_index}, got {fm.frame_index}"
    check_masks(fm.masks, size)
    if len(fm.masks):
        assert fm.masks.object_ids is not None, "FrameMasks.masks.object_ids must be set"
    if object_ids is not None:
        assert set(fm.object_ids) == set(object_ids), f"objects {fm.object_ids}, expected {sorted(object_ids)}"
        assert len(fm.object_ids) == len(set(fm.object_ids)), f"object ids repeat: {fm.object_ids}"
    return fm


def _noise_image(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def _unsupported_task(card: ModelCard) -> str:
    return next((t for t in get_args(Task) if t not in card.tasks), "no-such-task")


# --------------------------------------------------------------------------- contracts


class ModelContract:
    """Checks every loaded model passes, whatever its role."""

    role: str = ""
    #: (H, W) of the synthetic test image.
    image_size: tuple[int, int] = (48, 64)
    #: Sizes that must give a valid result or a clear SegmentkitError (never a raw error).
    tiny_sizes: tuple[tuple[int, int], ...] = ((1, 1), (2, 2))
    #: Sizes that must give a valid result.
    extreme_sizes: tuple[tuple[int, int], ...] = ((10, 2000), (2000, 10))

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        # pytest calls this on an instance of the collected subclass, so its attributes count.
        for name, sizes in (("tiny_size", self.tiny_sizes), ("extreme_size", self.extreme_sizes)):
            if name in metafunc.fixturenames:
                metafunc.parametrize(name, sizes, ids=[f"{h}x{w}" for h, w in sizes])

    @pytest.fixture
    def model(self) -> Any:
        pytest.fail(f"{type(self).__name__} must override the `model` fixture to return a loaded model")

    @pytest.fixture
    def scene(self) -> Scene:
        return synthetic_scene(self.image_size, seed=0)

    def test_card_is_valid(self, model: Any) -> None:
        card = model.card
        assert isinstance(card, ModelCard), f"model.card is {type(card).__name__}, not ModelCard"
        assert ModelCard.model_validate(card.model_dump()) == card
        assert self.role in card.roles, f"role {self.role!r} not in card.roles {card.roles}"
        assert ROLE_TASKS[self.role] & set(card.tasks), (
            f"a {self.role} card needs one of the tasks {sorted(ROLE_TASKS[self.role])}, has {card.tasks}"
        )
        served = set().union(*(ROLE_TASKS[r] for r in card.roles))
        stray = [t for t in card.tasks if t not in served]
        assert not stray, f"tasks {stray} are done by none of the card's roles {card.roles}"
        task = getattr(self, "task", None)
        assert task is None or task in card.tasks, f"contract task {task!r} not in card.tasks {card.tasks}"
        assert isinstance(model.options, ModelOptions), "model.options must be a segmentkit.ModelOptions"

    def test_implements_role_protocol(self, model: Any) -> None:
        protocol = ROLE_PROTOCOLS[self.role]
        assert isinstance(model, protocol), f"{type(model).__name__} does not implement {protocol.__name__}"


class SegmenterContract(ModelContract):
    """A :class:`segmentkit.roles.Segmenter`: ``segment(image, task=...) -> Segmentation``."""

    role = "segmenter"
    #: Task passed to ``segment``; None uses the model's default.
    task: str | None = None

    def segment(self, model: Any, image: Any) -> Any:
        return model.segment(image) if self.task is None else model.segment(image, task=self.task)

    @pytest.mark.parametrize("kind", INPUT_KINDS)
    def test_accepts_every_input_kind(self, model: Any, scene: Scene, kind: str, tmp_path: Path) -> None:
        seg = self.segment(model, as_input(scene.image, kind, tmp_path))
        check_segmentation(seg, scene.size, self.task)

    def test_same_pixels_same_result(self, model: Any, scene: Scene, tmp_path: Path) -> None:
        results = [self.segment(model, as_input(scene.image, k, tmp_path)) for k in SAME_PIXELS]
        first = results[0]
        for kind, seg in zip(SAME_PIXELS[1:], results[1:]):
            assert np.array_equal(seg.masks.masks, first.masks.masks), f"{kind} input gave other masks"
            assert np.array_equal(seg.masks.scores, first.masks.scores), f"{kind} input gave other scores"
            if first.label_map is not None:
                assert np.array_equal(seg.label_map, first.label_map), f"{kind} input gave another label map"

    def test_unsupported_task_raises(self, model: Any, scene: Scene) -> None:
        for task in (_unsupported_task(model.card), "no-such-task"):
            with pytest.raises(TaskError):
                model.segment(scene.image, task=task)

    def test_bad_image_raises(self, model: Any) -> None:
        with pytest.raises(ImageError):
            self.segment(model, b"this is not an image")

    def test_tiny_image(self, model: Any, tiny_size: tuple[int, int]) -> None:
        size = tiny_size
        try:
            seg = self.segment(model, _noise_image(size))
        except SegmentkitError:
            return  # a clear refusal is fine; a raw numpy / torch error is not
        check_segmentation(seg, size, self.task)

    def test_extreme_aspect_ratio(self, model: Any, extreme_size: tuple[int, int]) -> None:
        size = extreme_size
        check_segmentation(self.segment(model, synthetic_scene(size).image), size, self.task)

    def test_deterministic(self, model: Any, scene: Scene) -> None:
        a, b = self.segment(model, scene.image), self.segment(model, scene.image)
        assert np.array_equal(a.masks.masks, b.masks.masks)
        assert np.array_equal(a.masks.scores, b.masks.scores)


class PrompterContract(ModelContract):
    """A :class:`segmentkit.roles.Prompter`: ``embed`` once, ``predict`` many times."""

    role = "prompter"
    #: How many masks ``multimask=True`` returns.
    multimask_count: int = 3
    #: Lowest IoU between a ``predict_batch`` mask and the same prompt's ``predict`` mask.
    batch_iou: float = 0.99
    #: Text used for models that take text prompts.
    text: str = "a red ellipse"

    def prompt_for(self, kind: str, scene: Scene) -> list[Any]:
        """A prompt set of ``kind`` that describes the scene's object."""
        if kind == "point":
            return [Point(*scene.inside)]
        if kind == "box":
            return [Box(*scene.box)]
        if kind == "mask":
            return [MaskPrompt(scene.mask)]
        return [Text(self.text)]

    def any_prompt(self, model: Any, scene: Scene) -> list[Any]:
        return self.prompt_for(model.card.prompt_kinds[0], scene)

    @pytest.mark.parametrize("kind", INPUT_KINDS)
    def test_embed_accepts_every_input_kind(self, model: Any, scene: Scene, kind: str, tmp_path: Path) -> None:
        emb = model.embed(as_input(scene.image, kind, tmp_path))
        assert isinstance(emb, Embedding), f"embed returned {type(emb).__name__}, not Embedding"
        assert emb.image_size == scene.size, f"embedding image_size {emb.image_size} != {scene.size}"
        assert emb.model_id == model.card.id
        assert isinstance(emb.key, str) and emb.key
        check_masks(model.predict(emb, self.any_prompt(model, scene)), scene.size, 1)

    def test_same_pixels_same_embedding_key(self, model: Any, scene: Scene, tmp_path: Path) -> None:
        keys = {k: model.embed(as_input(scene.image, k, tmp_path)).key for k in SAME_PIXELS}
        assert len(set(keys.values())) == 1, f"same pixels, different keys: {keys}"
        other = model.embed(synthetic_scene(self.image_size, seed=1).image).key
        assert other != keys["array"], "different images share an embedding key"

    @pytest.mark.parametrize("kind", ["point", "box", "mask", "text"])
    def test_each_prompt_kind(self, model: Any, scene: Scene, kind: str) -> None:
        emb = model.embed(scene.image)
        prompts = self.prompt_for(kind, scene)
        if kind not in model.card.prompt_kinds:
            with pytest.raises(PromptError):
                model.predict(emb, prompts)
            return
        check_masks(model.predict(emb, prompts), scene.size, 1)

    def test_multimask(self, model: Any, scene: Scene) -> None:
        emb = model.embed(scene.image)
        check_masks(model.predict(emb, self.any_prompt(model, scene), multimask=True), scene.size, self.multimask_count)

    def test_predict_batch_matches_predict(self, model: Any, scene: Scene) -> None:
        emb = model.embed(scene.image)
        sets = [self.prompt_for(k, scene) for k in model.card.prompt_kinds[:2]]
        if len(sets) == 1 and "point" in model.card.prompt_kinds:
            sets.append([Point(*scene.outside)])
        batch = model.predict_batch(emb, sets)
        assert isinstance(batch, list) and len(batch) == len(sets)
        for prompts, masks in zip(sets, batch):
            check_masks(masks, scene.size, 1)
            single = model.predict(emb, prompts).masks[0]
            inter = np.logical_and(single, masks.masks[0]).sum()
            union = np.logical_or(single, masks.masks[0]).sum()
            assert union == 0 or inter / union >= self.batch_iou, f"batch and single masks differ: {prompts}"

    @pytest.mark.parametrize(
        "case", ["point-outside", "point-nan", "box-outside", "mask-wrong-shape", "empty", "empty-set-in-batch"]
    )
    def test_invalid_prompts_raise(self, model: Any, scene: Scene, case: str) -> None:
        h, w = scene.size
        emb = model.embed(scene.image)
        bad: dict[str, list[Any]] = {
            "point-outside": [Point(w + 5, h / 2)],
            "point-nan": [Point.model_construct(x=math.nan, y=1.0, positive=True)],
            "box-outside": [Box(-10, 0, w / 2, h / 2)],
            "mask-wrong-shape": [MaskPrompt(np.ones((h + 1, w), dtype=bool))],
            "empty": [],
        }
        with pytest.raises(PromptError):
            if case == "empty-set-in-batch":
                model.predict_batch(emb, [self.any_prompt(model, scene), []])
            else:
                model.predict(emb, bad[case])

    def test_foreign_embedding_raises(self, model: Any, scene: Scene) -> None:
        alien = Embedding(model_id="not-this-model", image_size=scene.size, key="0" * 32, data=None)
        with pytest.raises(SegmentkitError):
            model.predict(alien, self.any_prompt(model, scene))

    def test_bad_image_raises(self, model: Any) -> None:
        with pytest.raises(ImageError):
            model.embed(b"this is not an image")

    def test_tiny_image(self, model: Any, tiny_size: tuple[int, int]) -> None:
        h, w = size = tiny_size
        prompts = {"point": [Point(w / 2, h / 2)], "box": [Box(0, 0, w, h)],
                   "mask": [MaskPrompt(np.ones(size, dtype=bool))], "text": [Text(self.text)]}
        try:
            emb = model.embed(_noise_image(size))
            masks = model.predict(emb, prompts[model.card.prompt_kinds[0]])
        except SegmentkitError:
            return  # a clear refusal is fine; a raw numpy / torch error is not
        check_masks(masks, size, 1)

    def test_extreme_aspect_ratio(self, model: Any, extreme_size: tuple[int, int]) -> None:
        scene = synthetic_scene(extreme_size)
        emb = model.embed(scene.image)
        check_masks(model.predict(emb, self.any_prompt(model, scene)), scene.size, 1)

    def test_deterministic(self, model: Any, scene: Scene) -> None:
        a, b = model.embed(scene.image), model.embed(scene.image.copy())
        assert a.key == b.key
        prompts = self.any_prompt(model, scene)
        ma, mb = model.predict(a, prompts, multimask=True), model.predict(b, prompts, multimask=True)
        assert np.array_equal(ma.masks, mb.masks) and np.array_equal(ma.scores, mb.scores)


class TrackerContract(ModelContract):
    """A :class:`segmentkit.roles.Tracker`: sessions over frames, prompts, propagation."""

    role = "tracker"
    frame_count: int = 4
    #: Whether ``start(stream=True)`` + ``push_frame`` is supported.
    supports_stream: bool = True

    @pytest.fixture
    def frames(self) -> list[Scene]:
        return synthetic_frames(self.frame_count, self.image_size)

    def start(self, model: Any, frames: list[Scene]) -> Any:
        return model.start([f.image for f in frames])

    def test_session_over_frames(self, model: Any, frames: list[Scene]) -> None:
        size, n = frames[0].size, len(frames)
        with self.start(model, frames) as session:
            assert isinstance(session, TrackingSession), f"{type(session).__name__} is not a TrackingSession"
            assert isinstance(session.id, str) and session.id
            assert session.num_frames == n
            assert session.frame_size == size
            first = session.add_prompts(0, 7, [Box(*frames[0].box)])
            check_frame_masks(first, size, 0, {7})
            seen = list(session.propagate())
        assert [fm.frame_index for fm in seen] == list(range(n))
        for fm in seen:
            check_frame_masks(fm, size, object_ids={7})

    def test_propagate_reverse_and_max_frames(self, model: Any, frames: list[Scene]) -> None:
        n = len(frames)
        with self.start(model, frames) as session:
            session.add_prompts(n - 1, 1, [Box(*frames[-1].box)])
            back = [fm.frame_index for fm in session.propagate(n - 1, direction="backward")]
            two = [fm.frame_index for fm in session.propagate(0, max_frames=2)]
        assert back == list(range(n - 1, -1, -1))
        assert two == [0, 1]

    def test_objects_are_tracked_and_removed_by_id(self, model: Any, frames: list[Scene]) -> None:
        size = frames[0].size
        h, w = size
        with self.start(model, frames) as session:
            session.add_prompts(0, 3, [Box(*frames[0].box)])
            both = session.add_prompts(0, 9, [Box(0, 0, w / 4, h / 4)])
            check_frame_masks(both, size, 0, {3, 9})
            session.remove_object(3)
            for fm in session.propagate():
                check_frame_masks(fm, size, object_ids={9})

    def test_bad_prompts_raise(self, model: Any, frames: list[Scene]) -> None:
        w = frames[0].size[1]
        with self.start(model, frames) as session:
            with pytest.raises(PromptError):
                session.add_prompts(0, 1, [])
            with pytest.raises(PromptError):
                session.add_prompts(0, 1, [Point(w + 10, 1)])
            with pytest.raises(SegmentkitError):
                session.add_prompts(len(frames) + 5, 1, [Point(1, 1)])

    def test_closed_session_raises(self, model: Any, frames: list[Scene]) -> None:
        with self.start(model, frames) as session:
            session.add_prompts(0, 1, [Box(*frames[0].box)])
        with pytest.raises(SessionError):  # leaving the `with` closed it
            session.add_prompts(0, 2, [Box(*frames[0].box)])
        with pytest.raises(SessionError):
            list(session.propagate())
        session.close()  # closing twice is harmless

    def test_live_stream(self, model: Any, frames: list[Scene]) -> None:
        if not self.supports_stream:
            pytest.skip("this tracker does not take live frames")
        size = frames[0].size
        with model.start(stream=True) as session:
            first = session.push_frame(frames[0].image)
            check_frame_masks(first, size, 0, set())
            session.add_prompts(0, 5, [Box(*frames[0].box)])
            pushed: Iterator[FrameMasks] = (session.push_frame(f.image) for f in frames[1:])
            for i, fm in enumerate(pushed, start=1):
                check_frame_masks(fm, size, i, {5})
            assert session.num_frames == len(frames)
