"""`segmentkit track VIDEO --point F:X,Y --box F:X0,Y0,X1,Y1 --out DIR`: objects through a video.

Prompts name their frame (``F:``) and, with an ``@ID`` suffix, their object (default 1):
``--box 0:40,60,200,220 --point 12:300,80@2`` tracks object 1 from a box on frame 0 and
object 2 from a click on frame 12. Tracking runs forwards from the earliest prompted
frame to the end, then backwards to frame 0 if prompts start later.

``--out DIR`` receives ``masks/NNNNNN.png`` (a label map per frame: pixel = object id,
0 = background), ``track.json`` (per-frame COCO RLE per object) and ``overlay.mp4``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any

import typer

from .app import app
from .common import (
    DeviceOpt,
    JsonOpt,
    ModelOpt,
    OptionOpt,
    PrecisionOpt,
    RuntimeOpt,
    WeightsOpt,
    choose_formats,
    emit_json,
    guarded,
    load_model,
    load_options,
    output_dir,
    parse_box,
    parse_point,
    progress,
    split_frame,
    stderr_console,
)

Repeated = list[str] | None
TRACK_SCHEMA = "segmentkit.track/1"
_OBJECT = re.compile(r"^(.*?)@\s*(\d+)\s*$")


def parse_track_prompt(text: str, kind: str) -> tuple[int, int, Any]:
    """``"F:X,Y[@ID]"`` (``kind`` point / neg) or ``"F:X0,Y0,X1,Y1[@ID]"`` (box) -> (frame, id, prompt)."""
    frame, rest = split_frame(text)
    match = _OBJECT.match(rest)
    object_id, rest = (int(match.group(2)), match.group(1)) if match else (1, rest)
    prompt = parse_box(rest) if kind == "box" else parse_point(rest, positive=kind == "point")
    return frame, object_id, prompt


@app.command("track")
@guarded
def track_command(
    video: Annotated[Path, typer.Argument(help="Video file or folder of frames.", show_default=False)],
    point: Annotated[Repeated, typer.Option("--point", "-p", metavar="F:X,Y[@ID]",
                                            help="Foreground click on frame F (repeatable).")] = None,
    neg: Annotated[Repeated, typer.Option("--neg", "-n", metavar="F:X,Y[@ID]",
                                          help="Background click on frame F (repeatable).")] = None,
    box: Annotated[Repeated, typer.Option("--box", "-b", metavar="F:X0,Y0,X1,Y1[@ID]",
                                          help="Box on frame F (one per object and frame).")] = None,
    model: ModelOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", metavar="DIR", file_okay=False,
                                             help="Write label-map PNGs, track.json and overlay.mp4.")] = None,
    overlay: Annotated[bool, typer.Option("--overlay/--no-overlay", help="Write overlay.mp4.")] = True,
    json_out: JsonOpt = False,
    weights: WeightsOpt = None,
    device: DeviceOpt = None,
    runtime: RuntimeOpt = None,
    precision: PrecisionOpt = None,
    option: OptionOpt = None,
) -> None:
    """Track objects prompted on some frames through the whole video."""
    from ..errors import PromptError
    from ..formats import Target
    from ..io.video import open_video
    from ..results import build
    from ..sessions import check_frame

    prompts: dict[tuple[int, int], list[Any]] = defaultdict(list)
    for kind, texts in (("point", point), ("neg", neg), ("box", box)):
        for text in texts or ():
            frame, object_id, prompt = parse_track_prompt(text, kind)
            prompts[(frame, object_id)].append(prompt)
    if not prompts:
        raise PromptError("no prompt given: pass --point F:X,Y, --neg F:X,Y or --box F:X0,Y0,X1,Y1")
    frames = open_video(video)  # unreadable video or a prompt past its end: fail before loading a model
    for frame, _ in prompts:
        check_frame(frame, len(frames))
    chosen = choose_formats("labels,json" + (",overlay" if overlay else ""), "video") if out else []
    if out is not None:
        output_dir(out)
    tracker = load_model(model, "tracker", **load_options(weights=weights, device=device, runtime=runtime,
                                                          precision=precision, option=option))
    frames_doc: dict[int, list[dict[str, Any]]] = {}
    target = Target(out or Path(), "", None, source=video)
    sinks = [fmt.write(target) for fmt in chosen]
    with tracker.start(frames) as session:
        height, width = session.frame_size
        total = session.num_frames
        for (frame, object_id), items in sorted(prompts.items()):
            session.add_prompts(frame, object_id, items)
        first = min(frame for frame, _ in prompts)
        passes = [session.propagate(first)] + ([session.propagate(first, reverse=True)] if first else [])
        with progress(total, f"tracking {video.name}") as advance:
            for results in passes:
                for fm in results:
                    if fm.frame_index in frames_doc:  # the backward pass starts on the first prompted frame
                        continue
                    frames_doc[fm.frame_index] = build(fm).dump()["masks"]
                    for sink in sinks:
                        sink.add(fm)
                    advance()
    document = {
        "schema": TRACK_SCHEMA,
        "model": tracker.card.id,
        "video": {"path": str(video), "width": width, "height": height, "frames": total},
        "prompts": [{"frame": f, "object_id": o, **p.model_dump(mode="json")}
                    for (f, o), items in sorted(prompts.items()) for p in items],
        "objects": sorted({o for _, o in prompts}),
        "frames": [{"frame_index": i, "masks": frames_doc[i]} for i in sorted(frames_doc)],
    }
    for sink in sinks:
        sink.close(document)
    if json_out:
        emit_json(document)
    else:
        console = stderr_console()
        console.print(f"{video} ({width}x{height}): tracked {len(document['objects'])} object(s) "
                      f"over {len(frames_doc)} frame(s)", highlight=False, soft_wrap=True)
        if out is not None:
            console.print(f"wrote {len(target.written)} file(s) in {out}", highlight=False, soft_wrap=True)
