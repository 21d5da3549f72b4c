"""One worker's job: hold the model, turn a task into a record (or an error) and files.

Both engines run this code (a local worker process, a Ray actor, or the driver itself
with one worker), so their outputs are the same. The model is loaded once, when the
worker starts; a load failure is reported with the first outcome and stops the run.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PluginLoadError, SegmentkitError
from ..registry import Registry
from .inputs import to_prompts
from .records import SCHEMA, JobSpec, Outcome, Task, error_record, image_info

log = logging.getLogger(__name__)


def import_object(path: str) -> Any:
    """The object a ``"package.module:attr"`` string names."""
    module_name, _, attr = path.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise PluginLoadError(f"cannot import plugin {path!r}: {exc}") from None


def build_registry(plugins: tuple[str, ...], entry_points: tuple[str, ...] | None = None) -> Registry:
    """The installed plugins (only ``entry_points`` if given) plus in-process ones by import path."""
    registry = Registry(allow=entry_points)
    for path in plugins:
        registry.register(import_object(path), name=path)
    return registry


def role_for(prompted: bool) -> str:
    return "prompter" if prompted else "segmenter"


class Worker:
    """Loads the run's model once (in each role the run needs) and processes tasks."""

    def __init__(self, spec: JobSpec, roles: tuple[str, ...]):
        self.spec = spec
        self.models: dict[str, Any] = {}
        self.fatal: str | None = None
        try:
            registry = build_registry(spec.plugins, spec.entry_points)
            for role in roles:
                self.models[role] = registry.load(spec.model, role=role, **spec.load_options)
        except Exception as exc:  # reported with the first outcome; the driver stops the run
            self.fatal = str(exc) if isinstance(exc, SegmentkitError) else f"{type(exc).__name__}: {exc}"

    def process(self, task: Task) -> Outcome:
        """Segment one task's image; every failure becomes an error outcome, never an exception."""
        if self.fatal is not None:
            return Outcome(task, fatal=self.fatal)
        start = time.perf_counter()
        stage = "read"
        try:
            data = Path(task.path).read_bytes()
            if hashlib.sha256(data).hexdigest() != task.sha256:
                raise SegmentkitError(f"{task.file_name} changed while the run was going; run again")
            stage = "decode"
            rgb = _decode(data, task.file_name, self.spec.max_pixels)
            decoded = time.perf_counter()
            stage = "model"
            result, kind = self._segment(rgb, task)
            segmented = time.perf_counter()
            stage = "encode"
            files = self._files(task, rgb, result)
            record = self._record(task, result, kind, files, {
                "decode_s": decoded - start, "model_s": segmented - decoded,
                "total_s": time.perf_counter() - start,
            })
        except Exception as exc:
            return Outcome(task, error=self._error(task, stage, exc))
        return Outcome(task, record=record, files=files)

    def _segment(self, rgb: np.ndarray, task: Task) -> tuple[Any, str | None]:
        from ..types import Masks, validate_prompts

        if task.prompts is None:
            segmenter = self.models["segmenter"]
            result = segmenter.segment(rgb, task=self.spec.task) if self.spec.task else segmenter.segment(rgb)
            return result, None
        prompter = self.models["prompter"]
        prompt_sets = to_prompts(task.prompts)
        for prompt_set in prompt_sets:
            validate_prompts(prompt_set, rgb.shape[:2])
        embedding = prompter.embed(rgb)
        parts = []
        for number, prompt_set in enumerate(prompt_sets, start=1):  # object k = prompt set k
            part = prompter.predict(embedding, prompt_set, multimask=self.spec.multimask)
            part.object_ids = np.full(len(part), number, dtype=np.int64)
            parts.append(part)
        return Masks.concatenate(parts), "prompt"

    def _files(self, task: Task, rgb: np.ndarray, result: Any) -> dict[str, bytes]:
        from ..export import label_map_png

        if not (self.spec.write_masks or self.spec.write_cutouts):
            return {}
        from ..types import Segmentation

        masks = result.masks if isinstance(result, Segmentation) else result
        label_map = result.label_map if isinstance(result, Segmentation) else None
        stem = output_stem(task)
        files: dict[str, bytes] = {}
        if self.spec.write_masks and label_map is not None:
            files[f"masks/{stem}.labels.png"] = label_map_png(label_map)
        elif self.spec.write_masks:
            for i in range(len(masks)):
                files[f"masks/{stem}.mask-{i}.png"] = _png(masks.masks[i].astype(np.uint8) * 255)
        if self.spec.write_cutouts:
            for i in range(len(masks)):
                alpha = np.where(masks.masks[i], 255, 0).astype(np.uint8)
                files[f"cutouts/{stem}.cutout-{i}.png"] = _png(np.dstack([rgb, alpha]))
        return files

    def _record(self, task: Task, result: Any, kind: str | None, files: dict[str, bytes],
                timing: dict[str, float]) -> dict[str, Any]:
        from ..export import to_json

        meta: dict[str, Any] = {"kind": kind} if kind else {}
        return to_json(
            result, image_info(task), **meta, batch=SCHEMA, key=task.key, model=self.spec.model,
            role=role_for(task.prompts is not None), options=self.spec.options(),
            prompts=task.prompts, files=sorted(files),
            timing={k: round(v, 6) for k, v in timing.items()},
        )

    def _error(self, task: Task, stage: str, exc: Exception) -> dict[str, Any]:
        if isinstance(exc, SegmentkitError):
            code, reason = exc.code, str(exc)
        elif isinstance(exc, OSError):
            code, reason = "unreadable", f"{task.file_name} cannot be read: {exc.strerror or exc}"
        else:
            log.debug("unexpected error on %s", task.path, exc_info=exc)
            code, reason = "internal_error", f"{type(exc).__name__}: {exc}"
        return error_record(image_info(task), task.key, self.spec.model, stage, code, reason)


def output_stem(task: Task) -> str:
    """Files of a task are named ``<image stem>-<key prefix>``: readable and unique."""
    return f"{Path(task.file_name).stem or 'image'}-{task.key[:8]}"


def _decode(data: bytes, name: str, max_pixels: int | None) -> np.ndarray:
    from ..io.image import load_image

    stream = io.BytesIO(data)
    stream.name = name  # error messages name the file
    return load_image(stream, max_pixels=max_pixels)


def _png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 (H, W) grey or (H, W, 4) RGBA array."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
