"""The objects ``load()`` returns: core handles that stand between hosts and a plugin.

A handle wraps the plugin's role object (which implements a Protocol of
:mod:`segmentkit.roles`) and owns the contract, once, for every host:

- inputs: images are decoded and size-limited once; the task and the prompt kinds are
  checked against the card; prompts are validated against the image; per-call options
  are validated with the spec's :class:`~segmentkit.cards.CallOptions` class;
- outputs: every answer is checked by :mod:`segmentkit.contract`; a broken one raises
  :class:`~segmentkit.errors.PluginContractError` naming the model, plugin and distribution.

>>> sam = sk.load("sam2.1-hiera-tiny")                     # doctest: +SKIP
>>> masks = sam.predict(sam.embed("photo.jpg"), [sk.Point(320, 240)])   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from pydantic import ValidationError

from . import contract
from .cards import CallOptions, ModelCard, ModelOptions
from .errors import OptionsError, PluginContractError, PromptError, SessionError, TaskError, validation_details
from .roles import Detections, Embedding
from .sessions import Propagation
from .types import FrameMasks, Masks, Segmentation, validate_prompts

if TYPE_CHECKING:
    from .registry import RegisteredSpec

T = TypeVar("T")

__all__ = [
    "Grounder", "Handle", "Prompter", "Segmenter", "Session", "Tracker", "check_load_options",
    "check_prompt_kinds", "check_task", "parse_options", "wrap",
]


# --------------------------------------------------------------------------- card checks


def parse_options(cls: type[Any], card: ModelCard, given: Mapping[str, Any]) -> Any:
    """``given`` validated by the options class ``cls``; an :class:`OptionsError` says what is wrong."""
    try:
        return cls.model_validate(dict(given))
    except ValidationError as exc:
        raise OptionsError(f"invalid options for {card.id!r}: {validation_details(exc)}") from None


def check_load_options(card: ModelCard, options: ModelOptions) -> None:
    """Refuse a runtime or precision the card does not list."""
    runtime = options.runtime or card.runtimes[0]
    if runtime not in card.runtimes:
        raise OptionsError(f"{card.id!r} runs on {', '.join(card.runtimes)}, not {runtime!r}")
    allowed = options.precisions(card)
    if options.precision not in ("auto", *allowed):
        raise OptionsError(f"{card.id!r} supports precision {', '.join(allowed)}, not {options.precision!r}")


def check_task(card: ModelCard, task: str | None) -> None:
    """Refuse a task the card does not list (``None``: the model's default)."""
    if task is not None and task not in card.tasks:
        raise TaskError(f"model {card.id!r} does not do {task!r} segmentation (it does: {', '.join(card.tasks)})")


def check_prompt_kinds(card: ModelCard, kinds: Iterable[str]) -> None:
    """Refuse prompt kinds (``"point"``, ``"box"``, ...) the card does not accept."""
    refused = sorted(set(kinds) - set(card.prompt_kinds))
    if refused:
        takes = ", ".join(card.prompt_kinds) or "none"
        raise PromptError(f"model {card.id!r} does not accept {', '.join(refused)} prompts (it accepts: {takes})")


def validate_options(spec_class: type[CallOptions], card: ModelCard, given: Mapping[str, Any]) -> CallOptions | None:
    """The call's keyword options as the spec's class (``None`` when the model declares none)."""
    if spec_class is CallOptions:
        if given:
            raise OptionsError(f"model {card.id!r} takes no per-call options, got {', '.join(sorted(given))}")
        return None
    options = parse_options(spec_class, card, given)
    runtime = getattr(options, "runtime", None)
    if runtime is not None and runtime not in card.runtimes:
        raise OptionsError(f"{card.id!r} runs on {', '.join(card.runtimes)}, not {runtime!r}")
    return options


# --------------------------------------------------------------------------- handles


class Handle:
    """What every role's handle shares: the card, where the plugin came from, the checks."""

    role = ""

    def __init__(self, raw: Any, entry: RegisteredSpec, options: ModelOptions):
        self.raw = raw  # the plugin's own object (plugin tests; hosts use the handle)
        self.spec = entry.spec
        self.card: ModelCard = entry.spec.card
        self.options = options
        self.plugin = entry.plugin
        self.distribution = entry.distribution
        self.max_pixels: int | None = None  # None: $SEGMENTKIT_MAX_PIXELS or the default

    def __repr__(self) -> str:
        return f"<segmentkit {type(self).__name__} {self.card.id!r} from {self.distribution}>"

    @property
    def thread_safe(self) -> bool:
        """True when the plugin says its object may be called from several threads at once."""
        return getattr(self.raw, "thread_safe", False) is True

    def fault(self, problem: str) -> PluginContractError:
        return PluginContractError(problem, model=self.card.id, plugin=self.plugin, distribution=self.distribution)

    def checked(self, check: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a :mod:`~segmentkit.contract` check (or a plugin call the session base checks); a
        violation becomes a PluginContractError."""
        try:
            return check(*args, **kwargs)
        except contract.Violation as exc:
            raise self.fault(str(exc)) from None

    def image(self, image: Any) -> np.ndarray:
        """The input as (H, W, 3) uint8, decoded and limited once."""
        from .io.image import load_image

        return load_image(image, max_pixels=self.max_pixels)

    def prompts(self, prompts: Any, size: tuple[int, int]) -> list[Any]:
        """``prompts`` checked against the image and the card's prompt kinds."""
        checked = validate_prompts(prompts, size)
        check_prompt_kinds(self.card, (p.kind for p in checked))
        return checked

    def call_options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """``{"options": instance}`` to pass to the plugin, or ``{}`` if it declares none."""
        options = validate_options(self.spec.call_options, self.card, given)
        return {} if options is None else {"options": options}


class Segmenter(Handle):
    """Whole-image segmentation (semantic, instance, panoptic or automatic masks)."""

    role = "segmenter"

    def segment(self, image: Any, *, task: str | None = None, **options: Any) -> Segmentation:
        """Segment ``image`` for ``task`` (default: the model's); ``options``: the model's per-call options."""
        check_task(self.card, task)
        extra = self.call_options(options)
        rgb = self.image(image)
        result = self.raw.segment(rgb, task=task, **extra)
        return self.checked(contract.check_segmentation, result, rgb.shape[:2], task)


class Prompter(Handle):
    """Prompt -> masks: embed an image once, predict for many prompt sets."""

    role = "prompter"

    def embed(self, image: Any) -> Embedding:
        rgb = self.image(image)
        return self.checked(contract.check_embedding, self.raw.embed(rgb), rgb.shape[:2])

    def predict(self, embedding: Embedding, prompts: Sequence[Any], *, multimask: bool = False,
                **options: Any) -> Masks:
        """Masks of one object described by ``prompts`` (1 mask, or several with ``multimask``)."""
        size = tuple(embedding.image_size)
        checked = self.prompts(prompts, size)
        extra = self.call_options(options)
        masks = self.raw.predict(embedding, checked, multimask=multimask, **extra)
        return self.checked(contract.check_masks, masks, size)

    def predict_batch(self, embedding: Embedding, prompt_sets: Sequence[Sequence[Any]], *,
                      multimask: bool = False, **options: Any) -> list[Masks]:
        """Masks for several objects, one prompt set each (the plugin's batch call if it has one)."""
        size = tuple(embedding.image_size)
        sets = [self.prompts(s, size) for s in prompt_sets]
        extra = self.call_options(options)
        batch = getattr(self.raw, "predict_batch", None)
        if batch is None:
            parts = [self.raw.predict(embedding, s, multimask=multimask, **extra) for s in sets]
        else:
            parts = list(batch(embedding, sets, multimask=multimask, **extra))
        if len(parts) != len(sets):
            raise self.fault(f"predict_batch returned {len(parts)} results for {len(sets)} prompt sets")
        return [self.checked(contract.check_masks, p, size, f"masks of prompt set {i}") for i, p in enumerate(parts)]

    def predict_objects(self, embedding: Embedding, prompt_sets: Sequence[Sequence[Any]], *,
                        multimask: bool = False, **options: Any) -> Masks:
        """One :class:`Masks` for several objects: object ``k`` (``object_ids``) is prompt set ``k`` (from 1)."""
        parts = self.predict_batch(embedding, prompt_sets, multimask=multimask, **options)
        for number, part in enumerate(parts, start=1):
            part.object_ids = np.full(len(part), number, dtype=np.int64)
        return Masks.concatenate(parts)


class Grounder(Handle):
    """Open-vocabulary detection: text phrases -> labelled boxes."""

    role = "grounder"

    def detect(self, image: Any, text: str, **options: Any) -> Detections:
        """Boxes for the phrases of ``text``; ``options``: the model's per-call options."""
        if not str(text).strip():
            raise PromptError("text prompt must not be blank")
        extra = self.call_options(options)
        rgb = self.image(image)
        return self.checked(contract.check_detections, self.raw.detect(rgb, text, **extra), rgb.shape[:2])


class Tracker(Handle):
    """Starts tracking sessions; every session is wrapped so its answers are checked."""

    role = "tracker"

    def start(self, source: Any = None, *, stream: bool = False) -> Session:
        """Open a session over ``source`` (video file, frame folder, frames), or a live one with ``stream``."""
        return Session(self, self.raw.start(source, stream=stream))

    def restore(self, path: Any, source: Any = None) -> Session:
        """Open a session saved with ``session.save(path)`` again (``source``: its video)."""
        restore = getattr(self.raw, "restore", None)
        if restore is None:
            raise SessionError(f"model {self.card.id!r} cannot restore saved sessions (its tracker has no restore())")
        return Session(self, restore(path, source))


class Session:
    """A tracking session as hosts see it: prompts checked in, every frame's masks checked out."""

    def __init__(self, tracker: Tracker, raw: Any):
        self.tracker = tracker
        self.raw = raw

    @property
    def id(self) -> str:
        return str(self.raw.id)

    @property
    def model_id(self) -> str:
        return self.tracker.card.id

    @property
    def frames(self) -> Any:
        """The session's video (a :class:`~segmentkit.io.video.Frames` or a live stream)."""
        return self.raw.frames

    @property
    def is_stream(self) -> bool:
        return bool(getattr(self.raw, "is_stream", False))

    @property
    def object_ids(self) -> list[int]:
        """The objects the session tracks now, in the order they were added."""
        ids = self.raw.object_ids
        if not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in ids):
            raise self.tracker.fault(f"object_ids must be integers, got {ids!r}")
        return [int(i) for i in ids]

    @property
    def prompts(self) -> list[tuple[int, int, list[Any]]]:
        """The prompt log: ``(frame, object_id, prompts)`` in the order they were given."""
        return [(int(f), int(o), list(p)) for f, o, p in self.raw.prompts]

    @property
    def num_frames(self) -> int:
        return int(self.raw.num_frames)

    @property
    def frame_size(self) -> tuple[int, int] | None:
        size = self.raw.frame_size
        return None if size is None else (int(size[0]), int(size[1]))

    @property
    def closed(self) -> bool:
        return bool(getattr(self.raw, "closed", False))

    def _frame(self, result: Any, frame: int | None = None) -> FrameMasks:
        return self.tracker.checked(contract.check_frame, result, self.frame_size, self.num_frames, frame,
                                    stream=self.is_stream,
                                    object_ids=self.object_ids if hasattr(self.raw, "object_ids") else None)

    def frame_masks(self, frame: int) -> FrameMasks | None:
        """The latest masks computed for ``frame`` (checked), or ``None`` if none were."""
        found = self.raw.frame_masks(frame)
        return None if found is None else self._frame(found, frame)

    def add_prompts(self, frame: int, object_id: int, prompts: Sequence[Any]) -> FrameMasks:
        """Prompt ``object_id`` on ``frame``; returns that frame's masks.

        Prompts are checked against the frame; which kinds a session takes (a text-prompted
        tracker also takes box corrections) and which frames it holds are the session's to say.
        """
        size = self.frame_size
        checked = validate_prompts(prompts, size) if size is not None else list(prompts)
        return self._frame(self.tracker.checked(self.raw.add_prompts, frame, object_id, checked), frame)

    def propagate(self, start: int | None = None, *, direction: str = "forward",
                  max_frames: int | None = None) -> Propagation:
        """Every object's masks frame by frame, checked one by one (``.total``: frames to come)."""
        frames = self.raw.propagate(start, direction=direction, max_frames=max_frames)

        def checked() -> Iterator[FrameMasks]:
            try:
                for result in frames:
                    yield self._frame(result)
            except contract.Violation as exc:  # the session base's own checks
                raise self.tracker.fault(str(exc)) from None
            finally:
                getattr(frames, "close", lambda: None)()

        return Propagation(checked(), getattr(frames, "total", self.num_frames))

    def push_frame(self, image: Any) -> FrameMasks:
        """Append a live frame (decoded and limited here) and return its masks."""
        return self._frame(self.tracker.checked(self.raw.push_frame, self.tracker.image(image)))

    def remove_object(self, object_id: int) -> None:
        self.raw.remove_object(object_id)

    def save(self, path: Any) -> Path:
        """Write the session to ``path`` (:mod:`segmentkit.session_files`); returns the path written."""
        save = getattr(self.raw, "save", None)
        if save is None:
            raise SessionError(f"sessions of model {self.tracker.card.id!r} cannot be saved")
        return Path(save(path))

    def reset(self) -> None:
        self.raw.reset()

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


HANDLES: dict[str, type[Handle]] = {
    "segmenter": Segmenter, "prompter": Prompter, "tracker": Tracker, "grounder": Grounder,
}


def wrap(raw: Any, entry: RegisteredSpec, options: ModelOptions) -> Handle:
    """The handle of ``entry``'s role around the plugin object ``raw``."""
    return HANDLES[entry.spec.role](raw, entry, options)
