"""`segmentkit prompt IMAGE --point/--neg/--box/--text ...`: masks from prompts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
                                          help="Box; several boxes without clicks = several objects.")] = None,
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
    from ..errors import PromptError
    from ..types import Text

    chosen = choose_formats(formats)
    points = [parse_point(p) for p in point or ()] + [parse_point(p, positive=False) for p in neg or ()]
    boxes = [parse_box(b) for b in box or ()]
    texts = [Text(t) for t in text or ()]
    if not (points or boxes or texts):
        raise PromptError("no prompt given: pass --point X,Y, --neg X,Y, --box X0,Y0,X1,Y1 or --text T")
    if len(boxes) > 1 and (points or texts):
        raise PromptError("several --box prompts mean several objects and cannot be combined with "
                          "--point/--neg/--text; give one box per object set")
    check_inputs([image])
    if out is not None:
        output_dir(out)
    # One set per object: several boxes alone are several objects, else everything is one object.
    prompt_sets: list[list[Any]] = [[b] for b in boxes] if len(boxes) > 1 else [[*points, *boxes, *texts]]
    prompter = load_model(model, "prompter",
                          **load_options(weights=weights, device=device, runtime=runtime, precision=precision,
                                         option=option))
    rgb = prompter.image(image)
    result, document = pipeline.prompt(prompter, rgb, prompt_sets, multimask=multimask, path=str(image))
    deliver(document, stem=image.stem or "image", image=rgb, result=result, out=out, formats=chosen,
            json_out=json_out)
