"""Job identity and results: what a batch run computes, records and resumes from.

A job is one image with one set of prompts under one model and one set of options.
Its key hashes the image's content (SHA-256 of the file), the model id, the options
and the prompts, so a rerun skips finished work even after files are moved or renamed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PromptSets = tuple[tuple[dict[str, Any], ...], ...]

SCHEMA = "segmentkit.batch/1"
# Options that change where a model runs but not what it computes stay out of the key.
UNKEYED_OPTIONS = frozenset({"device"})


@dataclass(frozen=True)
class Item:
    """One image to segment: its path, its name in outputs, and its prompt sets (or None)."""

    path: str  # absolute
    file_name: str  # as the user named it: relative to the folder, or as written in the manifest
    prompts: PromptSets | None = None


@dataclass(frozen=True)
class JobSpec:
    """How every image of a run is segmented; picklable, sent once to every worker."""

    model: str
    load_options: Mapping[str, Any] = field(default_factory=dict)
    task: str | None = None
    multimask: bool = False
    max_pixels: int | None = None
    write_masks: bool = False
    write_cutouts: bool = False
    plugins: tuple[str, ...] = ()  # "module:attr" plugin objects each worker registers
    entry_points: tuple[str, ...] | None = None  # installed plugins a worker loads (None: all)

    def options(self) -> dict[str, Any]:
        """The options a result depends on (recorded in every record, hashed into keys)."""
        load = {k: _jsonable(v) for k, v in sorted(self.load_options.items()) if k not in UNKEYED_OPTIONS}
        return {"load": load, "task": self.task, "multimask": self.multimask}

    def options_hash(self) -> str:
        return _digest(canonical(self.options()))


@dataclass(frozen=True)
class Task:
    """One job for a worker: which file, its expected content hash and its prompts."""

    key: str
    sha256: str
    path: str
    file_name: str
    prompts: PromptSets | None = None


@dataclass
class Outcome:
    """A worker's answer for one task: a record, or an error; ``files`` to write (name -> bytes)."""

    task: Task
    record: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    fatal: str | None = None  # the model could not be loaded: the whole run stops


def error_record(image: Mapping[str, Any], key: str | None, model: str, stage: str, code: str,
                 reason: str) -> dict[str, Any]:
    """A line of ``errors.jsonl``: which image, at which stage, the error code and why."""
    return {"batch": SCHEMA, "source": dict(image), "key": key, "model": model, "stage": stage,
            "error": code, "reason": reason}


def image_info(task: Task) -> dict[str, Any]:
    return {"path": task.path, "file_name": task.file_name, "sha256": task.sha256}


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (paths and other objects as strings)."""
    return json.loads(json.dumps(value, default=str))


def job_key(sha256: str, spec: JobSpec, prompts: PromptSets | None) -> str:
    """The resume key: content hash + model id + options hash + prompts."""
    return _digest(canonical([sha256, spec.model, spec.options_hash(), prompts]))


def make_task(item: Item, sha256: str, spec: JobSpec) -> Task:
    return Task(job_key(sha256, spec, item.prompts), sha256, item.path, item.file_name, item.prompts)


# --------------------------------------------------------------------------- resume index


@dataclass
class ResumeIndex:
    """Keys already recorded in ``results.jsonl``, with the paths recorded for each."""

    paths: dict[str, set[str]] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)  # key -> byte offset of one record

    def __contains__(self, key: str) -> bool:
        return key in self.paths

    def add(self, record: Mapping[str, Any], offset: int) -> None:
        key = record["key"]
        self.paths.setdefault(key, set()).add(record["source"]["path"])
        self.offsets.setdefault(key, offset)

    def __len__(self) -> int:
        return sum(len(p) for p in self.paths.values())


def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(byte offset, record)`` of every complete, valid line of a JSONL file.

    A last line without its newline (a run killed mid-write) is ignored, and so is any
    line that is not a JSON object with a ``key``; both are logged.
    """
    if not path.exists():
        return
    offset = 0
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            start, offset = offset, offset + len(line)
            if not line.endswith(b"\n"):
                log.warning("%s: ignoring an incomplete last line (%d bytes)", path, len(line))
                return
            try:
                record = json.loads(line)
            except ValueError:
                log.warning("%s line %d: not JSON, ignored", path, number)
                continue
            if not isinstance(record, dict) or "key" not in record:
                log.warning("%s line %d: not a batch record, ignored", path, number)
                continue
            yield start, record


def load_index(path: Path) -> ResumeIndex:
    index = ResumeIndex()
    for offset, record in read_records(path):
        index.add(record, offset)
    return index


def read_record_at(path: Path, offset: int) -> dict[str, Any]:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return json.loads(handle.readline())
