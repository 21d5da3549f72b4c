"""Tracking results to the standard video-segmentation formats, written frame by frame.

One :class:`TrackExport` takes every :class:`~segmentkit.types.FrameMasks` of a run (in
any order, e.g. forwards then backwards) and writes the chosen formats into a folder:

``davis``
    ``davis/<sequence>/<frame>.png``: one palette PNG per frame, pixel = object id
    (0 = background), the DAVIS colour palette; read with ``np.array(Image.open(p))``
    as the DAVIS 2017 evaluation does. ``<frame>`` is the input frame's file stem for a
    frame folder, else the zero-padded index (``00000``). Written as each frame arrives.
``youtube-vis``
    ``youtube-vis.json``: a YouTube-VIS dataset document (``videos``, ``categories``,
    ``annotations``) with one annotation per object whose ``segmentations`` / ``areas`` /
    ``bboxes`` (XYWH) have one entry per frame, ``null`` where the object is absent; each
    annotation's ``score`` (mean over its frames) makes the list usable as results, too.
``mots``
    ``mots.txt``: the MOTS text format, one line per object and frame:
    ``time_frame id class_id img_height img_width rle`` with ``id = class_id * 1000 +
    object id``, frames counted from 0, and masks made disjoint as MOTS requires.
``overlay``
    ``overlay.mp4``: the video with every object tinted (needs PyAV).
``json``
    ``track.json``: segmentkit's own document (``segmentkit.track/1``): per frame the
    masks of :func:`segmentkit.export.to_json`, plus the model and prompts.

Label-map formats (``davis``, ``mots``, ``overlay``) draw later objects over earlier
ones where masks overlap. Documents are written when the export is closed; closing
after an interruption writes what was tracked so far.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import rle as _rle
from .errors import ExportError, MissingDependencyError
from .export import to_json
from .formats import atomic_write
from .io.video import FrameDirectory, FrameSource, VideoFile
from .types import FrameMasks, Masks

__all__ = [
    "DEFAULT_VIDEO_FORMATS", "TRACK_SCHEMA", "VIDEO_WRITERS", "FrameWriter", "TrackExport",
    "VideoInfo", "VideoTarget", "check_formats",
    "davis_palette", "davis_png", "default_formats", "export_session", "frame_label_map", "has_pyav",
    "mots_lines", "prompts_meta", "youtube_vis_document",
]

TRACK_SCHEMA = "segmentkit.track/1"
DEFAULT_VIDEO_FORMATS = ("davis", "json", "overlay")
MOTS_DEFAULT_CLASS = 1


@dataclass(frozen=True)
class VideoInfo:
    """What the formats need to know about the tracked video."""

    name: str  # sequence name: the file or folder stem
    size: tuple[int, int]  # (height, width)
    num_frames: int
    frame_names: tuple[str, ...]  # one stem per frame, for DAVIS file names
    path: str | None = None
    file_names: tuple[str, ...] = ()  # YouTube-VIS ``file_names`` ("<sequence>/<file>")
    fps: float = 10.0

    @classmethod
    def of(cls, frames: FrameSource, path: str | Path | None = None) -> VideoInfo:
        """Describe an open video (file, frame folder or sequence); ``path`` defaults to its own."""
        n = len(frames)
        path = getattr(frames, "path", None) if path is None else path
        name = Path(path).stem if path is not None else "video"
        if isinstance(frames, FrameDirectory):
            stems = tuple(p.stem for p in frames.files)
            if len(set(stems)) == n:  # "1.jpg" and "1.png" side by side: fall back to indices
                return cls(name, frames.frame_size, n, stems, str(path),
                           tuple(f"{name}/{p.name}" for p in frames.files))
        fps = frames.fps if isinstance(frames, VideoFile) else 10.0
        stems = tuple(f"{i:05d}" for i in range(n))
        return cls(name, frames.frame_size, n, stems, None if path is None else str(path),
                   tuple(f"{name}/{s}.jpg" for s in stems), fps)


def check_formats(formats: Iterable[str], registry: Any = None) -> dict[str, Any]:
    """The writer class of each format named, without repeats: :data:`VIDEO_WRITERS`' or one a
    plugin of ``registry`` adds (an ``OutputFormat`` with ``media="video"`` whose ``write`` is a
    :class:`FrameWriter`). The caller passes its registry: output code never reaches up to one."""
    from .formats import table

    known = {name: fmt.write for name, fmt in table("video", registry).items()}
    formats = tuple(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in known]
    if unknown:
        raise ExportError(f"unknown video format {', '.join(unknown)}; choose from {', '.join(known)}")
    return {name: known[name] for name in formats}


def default_formats() -> tuple[str, ...]:
    """:data:`DEFAULT_VIDEO_FORMATS`, without ``overlay`` when PyAV is missing."""
    return tuple(f for f in DEFAULT_VIDEO_FORMATS if f != "overlay" or has_pyav())


def has_pyav() -> bool:
    """Whether PyAV (video files) can be imported."""
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- label maps


def frame_label_map(fm: FrameMasks) -> np.ndarray:
    """(H, W) int32 map of one frame: object id where its mask is, 0 elsewhere (later objects on top)."""
    masks = fm.masks
    label_map = np.zeros(masks.image_size, dtype=np.int32)
    for mask, object_id in zip(masks.masks, fm.object_ids):
        label_map[mask] = object_id
    return label_map


def davis_palette() -> list[int]:
    """The DAVIS / PASCAL VOC palette as 768 ints: id 1 dark red, 2 dark green, 3 olive, ..."""
    palette = []
    for index in range(256):
        rgb = [0, 0, 0]
        for bit in range(8):  # bit b of the id's every third bit sets bit (7 - b) of a channel
            for channel in range(3):
                rgb[channel] |= ((index >> (3 * bit + channel)) & 1) << (7 - bit)
        palette.extend(rgb)
    return palette


def davis_png(label_map: np.ndarray) -> bytes:
    """PNG bytes of a label map with ids 0-255 as a DAVIS palette image."""
    import io

    from .render import palette_label_map

    picture = palette_label_map(label_map)
    picture.putpalette(davis_palette())
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def mots_lines(frame_index: int, label_map: np.ndarray, class_ids: Mapping[int, int]) -> list[str]:
    """MOTS lines of one frame (ascending object id); ``class_ids`` maps object id -> class."""
    height, width = label_map.shape
    lines = []
    for object_id in np.unique(label_map[label_map > 0]).tolist():
        class_id = class_ids.get(object_id, MOTS_DEFAULT_CLASS)
        rle = _rle.encode(label_map == object_id)
        lines.append(f"{frame_index} {class_id * 1000 + object_id} {class_id} {height} {width} {rle['counts']}")
    return lines


# --------------------------------------------------------------------------- YouTube-VIS


@dataclass
class _Track:
    """One object's per-frame RLEs, scores and class (YouTube-VIS)."""

    class_id: int | None = None
    frames: dict[int, tuple[dict[str, Any], float]] = field(default_factory=dict)


def youtube_vis_document(video: VideoInfo, tracks: Mapping[int, _Track], labels: Mapping[int, str]) -> dict[str, Any]:
    """The YouTube-VIS document of one video (see the module docstring)."""
    height, width = video.size
    categories = {t.class_id or 1 for t in tracks.values()}
    annotations = []
    for number, (object_id, track) in enumerate(sorted(tracks.items()), start=1):
        segmentations, areas, bboxes = [], [], []
        for i in range(video.num_frames):
            rle = track.frames.get(i, (None, 0.0))[0]
            segmentations.append(rle)
            areas.append(None if rle is None else _rle.area(rle))
            bboxes.append(None if rle is None else _xywh(rle))
        scores = [score for _, score in track.frames.values()]
        annotations.append({
            "id": number, "video_id": 1, "category_id": track.class_id or 1, "object_id": object_id,
            "iscrowd": 0, "height": height, "width": width, "length": 1,
            "segmentations": segmentations, "areas": areas, "bboxes": bboxes,
            "score": float(np.mean(scores)) if scores else None,
        })
    return {
        "info": {"description": f"segmentkit tracking of {video.name}"},
        "videos": [{"id": 1, "name": video.name, "width": width, "height": height, "length": video.num_frames,
                    "file_names": list(video.file_names)}],
        "categories": [{"id": c, "name": labels.get(c, "object")} for c in sorted(categories)],
        "annotations": annotations,
    }


def _xywh(rle: dict[str, Any]) -> list[float]:
    from pycocotools import mask as coco

    return [float(v) for v in coco.toBbox({"size": rle["size"], "counts": rle["counts"].encode("ascii")})]


# --------------------------------------------------------------------------- one writer per format


@dataclass(frozen=True)
class VideoTarget:
    """Where a video format writes: the folder, the video, and its frames (for ``overlay``)."""

    out: Path
    video: VideoInfo
    frames: FrameSource | None = None


class FrameWriter:
    """One video format: gets every frame's masks (any order, a frame again replaces it), then
    ``close(document)`` with the track document; returns the paths it wrote."""

    name = ""
    largest_id: int | None = -1  # label-map formats: the largest object id they hold (None: any)

    def __init__(self, target: VideoTarget):
        self.target = target

    def check(self, object_ids: Iterable[int]) -> None:
        """Refuse object ids this format cannot hold."""
        if self.largest_id == -1:
            return
        for object_id in object_ids:
            if object_id == 0:
                raise ExportError(f"object id 0 is the background in {self.name} label maps; number objects from 1")
            if self.largest_id is not None and object_id > self.largest_id:
                raise ExportError(f"{self.name} holds object ids 1-{self.largest_id}, got {object_id}")

    def add(self, frame: FrameMasks) -> None:
        """Take one frame's masks."""

    def close(self, document: Mapping[str, Any]) -> list[Path]:
        raise NotImplementedError

    def _put(self, name: str, data: bytes) -> list[Path]:
        return [atomic_write(self.target.out / name, data)]


class DavisWriter(FrameWriter):
    """``davis/<sequence>/<frame>.png``, written as each frame arrives."""

    name, largest_id = "davis", 255

    def __init__(self, target: VideoTarget):
        super().__init__(target)
        self.folder = target.out / "davis" / target.video.name
        self.folder.mkdir(parents=True, exist_ok=True)

    def add(self, frame: FrameMasks) -> None:
        name = self.target.video.frame_names[frame.frame_index]
        atomic_write(self.folder / f"{name}.png", davis_png(frame_label_map(frame)))

    def close(self, document: Mapping[str, Any]) -> list[Path]:
        return [self.folder]


class YouTubeVisWriter(FrameWriter):
    """``youtube-vis.json``."""

    name = "youtube-vis"

    def __init__(self, target: VideoTarget):
        super().__init__(target)
        self.tracks: dict[int, _Track] = {}
        self.labels: dict[int, str] = {}

    def add(self, frame: FrameMasks) -> None:
        masks = frame.masks
        self.labels.update(masks.id2label)
        for k, object_id in enumerate(frame.object_ids):
            track = self.tracks.setdefault(object_id, _Track())
            if masks.class_ids is not None and track.class_id is None:
                track.class_id = int(masks.class_ids[k])
            if masks.masks[k].any():
                track.frames[frame.frame_index] = (_rle.encode(masks.masks[k]), float(masks.scores[k]))
            else:
                track.frames.pop(frame.frame_index, None)

    def close(self, document: Mapping[str, Any]) -> list[Path]:
        vis = youtube_vis_document(self.target.video, self.tracks, self.labels)
        return self._put("youtube-vis.json", json.dumps(vis).encode())


class MotsWriter(FrameWriter):
    """``mots.txt``."""

    name, largest_id = "mots", 999

    def __init__(self, target: VideoTarget):
        super().__init__(target)
        self.lines: dict[int, list[str]] = {}

    def add(self, frame: FrameMasks) -> None:
        classes = frame.masks.class_ids
        class_ids = {} if classes is None else {o: int(c) for o, c in zip(frame.object_ids, classes)}
        self.lines[frame.frame_index] = mots_lines(frame.frame_index, frame_label_map(frame), class_ids)

    def close(self, document: Mapping[str, Any]) -> list[Path]:
        lines = [line for i in sorted(self.lines) for line in self.lines[i]]
        return self._put("mots.txt", "".join(f"{line}\n" for line in lines).encode())


class OverlayWriter(FrameWriter):
    """``overlay.mp4``: every frame added, in index order, tinted with its objects (needs PyAV)."""

    name, largest_id = "overlay", None

    def __init__(self, target: VideoTarget):
        if not has_pyav():
            raise MissingDependencyError("av", "pip install 'segmentkit[video]'", purpose="writing overlay.mp4")
        if target.frames is None:
            raise ExportError("the overlay format needs the video's frames")
        super().__init__(target)
        self.label_maps: dict[int, tuple[bytes, np.dtype]] = {}  # compressed: a long video stays small

    def add(self, frame: FrameMasks) -> None:
        label_map = frame_label_map(frame)
        small = label_map.astype(np.uint8 if label_map.max(initial=0) <= 255 else np.uint16)
        self.label_maps[frame.frame_index] = (zlib.compress(small.tobytes(), 1), small.dtype)

    def close(self, document: Mapping[str, Any]) -> list[Path]:
        from .io.video_writer import write_video
        from .render import overlay

        if not self.label_maps:
            return []
        frames, size = self.target.frames, self.target.video.size

        def pictures() -> Iterable[np.ndarray]:
            for i in sorted(self.label_maps):
                packed, dtype = self.label_maps[i]
                label_map = np.frombuffer(zlib.decompress(packed), dtype=dtype).reshape(size)
                ids = np.unique(label_map[label_map > 0])
                yield np.asarray(overlay(frames[i], Masks(label_map[None] == ids[:, None, None], object_ids=ids)))

        return [write_video(self.target.out / "overlay.mp4", pictures(), fps=self.target.video.fps)]


class TrackJsonWriter(FrameWriter):
    """``track.json``: the track document."""

    name = "json"

    def close(self, document: Mapping[str, Any]) -> list[Path]:
        return self._put("track.json", json.dumps(document).encode())


VIDEO_WRITERS: dict[str, type[FrameWriter]] = {
    w.name: w for w in (DavisWriter, YouTubeVisWriter, MotsWriter, OverlayWriter, TrackJsonWriter)
}


# --------------------------------------------------------------------------- the export


class TrackExport:
    """Write one tracking run in ``formats`` into ``out_dir`` (``None``: build the document only).

    Call :meth:`add` with each frame's masks, then :meth:`close` (or use ``with``);
    :attr:`document` is the ``track.json`` document either way. ``frames`` (the open
    video) is needed for ``overlay``; ``meta`` adds top-level fields to the document;
    ``objects`` are checked against what the formats hold before any frame comes.
    """

    def __init__(
        self, out_dir: str | Path | None, formats: Sequence[str], video: VideoInfo, *,
        frames: FrameSource | None = None, meta: Mapping[str, Any] | None = None,
        objects: Iterable[int] = (), registry: Any = None,
    ):
        self.video = video
        self.meta = dict(meta or {})
        self.closed = False
        self._masks: dict[int, list[dict[str, Any]]] = {}
        self._objects: set[int] = set()
        self._written: list[Path] = []
        self._writers: list[FrameWriter] = []
        if out_dir is None:
            return
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise ExportError(f"{out} exists and is not a folder")
        writers = check_formats(formats, registry)
        out.mkdir(parents=True, exist_ok=True)
        target = VideoTarget(out, video, frames)
        self._writers = [writer(target) for writer in writers.values()]
        self.check_objects(objects)

    def check_objects(self, object_ids: Iterable[int]) -> None:
        """Refuse object ids a chosen format cannot hold."""
        object_ids = list(object_ids)
        for writer in self._writers:
            writer.check(object_ids)

    def add(self, fm: FrameMasks) -> None:
        """Record one frame (a frame added again replaces the earlier one)."""
        if self.closed:
            raise ExportError("this export is closed")
        if fm.masks.image_size != self.video.size:
            raise ExportError(f"frame {fm.frame_index} masks are {fm.masks.image_size}, the video is {self.video.size}")
        self.check_objects(fm.object_ids)
        self._masks[fm.frame_index] = to_json(fm)["masks"]
        self._objects.update(fm.object_ids)
        for writer in self._writers:
            writer.add(fm)

    @property
    def document(self) -> dict[str, Any]:
        """The ``segmentkit.track/1`` document of the frames added so far."""
        height, width = self.video.size
        return {
            "schema": TRACK_SCHEMA,
            **{k: v for k, v in self.meta.items() if k not in ("prompts", "objects")},
            "video": {"path": self.video.path, "width": width, "height": height, "frames": self.video.num_frames},
            "prompts": self.meta.get("prompts", []),
            "objects": sorted(set(self.meta.get("objects", ())) | self._objects),
            "frames": [{"frame_index": i, "masks": self._masks[i]} for i in sorted(self._masks)],
        }

    def close(self) -> list[Path]:
        """Write the documents and the overlay; returns every path written (idempotent)."""
        if not self.closed:
            self.closed = True
            document = self.document
            self._written = [path for writer in self._writers for path in writer.close(document)]
        return list(self._written)

    def __enter__(self) -> TrackExport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prompts_meta(prompts: Mapping[tuple[int, int], Sequence[Any]]) -> dict[str, Any]:
    """The ``prompts`` and ``objects`` fields of the track document; ``prompts`` keyed by (frame, object id)."""
    return {
        "prompts": [{"frame": f, "object_id": o, **p.model_dump(mode="json")}
                    for (f, o), items in sorted(prompts.items()) for p in items],
        "objects": sorted({o for _, o in prompts}),
    }


def export_session(session: Any, out_dir: str | Path, formats: Sequence[str] | None = None,
                   registry: Any = None) -> list[Path]:
    """Write what a :class:`~segmentkit.sessions.TrackingSession` has tracked (the latest masks of
    every frame) in ``formats`` (default :func:`default_formats`; plugin formats of ``registry``)
    into ``out_dir``; returns the paths."""
    frames = session.frames
    if session.is_stream:
        raise ExportError("a live stream's session cannot be exported: it keeps only its latest frames")
    meta = prompts_meta({(f, o): p for f, o, p in session.prompts})
    with TrackExport(out_dir, default_formats() if formats is None else formats, VideoInfo.of(frames),
                     frames=frames, meta={"model": session.model_id, **meta}, objects=session.object_ids,
                     registry=registry) as export:
        for i in range(session.num_frames):
            fm = session.frame_masks(i)
            if fm is not None:
                export.add(fm)
    return export.close()
