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
from .export import atomic_write, to_json
from .io.video import FrameDirectory, FrameSource, VideoFile
from .types import FrameMasks, Masks

__all__ = [
    "DEFAULT_VIDEO_FORMATS", "TRACK_SCHEMA", "VIDEO_FORMATS", "TrackExport", "VideoInfo", "check_formats",
    "davis_palette", "davis_png", "default_formats", "frame_label_map", "has_pyav", "mots_lines",
    "youtube_vis_document",
]

TRACK_SCHEMA = "segmentkit.track/1"
VIDEO_FORMATS = ("davis", "youtube-vis", "mots", "overlay", "json")
DEFAULT_VIDEO_FORMATS = ("davis", "json", "overlay")
MOTS_DEFAULT_CLASS = 1
_LABEL_MAP_FORMATS = {"davis": 255, "mots": 999, "overlay": None}  # format -> largest object id


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
        """Describe an open video (file, frame folder or sequence)."""
        n = len(frames)
        name = Path(path).stem if path is not None else "video"
        if isinstance(frames, FrameDirectory):
            stems = tuple(p.stem for p in frames.files)
            if len(set(stems)) == n:  # "1.jpg" and "1.png" side by side: fall back to indices
                return cls(name, frames.frame_size, n, stems, str(path), tuple(f"{name}/{p.name}" for p in frames.files))
        fps = frames.fps if isinstance(frames, VideoFile) else 10.0
        stems = tuple(f"{i:05d}" for i in range(n))
        return cls(name, frames.frame_size, n, stems, None if path is None else str(path),
                   tuple(f"{name}/{s}.jpg" for s in stems), fps)


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """The formats, each one of :data:`VIDEO_FORMATS`; ``overlay`` needs PyAV."""
    formats = tuple(dict.fromkeys(formats))
    unknown = [f for f in formats if f not in VIDEO_FORMATS]
    if unknown:
        raise ExportError(f"unknown video format {', '.join(unknown)}; choose from {', '.join(VIDEO_FORMATS)}")
    if "overlay" in formats and not has_pyav():
        raise MissingDependencyError("av", "pip install 'segmentkit[video]'", purpose="writing overlay.mp4")
    return formats


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

    from PIL import Image

    arr = np.asarray(label_map)
    if arr.ndim != 2:
        raise ValueError(f"label map must be (H, W), got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ExportError(f"a DAVIS palette PNG holds ids 0-255, got {arr.min()}..{arr.max()}")
    picture = Image.fromarray(arr.astype(np.uint8), "P")
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


# --------------------------------------------------------------------------- the export


class TrackExport:
    """Write one tracking run in ``formats`` into ``out_dir`` (``None``: build the document only).

    Call :meth:`add` with each frame's masks, then :meth:`close` (or use ``with``);
    :attr:`document` is the ``track.json`` document either way. ``frames`` (the open
    video) is needed for ``overlay``; ``meta`` adds top-level fields to the document.
    """

    def __init__(
        self, out_dir: str | Path | None, formats: Sequence[str], video: VideoInfo, *,
        frames: FrameSource | None = None, meta: Mapping[str, Any] | None = None,
        objects: Iterable[int] = (),
    ):
        self.formats = check_formats(formats) if out_dir is not None else ()
        if "overlay" in self.formats and frames is None:
            raise ExportError("the overlay format needs the video's frames")
        self.out = None if out_dir is None else Path(out_dir)
        self.davis_dir = None if self.out is None else self.out / "davis" / video.name
        self.video = video
        self.meta = dict(meta or {})
        self._frames = frames
        self._masks: dict[int, list[dict[str, Any]]] = {}
        self._tracks: dict[int, _Track] = {}
        self._labels: dict[int, str] = {}
        self._mots: dict[int, list[str]] = {}
        self._overlay: dict[int, tuple[bytes, np.dtype]] = {}
        self._written: list[Path] = []
        self.closed = False
        self.check_objects(objects)
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
        if "davis" in self.formats:
            self.davis_dir.mkdir(parents=True, exist_ok=True)

    @property
    def frames_done(self) -> list[int]:
        """Indices of the frames added so far, ascending."""
        return sorted(self._masks)

    def check_objects(self, object_ids: Iterable[int]) -> None:
        """Refuse object ids a chosen label-map format cannot hold (before any tracking)."""
        object_ids = list(object_ids)
        for fmt in (f for f in self.formats if f in _LABEL_MAP_FORMATS):
            largest = _LABEL_MAP_FORMATS[fmt]
            for object_id in object_ids:
                if object_id == 0:
                    raise ExportError(f"object id 0 is the background in {fmt} label maps; number objects from 1")
                if largest is not None and object_id > largest:
                    raise ExportError(f"{fmt} holds object ids 1-{largest}, got {object_id}")

    def add(self, fm: FrameMasks) -> None:
        """Record one frame (a frame added again replaces the earlier one)."""
        if self.closed:
            raise ExportError("this export is closed")
        masks = fm.masks
        if masks.image_size != self.video.size:
            raise ExportError(f"frame {fm.frame_index} masks are {masks.image_size}, the video is {self.video.size}")
        self.check_objects(fm.object_ids)
        i = fm.frame_index
        self._masks[i] = to_json(fm)["masks"]
        self._labels.update(masks.id2label)
        self._record_tracks(i, masks, fm.object_ids)
        if not {"davis", "mots", "overlay"} & set(self.formats):
            return
        label_map = frame_label_map(fm)
        if "davis" in self.formats:
            atomic_write(self.davis_dir / f"{self.video.frame_names[i]}.png", davis_png(label_map))
        if "mots" in self.formats:
            self._mots[i] = mots_lines(i, label_map, self._class_ids())
        if "overlay" in self.formats:
            small = label_map.astype(np.uint8 if label_map.max(initial=0) <= 255 else np.uint16)
            self._overlay[i] = (zlib.compress(small.tobytes(), 1), small.dtype)

    def _record_tracks(self, frame: int, masks: Masks, object_ids: list[int]) -> None:
        for k, object_id in enumerate(object_ids):
            track = self._tracks.setdefault(object_id, _Track())
            if masks.class_ids is not None and track.class_id is None:
                track.class_id = int(masks.class_ids[k])
            if masks.masks[k].any():
                track.frames[frame] = (_rle.encode(masks.masks[k]), float(masks.scores[k]))
            else:
                track.frames.pop(frame, None)

    def _class_ids(self) -> dict[int, int]:
        return {o: t.class_id for o, t in self._tracks.items() if t.class_id is not None}

    @property
    def document(self) -> dict[str, Any]:
        """The ``segmentkit.track/1`` document of the frames added so far."""
        height, width = self.video.size
        return {
            "schema": TRACK_SCHEMA,
            **{k: v for k, v in self.meta.items() if k not in ("prompts", "objects")},
            "video": {"path": self.video.path, "width": width, "height": height, "frames": self.video.num_frames},
            "prompts": self.meta.get("prompts", []),
            "objects": sorted(set(self.meta.get("objects", ())) | set(self._tracks)),
            "frames": [{"frame_index": i, "masks": self._masks[i]} for i in sorted(self._masks)],
        }

    def close(self) -> list[Path]:
        """Write the documents and the overlay; returns every path written (idempotent)."""
        if self.closed or self.out is None:
            self.closed = True
            return list(self._written)
        self.closed = True
        if "davis" in self.formats:
            self._written.append(self.davis_dir)
        if "json" in self.formats:
            self._put("track.json", json.dumps(self.document).encode())
        if "youtube-vis" in self.formats:
            document = youtube_vis_document(self.video, self._tracks, self._labels)
            self._put("youtube-vis.json", json.dumps(document).encode())
        if "mots" in self.formats:
            lines = [line for i in sorted(self._mots) for line in self._mots[i]]
            self._put("mots.txt", "".join(f"{line}\n" for line in lines).encode())
        if "overlay" in self.formats and self._overlay:
            self._written.append(self._write_overlay(self.out / "overlay.mp4"))
        return list(self._written)

    def _put(self, name: str, data: bytes) -> None:
        self._written.append(atomic_write(self.out / name, data))

    def _write_overlay(self, path: Path) -> Path:
        """Every added frame, in index order, tinted with its objects (H.264 where available)."""
        from .io.video_writer import write_video

        def pictures() -> Iterable[np.ndarray]:
            from .render import overlay

            for i in sorted(self._overlay):
                packed, dtype = self._overlay[i]
                label_map = np.frombuffer(zlib.decompress(packed), dtype=dtype).reshape(self.video.size)
                ids = np.unique(label_map[label_map > 0])
                objects = Masks(label_map[None] == ids[:, None, None], object_ids=ids)
                yield np.asarray(overlay(self._frames[i], objects))

        return write_video(path, pictures(), fps=self.video.fps)

    def __enter__(self) -> TrackExport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
