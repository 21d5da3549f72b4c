"""The contract every segmentkit model keeps, as pytest classes a plugin's tests subclass.

Subclass the contract of each role your model plays and override the ``model``
fixture (a loaded model; class scope keeps the suite fast)::

    import pytest
    import segmentkit
    from segmentkit.testing.conformance import PrompterContract

    class TestMyPrompter(PrompterContract):
        level = "quality"

        @pytest.fixture(scope="class")
        @classmethod
        def model(cls):
            return segmentkit.load("my-model", role="prompter")

Every contract states its ``level``: ``"geometry"`` runs the checks any model must pass,
random weights included (types, shapes, sizes, errors, and that the answer *depends* on
the prompt: another box, a negative point, multimask candidates, frames after the prompted
one); ``"quality"`` adds the checks against the synthetic scenes' ground truth (a click
inside the object overlaps it, a box gives a mask inside the box, a negative point removes
a region, a tracker keeps a moving object). A real model runs at ``"quality"``; a plugin's
tiny random-weight test model at ``"geometry"``.

Class attributes tune the checks (``image_size``, ``task``, ``tiny_sizes``, ``min_iou``,
...); see each contract. The checks use small synthetic images, so they run in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pytest
from PIL import Image

from .. import contract
from ..cards import ModelCard, ModelOptions, Task
from ..errors import ImageError, PromptError, SegmentkitError, SessionError, TaskError
from ..roles import ROLE_PROTOCOLS, Detections, Embedding, TrackingSession
from ..types import Box, FrameMasks, MaskPrompt, Masks, Point, Segmentation, Text
from .compare import best_iou, iou
from .scenes import Scene, synthetic_frames, synthetic_pair_frames, synthetic_scene

__all__ = [
    "INPUT_KINDS", "LEVELS", "GrounderContract", "PrompterContract", "ROLE_TASKS", "SegmenterContract",
    "TrackerContract", "as_input", "check_detections", "check_frame_masks", "check_masks", "check_segmentation",
]

Level = Literal["geometry", "quality"]
LEVELS: tuple[str, ...] = ("geometry", "quality")

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


def _kept(check: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a :mod:`segmentkit.contract` check (the runtime's own rules) as an assertion."""
    try:
        return check(*args, **kwargs)
    except contract.Violation as exc:
        pytest.fail(str(exc))


def check_masks(masks: Any, size: tuple[int, int], count: int | None = None) -> Masks:
    """Assert ``masks`` is a well-formed :class:`Masks` for an image of ``size`` = (H, W) (the contract's rules)."""
    _kept(contract.check_masks, masks, size)
    if count is not None:
        assert len(masks) == count, f"expected {count} masks, got {len(masks)}"
    assert np.issubdtype(masks.scores.dtype, np.floating), f"scores must be float, got {masks.scores.dtype}"
    return masks


def check_segmentation(seg: Any, size: tuple[int, int], task: str | None = None) -> Segmentation:
    """Assert ``seg`` is a well-formed :class:`Segmentation` of an image of ``size`` (the contract's rules)."""
    return _kept(contract.check_segmentation, seg, size, task)


def check_frame_masks(
    fm: Any, size: tuple[int, int], frame_index: int | None = None, object_ids: set[int] | None = None
) -> FrameMasks:
    """Assert ``fm`` is a :class:`FrameMasks` with masks of ``size`` for ``object_ids``."""
    assert isinstance(fm, FrameMasks), f"expected segmentkit.FrameMasks, got {type(fm).__name__}"
    _kept(contract.check_frame, fm, size, fm.frame_index + 1, frame_index)
    if object_ids is not None:
        assert set(fm.object_ids) == set(object_ids), f"objects {fm.object_ids}, expected {sorted(object_ids)}"
    return fm


def check_detections(found: Any, size: tuple[int, int], phrases: list[str] | None = None) -> Detections:
    """Assert ``found`` is well-formed :class:`Detections` of an image of ``size`` (the contract's rules),
    labelled by ``phrases``."""
    _kept(contract.check_detections, found, size)
    if phrases is not None:
        stray = [label for label in found.labels if label not in phrases]
        assert not stray, f"labels {stray} are not phrases of the query {phrases}"
    return found


def box_iou(a: tuple[float, ...] | np.ndarray, b: tuple[float, ...] | np.ndarray) -> float:
    """IoU of two XYXY boxes."""
    ax0, ay0, ax1, ay1 = map(float, a)
    bx0, by0, bx1, by1 = map(float, b)
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union if union > 0 else 0.0


def _pixel(point: tuple[float, float]) -> tuple[int, int]:
    """(row, col) of the pixel under an (x, y) point."""
    return int(point[1]), int(point[0])


def _box_mask(box: tuple[float, float, float, float], size: tuple[int, int], grow: int = 0) -> np.ndarray:
    x0, y0, x1, y1 = box
    inside = np.zeros(size, dtype=bool)
    inside[max(0, int(y0) - grow): int(np.ceil(y1)) + grow, max(0, int(x0) - grow): int(np.ceil(x1)) + grow] = True
    return inside


def _share(mask: np.ndarray, region: np.ndarray) -> float:
    """The fraction of ``region`` that ``mask`` covers."""
    return float((mask & region).sum() / max(1, region.sum()))


def _mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """The tight XYXY box of a non-empty ``mask`` (x1, y1 exclusive)."""
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def _far_pixel(mask: np.ndarray, origin: tuple[int, int]) -> tuple[int, int]:
    """(row, col) of the pixel of ``mask`` (of the image, if it is empty) farthest from ``origin``."""
    rows, cols = np.nonzero(mask) if mask.any() else np.indices(mask.shape).reshape(2, -1)
    far = int(np.argmax((rows - origin[0]) ** 2 + (cols - origin[1]) ** 2))
    return int(rows[far]), int(cols[far])


def _noise_image(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def _unsupported_task(card: ModelCard) -> str:
    return next((t for t in get_args(Task) if t not in card.tasks), "no-such-task")


# --------------------------------------------------------------------------- contracts


class ModelContract:
    """Checks every loaded model passes, whatever its role."""

    role: str = ""
    #: "geometry" (checks any model passes, random weights included) or "quality" (also
    #: checks answers against the scenes' ground truth). Every contract must set it.
    level: Level | None = None
    #: Lowest IoU with the ground truth that quality-level checks accept.
    min_iou: float = 0.5
    #: (H, W) of the synthetic test image.
    image_size: tuple[int, int] = (48, 64)
    #: Sizes that must give a valid result or a clear SegmentkitError (never a raw error).
    tiny_sizes: tuple[tuple[int, int], ...] = ((1, 1), (2, 2))
    #: Sizes that must give a valid result.
    extreme_sizes: tuple[tuple[int, int], ...] = ((10, 2000), (2000, 10))

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        # pytest calls this on an instance of the collected subclass, so its attributes count.
        if self.level not in LEVELS:
            raise pytest.UsageError(
                f"{type(self).__name__}.level must be 'geometry' (random weights) or 'quality' (real ones), "
                f"got {self.level!r}"
            )
        for name, sizes in (("tiny_size", self.tiny_sizes), ("extreme_size", self.extreme_sizes)):
            if name in metafunc.fixturenames:
                metafunc.parametrize(name, sizes, ids=[f"{h}x{w}" for h, w in sizes])

    @pytest.fixture
    def model(self) -> Any:
        pytest.fail(f"{type(self).__name__} must override the `model` fixture to return a loaded model")

    @pytest.fixture
    def scene(self) -> Scene:
        return synthetic_scene(self.image_size, seed=0)

    def require_quality(self) -> None:
        """Skip a check of answers unless this contract runs at level "quality"."""
        if self.level != "quality":
            pytest.skip(f"checks answers against ground truth; {type(self).__name__} runs at level {self.level!r}")

    def off_diagonal_scene(self) -> Scene:
        """A scene whose object lies away from the x = y diagonal, so swapping x and y misses it."""
        h, w = self.image_size
        return synthetic_scene(self.image_size, center=(0.7 * w, 0.32 * h), seed=2)

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

    def test_finds_the_object(self, model: Any) -> None:
        """quality: on a plain background one mask (a label's, for semantic maps) is the object."""
        self.require_quality()
        scene = synthetic_scene(self.image_size, background="plain", seed=1)
        seg = check_segmentation(self.segment(model, scene.image), scene.size, self.task)
        found = best_iou(seg.masks.masks, scene.mask)
        assert found >= self.min_iou, f"no mask covers the object (best IoU {found:.2f} < {self.min_iou})"


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
        # a text names a concept: every instance of it, however many (SAM 3, Grounded-SAM 2)
        check_masks(model.predict(emb, prompts), scene.size, None if kind == "text" else 1)

    def test_multimask(self, model: Any, scene: Scene) -> None:
        emb = model.embed(scene.image)
        check_masks(model.predict(emb, self.any_prompt(model, scene), multimask=True), scene.size, self.multimask_count)

    def predict_mask(self, model: Any, scene: Scene, prompts: list[Any]) -> np.ndarray:
        """The single mask ``model`` predicts for ``prompts`` on ``scene`` (checked)."""
        return check_masks(model.predict(model.embed(scene.image), prompts), scene.size, 1).masks[0]

    def need(self, model: Any, *kinds: str) -> None:
        missing = [k for k in kinds if k not in model.card.prompt_kinds]
        if missing:
            pytest.skip(f"{model.card.id} takes no {', '.join(missing)} prompts")

    # -- geometry: the answer depends on the prompt (holds for random weights too)

    def test_another_box_gives_another_mask(self, model: Any, scene: Scene) -> None:
        self.need(model, "box")
        h, w = scene.size
        a = self.predict_mask(model, scene, [Box(*scene.box)])
        b = self.predict_mask(model, scene, [Box(0, 0, w / 3, h / 3)])
        assert not np.array_equal(a, b), "two different boxes gave one mask: is the box ignored?"

    def test_negative_point_changes_the_mask(self, model: Any, scene: Scene) -> None:
        self.need(model, "point")
        positive = Point(*scene.inside)
        before = self.predict_mask(model, scene, [positive])
        row, col = _far_pixel(before, _pixel(scene.inside))
        after = self.predict_mask(model, scene, [positive, Point(col + 0.5, row + 0.5, positive=False)])
        assert not np.array_equal(before, after), (
            f"a negative point at ({col + 0.5}, {row + 0.5}) on the mask changed nothing: are negative points ignored?"
        )

    def test_multimask_candidates_differ(self, model: Any) -> None:
        if self.multimask_count < 2:
            pytest.skip("the model gives one answer (multimask_count = 1)")
        scene = synthetic_scene(self.image_size, part=True, seed=3)  # a click on the part: the part or the whole
        prompts = [Point(*scene.inside)] if "point" in model.card.prompt_kinds else self.any_prompt(model, scene)
        found = check_masks(model.predict(model.embed(scene.image), prompts, multimask=True), scene.size,
                            self.multimask_count)
        assert len({m.tobytes() for m in found.masks}) > 1, f"all {len(found)} multimask candidates are one mask"

    # -- quality: answers against the scenes' ground truth

    def test_point_inside_the_object_overlaps_it(self, model: Any) -> None:
        self.require_quality()
        self.need(model, "point")
        scene = self.off_diagonal_scene()
        mask = self.predict_mask(model, scene, [Point(*scene.inside)])
        row, col = _pixel(scene.inside)
        assert mask[row, col], f"the clicked pixel {scene.inside} is not in the mask: are x and y swapped?"
        found = iou(mask, scene.mask)
        assert found >= self.min_iou, f"a click inside the object gave a mask with IoU {found:.2f} < {self.min_iou}"

    def test_box_gives_a_mask_inside_the_box(self, model: Any) -> None:
        self.require_quality()
        self.need(model, "box")
        scene = self.off_diagonal_scene()
        mask = self.predict_mask(model, scene, [Box(*scene.box)])
        assert mask.any(), f"the box {scene.box} gave an empty mask: is the box ignored?"
        outside = int((mask & ~_box_mask(scene.box, scene.size, grow=1)).sum())
        assert outside <= 0.05 * mask.sum(), f"{outside} of {int(mask.sum())} mask pixels lie outside the box"
        found = iou(mask, scene.mask)
        assert found >= self.min_iou, f"the object's box gave a mask with IoU {found:.2f} < {self.min_iou}"

    def test_negative_point_removes_a_region(self, model: Any) -> None:
        self.require_quality()
        self.need(model, "point", "box")
        scene = synthetic_scene(self.image_size, distractor=True, seed=4)
        assert scene.decoy is not None
        ys, xs = np.nonzero(scene.decoy)
        both = Box(min(xs.min(), scene.box[0]), min(ys.min(), scene.box[1]), scene.box[2], scene.box[3])
        before = self.predict_mask(model, scene, [both])
        assert _share(before, scene.decoy) >= 0.5, (
            "a box over the object and the distractor does not cover the distractor")
        row, col = _pixel((float(np.median(xs)) + 0.5, float(np.median(ys)) + 0.5))
        after = self.predict_mask(model, scene, [both, Point(col + 0.5, row + 0.5, positive=False)])
        assert _share(after, scene.decoy) <= 0.2, "a negative point on the distractor did not remove it"
        assert _share(after, scene.mask) >= self.min_iou, "a negative point on the distractor removed the object too"

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
    #: Lowest IoU between a restored session's masks and an unsaved session's (1.0: identical).
    restore_iou: float = 1.0

    @pytest.fixture
    def frames(self) -> list[Scene]:
        return synthetic_frames(self.frame_count, self.image_size)

    def start(self, model: Any, frames: list[Scene]) -> Any:
        return model.start([f.image for f in frames])

    def moving_frames(self) -> list[Scene]:
        """The quality checks' video: an object moving right a tenth of the width per frame."""
        w = self.image_size[1]
        return synthetic_frames(self.frame_count, self.image_size, step=0.1 * w, x0=0.3 * w, seed=5)

    def assert_tracked(self, seen: list[FrameMasks], truth: dict[int, list[np.ndarray]], how: str) -> None:
        """Every frame of ``seen`` has one mask per object of ``truth`` (object id -> its true mask on
        each frame), in that order, each with IoU >= ``min_iou`` with its own object and more than
        with any other object."""
        poor: dict[tuple[int, int], str] = {}
        for fm in seen:
            assert fm.object_ids == list(truth), (
                f"{how}: frame {fm.frame_index} has masks for objects {fm.object_ids}, expected {list(truth)} "
                "(one per object, in object_ids order)")
            for object_id, mask in zip(fm.object_ids, fm.masks.masks):
                found = {o: iou(mask, masks[fm.frame_index]) for o, masks in truth.items()}
                best = max(found, key=found.__getitem__)
                if found[best] > found[object_id]:
                    poor[(fm.frame_index, object_id)] = (
                        f"IoU {found[object_id]:.2f}, but {found[best]:.2f} with object {best}")
                elif found[object_id] < self.min_iou:
                    poor[(fm.frame_index, object_id)] = f"IoU {found[object_id]:.2f}"
        assert not poor, f"{how}: masks that miss their object (IoU < {self.min_iou}), by (frame, object id): {poor}"

    def test_session_over_frames(self, model: Any, frames: list[Scene]) -> None:
        size, n = frames[0].size, len(frames)
        with self.start(model, frames) as session:
            plugin_session = getattr(session, "raw", session)  # load() wraps it in a core sk.Session
            assert isinstance(plugin_session, TrackingSession), \
                f"{type(plugin_session).__name__} is not a TrackingSession"
            assert isinstance(session.id, str) and session.id
            assert session.num_frames == n
            assert session.frame_size == size
            first = session.add_prompts(0, 7, [Box(*frames[0].box)])
            check_frame_masks(first, size, 0, {7})
            seen = list(session.propagate())
        assert [fm.frame_index for fm in seen] == list(range(n))
        for fm in seen:
            check_frame_masks(fm, size, object_ids={7})

    def test_object_is_kept_after_the_prompted_frame(self, model: Any, frames: list[Scene]) -> None:
        with self.start(model, frames) as session:
            session.add_prompts(0, 1, [Box(*frames[0].box)])
            seen = list(session.propagate())
        lost = [fm.frame_index for fm in seen if fm.frame_index > 0 and not fm.masks.masks.any()]
        assert not lost, f"the prompted object has an empty mask on frames {lost}"

    # -- quality: masks against the moving objects' true masks

    def test_moving_object_is_tracked(self, model: Any) -> None:
        """quality: prompted on frame 0, the mask follows an object moving a tenth of the width per frame."""
        self.require_quality()
        frames = self.moving_frames()
        with self.start(model, frames) as session:
            session.add_prompts(0, 1, [Box(*frames[0].box)])
            seen = list(session.propagate())
        assert [fm.frame_index for fm in seen] == list(range(len(frames)))
        self.assert_tracked(seen, {1: [f.mask for f in frames]}, "forwards")

    def test_backward_propagation_tracks_the_object(self, model: Any) -> None:
        """quality: prompted on the last frame, ``direction="backward"`` follows the object to frame 0."""
        self.require_quality()
        frames = self.moving_frames()
        last = len(frames) - 1
        with self.start(model, frames) as session:
            session.add_prompts(last, 1, [Box(*frames[last].box)])
            seen = list(session.propagate(last, direction="backward"))
        assert [fm.frame_index for fm in seen] == list(range(last, -1, -1))
        self.assert_tracked(seen, {1: [f.mask for f in frames]}, "backwards")

    def test_both_directions_track_the_object(self, model: Any) -> None:
        """quality: prompted on a middle frame, ``direction="both"`` follows the object to both ends."""
        self.require_quality()
        frames = self.moving_frames()
        n, mid = len(frames), len(frames) // 2
        with self.start(model, frames) as session:
            session.add_prompts(mid, 1, [Box(*frames[mid].box)])
            seen = list(session.propagate(mid, direction="both"))
        assert [fm.frame_index for fm in seen] == [*range(mid, n), *range(mid - 1, -1, -1)]
        self.assert_tracked(seen, {1: [f.mask for f in frames]}, 'direction="both"')

    def test_two_objects_are_tracked_apart(self, model: Any) -> None:
        """quality: two objects prompted on frame 0 (ids 7 then 2) each keep their own mask while they
        move past each other (the red one right, the yellow one left)."""
        self.require_quality()
        w = self.image_size[1]
        frames = synthetic_pair_frames(self.frame_count, self.image_size, step=0.1 * w, seed=6)
        truth = {7: [f.mask for f in frames], 2: [f.second for f in frames]}
        with self.start(model, frames) as session:
            session.add_prompts(0, 7, [Box(*frames[0].box)])
            session.add_prompts(0, 2, [Box(*_mask_box(truth[2][0]))])
            seen = list(session.propagate())
        assert [fm.frame_index for fm in seen] == list(range(len(frames)))
        self.assert_tracked(seen, truth, "two objects")

    def test_restore_continues_the_session(self, model: Any, tmp_path: Path) -> None:
        """quality: a session saved halfway and restored with ``restore(path, source=frames)`` keeps
        its objects and masks and continues with the masks of a session never saved."""
        self.require_quality()
        frames = self.moving_frames()
        n, half = len(frames), len(frames) // 2
        if half < 1:
            pytest.skip(f"saving halfway needs at least 2 frames (frame_count = {n})")
        prompts, path = [Box(*frames[0].box)], tmp_path / "session.npz"
        with self.start(model, frames) as session:  # the reference: the same calls, never saved
            session.add_prompts(0, 1, prompts)
            before = list(session.propagate(max_frames=half))
            unsaved = list(session.propagate(half))
        with self.start(model, frames) as session:
            session.add_prompts(0, 1, prompts)
            list(session.propagate(max_frames=half))
            try:
                session.save(path)
            except SessionError as exc:
                pytest.skip(f"this tracker's sessions cannot be saved ({exc})")
        restore = getattr(model, "restore", None)
        assert callable(restore), "sessions can be saved, but the tracker has no restore(path, source=None)"
        with restore(path, source=[f.image for f in frames]) as restored:
            assert restored.object_ids == [1], f"restored objects {restored.object_ids}, saved [1]"
            for fm in before:
                kept = restored.frame_masks(fm.frame_index)
                assert kept is not None and np.array_equal(kept.masks.masks, fm.masks.masks), (
                    f"the restored session lost the masks of frame {fm.frame_index}")
            continued = list(restored.propagate(half))
        assert [fm.frame_index for fm in continued] == list(range(half, n))
        for fm, ref in zip(continued, unsaved):
            assert fm.object_ids == ref.object_ids == [1], f"frame {fm.frame_index}: objects {fm.object_ids}"
            same = iou(fm.masks.masks[0], ref.masks.masks[0])
            assert same >= self.restore_iou, (
                f"after restore, frame {fm.frame_index}'s mask has IoU {same:.3f} < {self.restore_iou} with an "
                "unsaved session's: the restored session does not continue where it was saved")
        self.assert_tracked(continued, {1: [f.mask for f in frames]}, "after restore")

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


class GrounderContract(ModelContract):
    """A :class:`segmentkit.roles.Grounder`: ``detect(image, text) -> Detections``."""

    role = "grounder"
    #: The query; its phrases (split at '.') are the only labels a detection may carry.
    text: str = "a red ellipse"

    @property
    def phrases(self) -> list[str]:
        return [" ".join(p.split()).lower() for p in self.text.split(".") if p.strip()]

    def detect(self, model: Any, image: Any) -> Any:
        return model.detect(image, self.text)

    @pytest.mark.parametrize("kind", INPUT_KINDS)
    def test_accepts_every_input_kind(self, model: Any, scene: Scene, kind: str, tmp_path: Path) -> None:
        check_detections(self.detect(model, as_input(scene.image, kind, tmp_path)), scene.size, self.phrases)

    def test_same_pixels_same_result(self, model: Any, scene: Scene, tmp_path: Path) -> None:
        results = [self.detect(model, as_input(scene.image, k, tmp_path)) for k in SAME_PIXELS]
        for kind, found in zip(SAME_PIXELS[1:], results[1:]):
            assert np.array_equal(found.boxes, results[0].boxes), f"{kind} input gave other boxes"
            assert found.labels == results[0].labels, f"{kind} input gave other labels"

    def test_blank_text_raises(self, model: Any, scene: Scene) -> None:
        for text in ("", " . . "):
            with pytest.raises(PromptError):
                model.detect(scene.image, text)

    def test_bad_image_raises(self, model: Any) -> None:
        with pytest.raises(ImageError):
            self.detect(model, b"this is not an image")

    def test_tiny_image(self, model: Any, tiny_size: tuple[int, int]) -> None:
        try:
            found = self.detect(model, _noise_image(tiny_size))
        except SegmentkitError:
            return  # a clear refusal is fine; a raw numpy / torch error is not
        check_detections(found, tiny_size, self.phrases)

    def test_extreme_aspect_ratio(self, model: Any, extreme_size: tuple[int, int]) -> None:
        check_detections(self.detect(model, synthetic_scene(extreme_size).image), extreme_size, self.phrases)

    def test_deterministic(self, model: Any, scene: Scene) -> None:
        a, b = self.detect(model, scene.image), self.detect(model, scene.image.copy())
        assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores) and a.labels == b.labels

    def test_finds_the_object(self, model: Any) -> None:
        """quality: the best-scoring box for the object's description is the object's box."""
        self.require_quality()
        scene = self.off_diagonal_scene()
        found = check_detections(self.detect(model, scene.image), scene.size, self.phrases)
        assert len(found), f"nothing found for {self.text!r}"
        best = int(np.argmax(found.scores))
        overlap = box_iou(found.boxes[best], scene.box)
        assert overlap >= self.min_iou, (
            f"best box {found.boxes[best]} has IoU {overlap:.2f} with the object's {scene.box}")
