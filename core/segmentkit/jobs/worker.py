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
                self.models[role].max_pixels = spec.max_pixels
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
            result, document = self._segment(rgb, task)
            stage = "encode"
            files = self._files(task, rgb, result)
            record = self._record(task, document, files, {
                "decode_s": decoded - start, "total_s": time.perf_counter() - start,
            })
        except Exception as exc:
            return Outcome(task, error=self._error(task, stage, exc))
        return Outcome(task, record=record, files=files)

    def _segment(self, rgb: np.ndarray, task: Task) -> tuple[Any, Any]:
        from .. import pipeline
        from ..prompts import decode_objects

        if task.prompts is None:
            return pipeline.segment(self.models["segmenter"], rgb, task=self.spec.task, path=task.path)
        return pipeline.prompt(self.models["prompter"], rgb, decode_objects(task.prompts),
                               multimask=self.spec.multimask, path=task.path)

    def _files(self, task: Task, rgb: np.ndarray, result: Any) -> dict[str, bytes]:
        """``masks/`` and ``cutouts/`` files through the output format table (bytes, written by the driver)."""
        from ..formats import collect, table

        formats = table()
        files: dict[str, bytes] = {}
        for wanted, folder, name in ((self.spec.write_masks, "masks", "png"),
                                     (self.spec.write_cutouts, "cutouts", "cutout")):
            if wanted:
                files.update(collect(result, [formats[name]], stem=f"{folder}/{output_stem(task)}", source=rgb))
        return files

    def _record(self, task: Task, document: Any, files: dict[str, bytes],
                timing: dict[str, float]) -> dict[str, Any]:
        document.timing = {**(document.timing or {}), **{k: round(v, 6) for k, v in timing.items()}}
        return {"batch": SCHEMA, "key": task.key, "source": image_info(task),
                "role": role_for(task.prompts is not None),
                "options": self.spec.options(), "files": sorted(files), "result": document.dump()}

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

