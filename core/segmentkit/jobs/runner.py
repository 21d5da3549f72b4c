"""A batch run from start to end: take the collected items, skip finished jobs, run an
engine, write every outcome, and sum up (the batch face lists the inputs).

The driver alone writes the output folder. Inputs are hashed lazily as the engine asks
for work, so a large collection starts at once; a job already in ``results.jsonl``
(same key) is skipped, and a copy of its record is written for a new path with the
same content.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..errors import OptionsError, SegmentkitError
from ..registry import IN_PROCESS
from ..weights import file_sha256
from . import writers
from .records import (
    SCHEMA,
    Item,
    JobSpec,
    Outcome,
    ResumeIndex,
    Task,
    error_record,
    load_index,
    make_task,
    read_record_at,
    read_records,
)
from .worker import build_registry

if TYPE_CHECKING:
    from .ray_engine import RayOptions


Engine = Literal["local", "ray"]
Status = Literal["done", "skipped", "failed"]


class Reporter(Protocol):
    """Progress callbacks (the CLI draws a bar with them)."""

    def start(self, total: int) -> None: ...

    def advance(self, status: Status) -> None: ...


@dataclass
class Summary:
    """How a run went: images done now, skipped (done before) and failed."""

    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    model: str = ""
    engine: str = "local"
    workers: int = 1
    out: str = ""

    @property
    def images_per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"batch": SCHEMA, **dataclasses.asdict(self),
                "images_per_second": round(self.images_per_second, 3)}


@dataclass
class _Run:
    """The driver's state: the output folder, the index of finished jobs and the counts."""

    out: writers.OutputDir
    spec: JobSpec
    index: ResumeIndex
    summary: Summary
    reporter: Reporter | None
    wanted: dict[tuple[str, str], int] = field(default_factory=dict)  # (key, path) of inputs -> order
    duplicates: dict[str, list[Item]] = field(default_factory=dict)  # key -> more paths, same job

    def tasks(self, items: Sequence[Item]) -> Iterator[Task]:
        """Hash each input, skip finished jobs, yield the rest (lazily, as engines ask)."""
        for item in items:
            try:
                sha256 = file_sha256(item.path)
            except OSError as exc:
                self._fail_unread(item, exc)
                continue
            task = make_task(item, sha256, self.spec)
            if (task.key, task.path) in self.wanted:  # the same file listed twice
                self._count("skipped")
                continue
            self.wanted[(task.key, task.path)] = len(self.wanted)
            if task.key in self.index:
                if task.path in self.index.paths[task.key]:
                    self._count("skipped")
                else:  # the same job under another path: a copy of its record, no model run
                    self._copy_record(task.key, item)
                    self._count("done")
            elif task.key in self.duplicates:
                self.duplicates[task.key].append(item)
            else:
                self.duplicates[task.key] = []
                yield task

    def record(self, outcome: Outcome) -> None:
        """Write one outcome: files first, then its line, so a line means its files exist."""
        if outcome.fatal is not None:
            raise SegmentkitError(f"model {self.spec.model!r} could not be loaded: {outcome.fatal}")
        extra = self.duplicates.pop(outcome.task.key, [])
        if outcome.record is not None:
            self.out.write_files(outcome.files)
            self._append(outcome.record)
            self._count("done")
            for item in extra:
                self._copy_record(outcome.task.key, item)
                self._count("done")
        else:
            for item in [None, *extra]:
                error = dict(outcome.error or {})
                if item is not None:
                    error["source"] = {**error["source"], "path": item.path, "file_name": item.file_name}
                self.out.errors.append({**error, "time": _now()})
                self._count("failed")

    def _append(self, record: Mapping[str, Any]) -> None:
        offset = self.out.results.append(record)
        self.index.add(record, offset)

    def _copy_record(self, key: str, item: Item) -> None:
        record = read_record_at(self.out.results.path, self.index.offsets[key])
        original = record["source"]["path"]
        record["source"] = {**record["source"], "path": item.path, "file_name": item.file_name}
        record["result"]["image"]["path"] = item.path
        record["result"].pop("timing", None)
        record["reused_from"] = record.get("reused_from") or original
        self._append(record)

    def _fail_unread(self, item: Item, exc: OSError) -> None:
        error = error_record({"path": item.path, "file_name": item.file_name, "sha256": None}, None,
                             self.spec.model, "read", "unreadable",
                             f"{item.file_name} cannot be read: {exc.strerror or exc}")
        self.out.errors.append({**error, "time": _now()})
        self._count("failed")

    def _count(self, status: Status) -> None:
        setattr(self.summary, status, getattr(self.summary, status) + 1)
        if self.reporter is not None:
            self.reporter.advance(status)


def run_jobs(
    items: Sequence[Item], out: str | Path, *, model: str | None = None,
    load_options: Mapping[str, Any] | None = None, task: str | None = None, multimask: bool = False,
    max_pixels: int | None = None, masks: bool = False, cutouts: bool = False, coco: bool = False,
    engine: Engine = "local", workers: int | None = None,
    ray: RayOptions | None = None, plugins: Sequence[str] = (), reporter: Reporter | None = None,
) -> Summary:
    """Segment every item into ``out``; resume a run interrupted before.

    ``ray`` is a :class:`~segmentkit.jobs.ray_engine.RayOptions` for ``engine="ray"``
    (its ``workers`` is overridden by ``workers`` when that is given).
    """
    from .local import default_workers, run_local

    started = time.perf_counter()
    out = Path(out)
    if not items:
        raise OptionsError("no images to segment")
    spec = JobSpec(model=model or "", load_options=dict(load_options or {}), task=task, multimask=multimask,
                   max_pixels=max_pixels, write_masks=masks, write_cutouts=cutouts, plugins=tuple(plugins))
    spec, roles = _check_model(spec, model, items)
    workers = workers or default_workers()
    if engine not in ("local", "ray"):
        raise OptionsError(f"unknown engine {engine!r}; use local or ray")
    if engine == "ray":
        from .ray_engine import import_ray

        import_ray()  # a missing Ray is reported before any work
    with writers.OutputDir(out) as folder:
        summary = Summary(total=len(items), model=spec.model, engine=engine, workers=workers, out=str(out))
        run = _Run(folder, spec, load_index(folder.results.path), summary, reporter)
        if reporter is not None:
            reporter.start(len(items))
        tasks = run.tasks(items)
        if engine == "ray":
            from .ray_engine import RayOptions, run_ray

            options = dataclasses.replace(ray or RayOptions(), workers=workers)
            outcomes = run_ray(tasks, spec, roles, options)
        else:
            outcomes = run_local(tasks, spec, roles, workers)
        for outcome in outcomes:
            run.record(outcome)
        if coco:
            folder.write_json(writers.COCO, writers.coco_document(_latest(folder.results.path, run.wanted)))
        summary.seconds = round(time.perf_counter() - started, 3)
        folder.write_json(writers.SUMMARY, summary.to_json())
    return summary


def _latest(path: Path, wanted: Mapping[tuple[str, str], int]) -> list[dict[str, Any]]:
    """The last record of every (key, path) of this run's inputs, in input order."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for _, record in read_records(path):
        ident = (record["key"], record["source"]["path"])
        if ident in wanted:
            latest[ident] = record
    return [latest[ident] for ident in sorted(latest, key=wanted.__getitem__)]


def _check_model(spec: JobSpec, model: str | None, items: Sequence[Item]) -> tuple[JobSpec, tuple[str, ...]]:
    """Resolve the model id and refuse, before any work, what it cannot do."""
    registry = build_registry(spec.plugins)
    prompted = [item for item in items if item.prompts is not None]
    roles = tuple(role for role, needed in (("segmenter", len(prompted) < len(items)),
                                            ("prompter", bool(prompted))) if needed)
    model_id = model or registry.default_model_id(roles[0])
    objects = [prompts for item in prompted for prompts in item.prompts or ()]
    sources: set[str] = set()
    for role in roles:
        plan = registry.plan(model_id, role, task=spec.task if role == "segmenter" else None,
                             objects=objects if role == "prompter" else (), **spec.load_options)
        card = plan.card
        if plan.entry.distribution != IN_PROCESS:
            sources.add(plan.entry.plugin)
    # Workers load only the plugin that serves the model: faster starts, no other plugin's noise.
    return dataclasses.replace(spec, model=card.id, entry_points=tuple(sorted(sources))), roles


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
