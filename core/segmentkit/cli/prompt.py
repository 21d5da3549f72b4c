"""`segmentkit prompt IMAGE --point/--neg/--box/--text ...`: masks from prompts."""

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
    parse_box,
    parse_point,
)
from .segment import FormatOpt

Repeated = list[str] | None


@app.command("prompt")
@guarded
def prompt_command(
    image: Annotated[Path, typer.Argument(help="Image file.", show_default=False)],
    point: Annotated[Repeated, typer.Option("--point", "-p", metavar="X,Y",
                                            help="Foreground click (repeatable).")] = None,
    neg: Annotated[Repeated, typer.Option("--neg", "-n", metavar="X,Y",
                                          help="Background click (repeatable).")] = None,
    box: Annotated[Repeated, typer.Option("--box", "-b", metavar="X0,Y0,X1,Y1",
                                          help="Box; several boxes alone = several objects, "
                                               "next to --text = exemplars.")] = None,
    text: Annotated[Repeated, typer.Option("--text", metavar="TEXT",
                                           help="Text query, for models whose card accepts text.")] = None,
    model: ModelOpt = None,
    multimask: Annotated[bool, typer.Option("--multimask", help="Three candidate masks per object.")] = False,
    out: OutOpt = None,
    formats: FormatOpt = "overlay,png,json",
    json_out: JsonOpt = False,
    weights: WeightsOpt = None,
    device: DeviceOpt = None,
    runtime: RuntimeOpt = None,
    precision: PrecisionOpt = None,
    option: OptionOpt = None,
) -> None:
    """Segment the object(s) described by clicks, a box or text."""
    from .. import pipeline
    from ..prompts import flat, group

    chosen = choose_formats(formats)
    points = [parse_point(p) for p in point or ()] + [parse_point(p, positive=False) for p in neg or ()]
    objects = group([*points, *(parse_box(b) for b in box or ()), *flat(texts=text or ())])
    check_inputs([image])
    if out is not None:
        output_dir(out)
    prompter = load_model(model, "prompter", objects=objects,
                          **load_options(weights=weights, device=device, runtime=runtime, precision=precision,
                                         option=option))
    rgb = prompter.image(image)
    result, document = pipeline.prompt(prompter, rgb, objects, multimask=multimask, path=str(image))
    deliver(document, stem=image.stem or "image", image=rgb, result=result, out=out, formats=chosen,
            json_out=json_out)
