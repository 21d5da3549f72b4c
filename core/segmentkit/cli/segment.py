"""`segmentkit segment IMAGE...`: whole-image segmentation with a segmenter model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import app
from .common import (
    DeviceOpt,
    JsonOpt,
    ModelOpt,
    OptionOpt,
    OutOpt,
    PrecisionOpt,
    RuntimeOpt,
    WeightsOpt,
    check_inputs,
    choose_formats,
    deliver,
    guarded,
    load_model,
    load_options,
    output_dir,
    progress,
    unique_stems,
)

FormatOpt = Annotated[
    str, typer.Option("--format", "-f", help="Comma-separated: overlay, png, labels, json, rle, coco, cutout "
                                             "(and formats plugins add)."),
]


@app.command("segment")
@guarded
def segment_command(
    images: Annotated[list[Path], typer.Argument(help="Image files.", show_default=False)],
    model: ModelOpt = None,
    task: Annotated[str | None, typer.Option("--task", "-t",
                                             help="semantic, instance, panoptic or automatic "
                                                  "(default: the model's first task).")] = None,
    out: OutOpt = None,
    formats: FormatOpt = "overlay,png,json",
    json_out: JsonOpt = False,
    weights: WeightsOpt = None,
    device: DeviceOpt = None,
    runtime: RuntimeOpt = None,
    precision: PrecisionOpt = None,
    option: OptionOpt = None,
) -> None:
    """Segment whole images: label maps (semantic) or masks (instance, panoptic, automatic)."""
    from .. import pipeline

    chosen = choose_formats(formats)
    check_inputs(images)
    if out is not None:
        output_dir(out)
    segmenter = load_model(model, "segmenter", task=task,
                           **load_options(weights=weights, device=device, runtime=runtime, precision=precision,
                                          option=option))
    with progress(len(images), f"segmenting with {segmenter.card.id}") as advance:
        for path, stem in zip(images, unique_stems(images), strict=True):
            image = segmenter.image(path)
            result, document = pipeline.segment(segmenter, image, task=task, path=str(path))
            deliver(document, stem=stem, image=image, result=result, out=out, formats=chosen, json_out=json_out)
            advance()
