"""`segmentkit batch SOURCE... --out DIR`: segment a collection, resumably, locally or on Ray."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from .app import app
from .common import (
    DeviceOpt,
    ModelOpt,
    OptionOpt,
    PrecisionOpt,
    RuntimeOpt,
    WeightsOpt,
    debug,
    emit_json,
    guarded,
    load_options,
    stderr_console,
)

RAY = "Ray engine"
HELP = ("Segment every image of folders, lists or manifests into DIR; rerun to resume.\n\n"
        "Images done before (same content, model and options) are skipped; unreadable or corrupt "
        "images are listed in DIR/errors.jsonl and the run goes on.")

SourcesArg = Annotated[list[Path], typer.Argument(
    help="Folders (searched recursively), images, list files (.txt) or manifests (.jsonl, .csv) "
         "with per-image prompts.", show_default=False)]
BatchOutOpt = Annotated[Path, typer.Option(
    "--out", "-o", metavar="DIR", file_okay=False,
    help="Output folder: results.jsonl, errors.jsonl, summary.json, ...")]
GlobOpt = Annotated[str | None, typer.Option(
    "--glob", help="Only files matching this pattern in folders, e.g. '*.jpg' (default: every image).")]
TaskOpt = Annotated[str | None, typer.Option(
    "--task", "-t", help="Segmenter task for images without prompts (default: the model's first).")]
MultimaskOpt = Annotated[bool, typer.Option("--multimask", help="Three candidate masks per prompted object.")]
CocoOpt = Annotated[bool, typer.Option("--coco", help="Also write coco.json for the whole set.")]
MasksOpt = Annotated[bool, typer.Option("--masks", help="Also write mask PNGs into masks/.")]
CutoutsOpt = Annotated[bool, typer.Option("--cutouts", help="Also write RGBA cut-outs into cutouts/.")]
EngineOpt = Annotated[Literal["local", "ray"], typer.Option(
    "--engine", help="local: worker processes here; ray: Ray Data.")]
WorkersOpt = Annotated[int | None, typer.Option(
    "--workers", "-j", min=1, help="Worker processes (local) or actors (ray), each holding the model "
                                   "(default: min(2, CPUs)); 1 runs in this process.")]
AddressOpt = Annotated[str | None, typer.Option(
    "--ray-address", rich_help_panel=RAY,
    help="Existing Ray cluster ('auto', 'ray://host:10001'); default: start a local Ray.")]
CpusOpt = Annotated[float, typer.Option("--cpus-per-worker", min=0, rich_help_panel=RAY,
                                        help="CPUs reserved per Ray actor.")]
GpusOpt = Annotated[float, typer.Option("--gpus-per-worker", min=0, rich_help_panel=RAY,
                                        help="GPUs reserved per Ray actor.")]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", min=1, rich_help_panel=RAY,
                                           help="Images per map_batches call.")]
MaxPixelsOpt = Annotated[int | None, typer.Option(
    "--max-pixels", min=1, help="Refuse larger images (default: $SEGMENTKIT_MAX_PIXELS or 100M).")]
PluginOpt = Annotated[list[str] | None, typer.Option(
    "--plugin", metavar="MODULE:ATTR", help="Also register this plugin object (importable by every worker).")]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="No progress bar.")]
SummaryJsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")]


@app.command("batch", help=HELP)
@guarded
def batch_command(
    sources: SourcesArg,
    out: BatchOutOpt,
    model: ModelOpt = None,
    glob: GlobOpt = None,
    task: TaskOpt = None,
    multimask: MultimaskOpt = False,
    coco: CocoOpt = False,
    masks: MasksOpt = False,
    cutouts: CutoutsOpt = False,
    engine: EngineOpt = "local",
    workers: WorkersOpt = None,
    ray_address: AddressOpt = None,
    cpus_per_worker: CpusOpt = 1.0,
    gpus_per_worker: GpusOpt = 0.0,
    batch_size: BatchSizeOpt = 4,
    max_pixels: MaxPixelsOpt = None,
    plugin: PluginOpt = None,
    no_progress: NoProgressOpt = False,
    json_out: SummaryJsonOpt = False,
    weights: WeightsOpt = None,
    device: DeviceOpt = None,
    runtime: RuntimeOpt = None,
    precision: PrecisionOpt = None,
    option: OptionOpt = None,
) -> None:
    """`segmentkit batch`: :func:`segmentkit.batch.run_batch` with a progress bar and a summary."""
    from ..batch import run_batch
    from ..jobs.ray_engine import RayOptions

    quiet = engine == "ray" and not debug()  # Ray's INFO lines would bury the progress bar
    options = load_options(weights=weights, device=device, runtime=runtime, precision=precision,
                           option=option)
    ray = RayOptions(address=ray_address, cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker,
                     batch_size=batch_size, log_level=logging.ERROR if quiet else logging.INFO)
    with _progress(enabled=not no_progress) as reporter:
        summary = run_batch(
            sources, out, model=model, load_options=options, task=task, multimask=multimask,
            max_pixels=max_pixels, masks=masks, cutouts=cutouts, coco=coco, glob=glob, engine=engine,
            workers=workers, ray=ray, plugins=tuple(plugin or ()), reporter=reporter,
        )
    if json_out:
        emit_json(summary.to_json())
    failed = f", {summary.failed} failed (see {out / 'errors.jsonl'})" if summary.failed else ""
    stderr_console().print(
        f"{summary.done} done, {summary.skipped} skipped{failed} of {summary.total} images "
        f"in {summary.seconds:.1f} s ({summary.images_per_second:.2f} images/s) with {summary.model} "
        f"-> {out / 'results.jsonl'}", highlight=False, markup=False, soft_wrap=True,
    )


class _Reporter:
    """Feeds a rich progress bar: images/s counts images segmented now, not skipped ones."""

    def __init__(self, bar: Any):
        self.bar = bar
        self.task: Any = None
        self.done = 0
        self.started = time.perf_counter()

    def start(self, total: int) -> None:
        self.started = time.perf_counter()
        self.task = self.bar.add_task("segmenting", total=total, rate="", eta="")

    def advance(self, status: str) -> None:
        self.done += status == "done"
        self.bar.advance(self.task)
        state = next(t for t in self.bar.tasks if t.id == self.task)
        rate = self.done / max(time.perf_counter() - self.started, 1e-9)
        left = (state.total or 0) - state.completed
        self.bar.update(self.task, rate=f"{rate:.2f} images/s" if self.done else "",
                        eta=f"ETA {_clock(left / rate)}" if self.done and left > 0 else "")


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[_Reporter | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("{task.fields[eta]}"),
                  console=stderr_console(), transient=True) as bar:
        yield _Reporter(bar)
