"""`segmentkit track VIDEO --point F:X,Y --box F:X0,Y0,X1,Y1 --out DIR`: objects through a video.

Prompts name their frame (``F:``) and, with an ``@ID`` suffix, their object (default 1):
``--box 0:40,60,200,220 --point 12:300,80@2`` tracks object 1 from a box on frame 0 and
object 2 from a click on frame 12; ``--text "[F:]a cat"`` (frame 0 unless given) asks a
text-capable model for every cat. Tracking runs forwards from the earliest prompted frame
to the end, then backwards to frame 0.

``--out DIR`` receives the ``--format`` outputs (default ``davis,json,overlay``; see
:mod:`segmentkit.video_export`): DAVIS palette PNGs, ``track.json``, ``youtube-vis.json``,
``mots.txt``, ``overlay.mp4``. Without PyAV, frame folders still work and the default
skips the overlay. Ctrl-C stops between frames and writes what was tracked (exit 130).
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
    ModelOpt,
    OptionOpt,
    PrecisionOpt,
    RuntimeOpt,
    WeightsOpt,
    choose_formats,
    emit_json,
    fail,
    guarded,
    load_model,
    load_options,
    parse_box,
    parse_point,
    progress,
    split_frame,
    stderr_console,
)

Repeated = list[str] | None
_OBJECT = re.compile(r"^(.*?)@\s*(\d+)\s*$")


def parse_track_prompt(text: str, kind: str) -> tuple[int, int, Any]:
    """``"F:X,Y[@ID]"`` (point / neg), ``"F:X0,Y0,X1,Y1[@ID]"`` (box) or ``"[F:]TEXT[@ID]"`` -> (frame, id, prompt)."""
    frame, rest = split_frame(text, 0 if kind == "text" else None)
    match = _OBJECT.match(rest)
    object_id, rest = (int(match.group(2)), match.group(1)) if match else (1, rest)
    if kind == "text":
        from ..types import Text

        return frame, object_id, Text(rest.strip())
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
    text: Annotated[Repeated, typer.Option("--text", "-t", metavar="[F:]TEXT[@ID]",
                                           help="Text query on frame F (default 0), text-capable models.")] = None,
    model: ModelOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", metavar="DIR", file_okay=False,
                                             help="Write the --format outputs into DIR.")] = None,
    formats: Annotated[str | None, typer.Option(
        "--format", "-f", metavar="LIST",
        help="Comma-separated: davis, youtube-vis, mots, overlay, json (default: davis,json,overlay).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print each frame's result document (JSON Lines).")] = False,
    weights: WeightsOpt = None,
    device: DeviceOpt = None,
    runtime: RuntimeOpt = None,
    precision: PrecisionOpt = None,
    option: OptionOpt = None,
) -> None:
    """Track objects prompted on some frames through the whole video."""
    from ..errors import PromptError
    from ..io.video import open_video
    from ..registry import default_registry
    from ..results import build, model_info
    from ..sessions import check_frame
    from ..tracking import run_tracking
    from ..video_export import TrackExport, VideoInfo, default_formats, prompts_meta

    prompts: dict[tuple[int, int], list[Any]] = defaultdict(list)
    for kind, texts in (("point", point), ("neg", neg), ("box", box), ("text", text)):
        for text in texts or ():
            frame, object_id, prompt = parse_track_prompt(text, kind)
            prompts[(frame, object_id)].append(prompt)
    if not prompts:
        raise PromptError("no prompt given: pass --point F:X,Y, --neg F:X,Y, --box F:X0,Y0,X1,Y1 or --text TEXT")
    if formats and out is None:
        raise typer.BadParameter("needs --out DIR to write into", param_hint="'--format'")
    chosen = tuple(f.name for f in choose_formats(formats, "video")) if formats else default_formats()
    frames = open_video(video)  # unreadable video or a prompt past its end: fail before loading a model
    for frame, _ in prompts:
        check_frame(frame, len(frames))
    meta = prompts_meta(prompts)
    export = TrackExport(out, chosen, VideoInfo.of(frames, video), frames=frames, meta=meta,
                         objects=meta["objects"], registry=default_registry())
    if out is not None and formats is None and "overlay" not in chosen:
        stderr_console().print("note: no overlay.mp4 without PyAV: pip install 'segmentkit[video]'", markup=False)
    options = load_options(weights=weights, device=device, runtime=runtime, precision=precision, option=option)
    tracker = load_model(model, "tracker", objects=list(prompts.values()), **options)
    export.meta, info = {"model": tracker.card.id, **meta}, model_info(tracker)
    with tracker.start(frames) as session, progress(session.num_frames, f"tracking {video.name}",
                                                    enabled=not json_out, unit="frames") as advance:
        on_frame = (lambda fm: emit_json(build(fm, model=info).dump())) if json_out else lambda _: advance()
        interrupted = run_tracking(session, prompts, export, on_frame=on_frame)
    document = export.document
    if not json_out:
        height, width = frames.frame_size
        console = stderr_console()
        console.print(f"{video} ({width}x{height}): tracked {len(document['objects'])} object(s) "
                      f"over {len(document['frames'])} of {len(frames)} frame(s)", highlight=False, soft_wrap=True)
        if out is not None:
            console.print("wrote " + ", ".join(map(str, export.close())), highlight=False, soft_wrap=True)
    if interrupted:
        raise fail(f"interrupted after {len(document['frames'])} frame(s); what was tracked is written", 130)
