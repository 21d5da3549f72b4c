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
    from ..export import atomic_write, label_map_png, to_json
    from ..io.video import open_video
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
    masks_dir = output_dir(out) / "masks" if out is not None else None
    if masks_dir is not None:
        masks_dir.mkdir(exist_ok=True)
    tracker = load_model(model, "tracker", **load_options(weights=weights, device=device, runtime=runtime,
                                                          precision=precision, option=option))
    frames_doc: dict[int, list[dict[str, Any]]] = {}
    with tracker.start(frames) as session:
        height, width = session.frame_size
        total = session.num_frames
        for (frame, object_id), items in sorted(prompts.items()):
            session.add_prompts(frame, object_id, items)
        first = min(frame for frame, _ in prompts)
        with progress(total, f"tracking {video.name}") as advance:
            for fm in session.propagate(first, direction="both"):
                frames_doc[fm.frame_index] = to_json(fm)["masks"]
                if masks_dir is not None:
                    atomic_write(masks_dir / f"{fm.frame_index:06d}.png", label_map_png(_label_map(fm)))
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
    written = []
    if out is not None:
        import json

        written.append(atomic_write(out / "track.json", json.dumps(document).encode()))
        if overlay:
            written.append(write_overlay_video(video, masks_dir, out / "overlay.mp4"))
    if json_out:
        emit_json(document)
    else:
        console = stderr_console()
        console.print(f"{video} ({width}x{height}): tracked {len(document['objects'])} object(s) "
                      f"over {len(frames_doc)} frame(s)", highlight=False, soft_wrap=True)
        if out is not None:
            console.print(f"wrote {total} label maps in {masks_dir}, " + ", ".join(map(str, written)),
                          highlight=False, soft_wrap=True)


def _label_map(fm: Any) -> Any:
    """(H, W) label map of one frame: object id where its mask is, 0 elsewhere (later objects on top)."""
    import numpy as np

    masks = fm.masks
    label_map = np.zeros(masks.image_size, dtype=np.int32)
    for mask, object_id in zip(masks.masks, masks.object_ids if masks.object_ids is not None else []):
        label_map[mask] = int(object_id)
    return label_map


def write_overlay_video(source: Path, masks_dir: Path, path: Path, fps: float | None = None) -> Path:
    """``overlay.mp4``: every frame of ``source`` tinted with its label map from ``masks_dir``."""
    import av
    import numpy as np
    from PIL import Image

    from ..io.video import VideoFile, open_video
    from ..render import overlay
    from ..types import Masks

    with open_video(source) as frames:
        rate = fps or (frames.fps if isinstance(frames, VideoFile) else 10.0)
        h, w = frames.frame_size
        even = (h + h % 2, w + w % 2)  # H.264 4:2:0 needs even sizes
        tmp = path.with_name(f".{path.name}.tmp.mp4")
        with av.open(str(tmp), "w") as container:
            stream = container.add_stream(_h264() or "mpeg4", rate=round(rate))
            stream.height, stream.width = even
            stream.pix_fmt = "yuv420p"
            for i in range(len(frames)):
                label_map = np.asarray(Image.open(masks_dir / f"{i:06d}.png"))
                ids = np.unique(label_map[label_map > 0])
                objects = Masks(label_map[None] == ids[:, None, None], object_ids=ids)
                picture = np.asarray(overlay(frames[i], objects))
                picture = np.pad(picture, ((0, even[0] - h), (0, even[1] - w), (0, 0)), mode="edge")
                container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
            container.mux(stream.encode())
        tmp.replace(path)
    return path


def _h264() -> str | None:
    import av

    try:
        av.codec.Codec("libx264", "w")
    except Exception:  # an FFmpeg build without x264
        return None
    return "libx264"
