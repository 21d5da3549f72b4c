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
    deliver,
    guarded,
    load_model,
    load_options,
    output_dir,
    parse_box,
    parse_formats,
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
    import numpy as np

    from ..errors import PromptError
    from ..export import FORMATS, to_json
    from ..io.image import load_image
    from ..types import Masks, Text, validate_prompts

    chosen = parse_formats(formats, FORMATS)
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
    rgb = load_image(image)
    size = rgb.shape[:2]
    # One set per object: several boxes alone are several objects, else everything is one object.
    prompt_sets: list[list[Any]] = [[b] for b in boxes] if len(boxes) > 1 else [[*points, *boxes, *texts]]
    for prompt_set in prompt_sets:
        validate_prompts(prompt_set, size)
    prompter = load_model(model, "prompter",
                          **load_options(weights=weights, device=device, runtime=runtime, precision=precision,
                                       option=option))
    card = prompter.card
    kinds = {p.kind for prompt_set in prompt_sets for p in prompt_set}
    refused = sorted(kinds - set(card.prompt_kinds))
    if refused:
        raise PromptError(f"model {card.id!r} does not accept {', '.join(refused)} prompts "
                          f"(it accepts: {', '.join(card.prompt_kinds)})")
    embedding = prompter.embed(rgb)
    if len(prompt_sets) == 1:
        result = prompter.predict(embedding, prompt_sets[0], multimask=multimask)
    else:
        parts = prompter.predict_batch(embedding, prompt_sets, multimask=multimask)
        for number, part in enumerate(parts, start=1):  # object k = the k-th box
            if part.object_ids is None:
                part.object_ids = np.full(len(part), number, dtype=np.int64)
        result = Masks.concatenate(parts)
    prompts_json = [p.model_dump(mode="json") for prompt_set in prompt_sets for p in prompt_set]
    document = to_json(result, {"path": str(image)}, kind="prompt", model=card.id, prompts=prompts_json)
    deliver(document, stem=image.stem or "image", image=rgb, result=result, out=out, formats=chosen,
            json_out=json_out)
