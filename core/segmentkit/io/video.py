"""Video frames on demand: video files (PyAV), frame folders, sequences and live streams.

Every source gives random access to (H, W, 3) uint8 RGB frames by index without
holding the video in memory: a file is demuxed once at open (packet timestamps only,
no decoding) and frames are decoded when asked for, seeking to the nearest keyframe
for random access and keeping a small LRU of decoded frames, so reading forwards or
backwards costs about one decode per frame. A :class:`FrameStream` receives frames
one at a time (cameras) and holds only the most recent ones.

Unreadable input raises :class:`~segmentkit.errors.VideoError` with the reason. Given
``roots`` (an IPC app's grants), every file read must resolve inside one of them: a
frame that is a link to a file outside is refused (:class:`~segmentkit.errors.PathDeniedError`).
"""

from __future__ import annotations

import bisect
import re
import stat
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageError, MissingDependencyError, VideoError
from .files import Roots, check_inside
from .image import load_image

__all__ = [
    "FRAME_SUFFIXES", "FrameDirectory", "FrameSequence", "FrameSource", "FrameStream", "VideoFile",
    "open_video",
]

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DEFAULT_CACHE_FRAMES = 8


class FrameSource:
    """Random access to a finite video's frames; iterate, index, ``len()``; close when done."""

    name: str = "video"

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def frame_size(self) -> tuple[int, int]:
        """(height, width) of every frame."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> np.ndarray:
        """Frame ``index`` as a (H, W, 3) uint8 RGB array."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    def close(self) -> None:
        """Release files and cached frames."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self, index: Any) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise VideoError(f"frame index must be an integer, got {index!r}")
        n = len(self)
        if not 0 <= int(index) < n:
            raise VideoError(f"frame {index} is out of range: {self.name} has frames 0..{n - 1}")
        return int(index)

    def _checked_size(self, frame: np.ndarray, index: int) -> np.ndarray:
        if frame.shape[:2] != self.frame_size:
            h, w = frame.shape[:2]
            fh, fw = self.frame_size
            raise VideoError(f"frame {index} of {self.name} is {w}x{h}, the first frame is {fw}x{fh}")
        return frame


class _LRU:
    """A tiny least-recently-used cache of decoded frames."""

    def __init__(self, capacity: int):
        self.capacity = max(1, int(capacity))
        self._items: OrderedDict[int, np.ndarray] = OrderedDict()

    def get(self, key: int) -> np.ndarray | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: int, value: np.ndarray) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


# --------------------------------------------------------------------------- video files


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise MissingDependencyError(
            "av", "pip install 'segmentkit[video]'",
            purpose="reading video files (a folder of frames works without it)",
        ) from None
    return av


class VideoFile(FrameSource):
    """Frames of a video file, decoded on demand with PyAV.

    Opening demuxes the packets once to learn every frame's timestamp (so ``len()`` is
    exact and frame ``i`` can be found by seeking) and decodes the first frame, so a
    file that cannot be decoded fails here, not halfway through tracking.
    """

    # Decode forwards instead of seeking when the wanted frame is at most this far ahead.
    MAX_FORWARD_GAP = 32

    def __init__(self, path: str | Path, *, cache_frames: int = DEFAULT_CACHE_FRAMES, roots: Roots = None):
        av = _av()
        self.path = Path(path)
        self.name = str(self.path)
        if not self.path.exists():
            raise VideoError(f"{self.name}: no such file")
        if self.path.is_dir():
            raise VideoError(f"{self.name} is a directory; use open_video() for a folder of frames")
        real = self.path.resolve()
        check_inside(real, roots, self.name)
        if not stat.S_ISREG(real.stat().st_mode):
            raise VideoError(f"{self.name} is not a regular file")
        try:
            self._container = av.open(str(real))
        except Exception as exc:
            raise VideoError(f"{self.name} is not a video PyAV can read: {_reason(exc)}") from None
        self._cache = _LRU(cache_frames)
        self._decoder: Iterator[Any] | None = None
        self._next = 0  # index of the frame the running decoder yields next
        try:
            if not self._container.streams.video:
                raise VideoError(f"{self.name} has no video stream")
            self._stream = self._container.streams.video[0]
            self._stream.thread_type = "AUTO"
            self._pts = self._scan()
            self._index_of = {pts: i for i, pts in enumerate(self._pts)} if self._pts else {}
            first = self._decode(0)
        except VideoError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise VideoError(f"{self.name} cannot be decoded: {_reason(exc)}") from None
        self._size = (int(first.shape[0]), int(first.shape[1]))

    def _scan(self) -> list[int]:
        """Presentation timestamps of every video packet, in display order."""
        pts = [p.pts for p in self._container.demux(self._stream) if p.size]
        if not pts:
            raise VideoError(f"{self.name} has no video frames")
        self._count = len(pts)
        self._container.seek(0)
        if any(p is None for p in pts):
            return []  # no timestamps: sequential access only
        return sorted(pts)

    def __len__(self) -> int:
        return self._count

    @property
    def frame_size(self) -> tuple[int, int]:
        return self._size

    @property
    def fps(self) -> float:
        rate = self._stream.average_rate or self._stream.guessed_rate
        return float(rate) if rate else 25.0

    def __getitem__(self, index: int) -> np.ndarray:
        index = self._check(index)
        frame = self._cache.get(index)
        if frame is None:
            frame = self._checked_size(self._decode(index), index)
        return frame

    def _decode(self, index: int) -> np.ndarray:
        decoder = self._decoder
        if decoder is None or not 0 <= index - self._next <= self.MAX_FORWARD_GAP:
            decoder = self._seek(index)
        for frame in decoder:
            i = self._frame_index(frame)
            if i is None:
                continue
            self._next = i + 1
            image = frame.to_ndarray(format="rgb24")
            self._cache.put(i, image)
            if i >= index:
                if i != index:  # a missing timestamp: the wanted frame cannot be found exactly
                    raise VideoError(f"{self.name}: frame {index} cannot be decoded (got frame {i})")
                return image
        raise VideoError(f"{self.name}: frame {index} cannot be decoded (the stream ended early)")

    def _seek(self, index: int) -> Iterator[Any]:
        """Restart decoding at the keyframe at or before frame ``index`` (the start without pts)."""
        if self._pts:
            self._container.seek(self._pts[index], stream=self._stream, backward=True, any_frame=False)
        else:
            self._container.seek(0)
        self._decoder = self._container.decode(self._stream)
        self._next = 0 if not self._pts else -1  # unknown until the first frame arrives
        self._sequential = 0
        return self._decoder

    def _frame_index(self, frame: Any) -> int | None:
        if self._pts:
            if frame.pts is None:
                return None
            i = self._index_of.get(frame.pts)
            if i is None:  # timestamps of decoded frames that are not packets' pts
                i = min(bisect.bisect_left(self._pts, frame.pts), self._count - 1)
            return i
        i = self._sequential
        self._sequential += 1
        return i

    def close(self) -> None:
        self._cache.clear()
        self._decoder = None
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


# --------------------------------------------------------------------------- folders and sequences


def _natural_key(path: Path) -> tuple[Any, ...]:
    parts = re.split(r"(\d+)", path.name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts if p)


class FrameDirectory(FrameSource):
    """A folder of frame images, in numeric order (``2.jpg`` before ``10.jpg``)."""

    def __init__(self, path: str | Path, *, cache_frames: int = DEFAULT_CACHE_FRAMES, roots: Roots = None,
                 max_pixels: int | None = None):
        self.path = Path(path)
        self.name = str(self.path)
        self.roots, self.max_pixels = roots, max_pixels
        if not self.path.is_dir():
            raise VideoError(f"{self.name} is not a directory")
        self.files = sorted(
            (p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES),
            key=_natural_key,
        )
        for file in self.files:  # refused at open; each read is checked again
            check_inside(file.resolve(), roots, str(file))
        if not self.files:
            raise VideoError(f"{self.name} holds no frame images ({', '.join(FRAME_SUFFIXES)})")
        self._cache = _LRU(cache_frames)
        first = self._load(0)
        self._size = (int(first.shape[0]), int(first.shape[1]))
        self._cache.put(0, first)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def frame_size(self) -> tuple[int, int]:
        return self._size

    def __getitem__(self, index: int) -> np.ndarray:
        index = self._check(index)
        frame = self._cache.get(index)
        if frame is None:
            frame = self._checked_size(self._load(index), index)
            self._cache.put(index, frame)
        return frame

    def _load(self, index: int) -> np.ndarray:
        try:
            return load_image(self.files[index], max_pixels=self.max_pixels, roots=self.roots)
        except ImageError as exc:
            raise VideoError(f"frame {index} of {self.name}: {exc}") from None

    def close(self) -> None:
        self._cache.clear()


class FrameSequence(FrameSource):
    """A sequence of images (arrays, paths, PIL images), converted when accessed."""

    def __init__(self, frames: Sequence[Any], *, name: str = "frame sequence"):
        self.name = name
        self._frames = frames
        if len(frames) == 0:
            raise VideoError(f"{name} is empty")
        first = self._load(0)
        self._size = (int(first.shape[0]), int(first.shape[1]))

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def frame_size(self) -> tuple[int, int]:
        return self._size

    def __getitem__(self, index: int) -> np.ndarray:
        index = self._check(index)
        return self._checked_size(self._load(index), index)

    def _load(self, index: int) -> np.ndarray:
        try:
            return load_image(self._frames[index])
        except ImageError as exc:
            raise VideoError(f"frame {index} of {self.name}: {exc}") from None

    def close(self) -> None:
        self._frames = ()


def open_video(source: Any, *, cache_frames: int = DEFAULT_CACHE_FRAMES, roots: Roots = None,
               max_pixels: int | None = None) -> FrameSource:
    """A :class:`FrameSource` for a video file, a folder of frames, or a sequence of images
    (files only from inside ``roots`` when given, frames of at most ``max_pixels``)."""
    if isinstance(source, FrameSource):
        return source
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if path.is_dir():
            return FrameDirectory(path, cache_frames=cache_frames, roots=roots, max_pixels=max_pixels)
        return VideoFile(path, cache_frames=cache_frames, roots=roots)
    if isinstance(source, np.ndarray) and source.ndim == 4:
        return FrameSequence(list(source), name="frame array")
    if isinstance(source, Sequence) and not isinstance(source, (bytes, bytearray)):
        return FrameSequence(source)
    raise VideoError(
        f"cannot read a video from {type(source).__name__}: pass a video file, a folder of frames "
        "or a sequence of images"
    )


# --------------------------------------------------------------------------- live streams


class FrameStream:
    """Frames pushed one at a time (a camera); holds only the ``max_held`` most recent.

    Frame indices count every frame pushed; frames older than the held window are
    dropped and asking for them is an error. Every frame must have the first one's size.
    """

    name = "stream"

    def __init__(self, *, max_held: int = DEFAULT_CACHE_FRAMES):
        if max_held < 1:
            raise ValueError(f"max_held must be >= 1, got {max_held}")
        self.max_held = int(max_held)
        self._frames: deque[np.ndarray] = deque(maxlen=self.max_held)
        self._count = 0
        self._size: tuple[int, int] | None = None

    def push(self, image: Any) -> int:
        """Append a frame (anything :func:`load_image` reads); returns its index."""
        try:
            frame = load_image(image)
        except ImageError as exc:
            raise VideoError(f"frame {self._count} pushed to the stream: {exc}") from None
        size = (int(frame.shape[0]), int(frame.shape[1]))
        if self._size is None:
            self._size = size
        elif size != self._size:
            raise VideoError(
                f"frame {self._count} pushed to the stream is {size[1]}x{size[0]}, "
                f"the stream's frames are {self._size[1]}x{self._size[0]}"
            )
        self._frames.append(frame)
        self._count += 1
        return self._count - 1

    def __len__(self) -> int:
        """Number of frames pushed so far (held or not)."""
        return self._count

    @property
    def first_held(self) -> int:
        """Index of the oldest frame still held."""
        return self._count - len(self._frames)

    @property
    def frame_size(self) -> tuple[int, int] | None:
        return self._size

    def __getitem__(self, index: int) -> np.ndarray:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise VideoError(f"frame index must be an integer, got {index!r}")
        if not self.first_held <= index < self._count:
            held = f"frames {self.first_held}..{self._count - 1}" if self._count else "no frames yet"
            raise VideoError(f"frame {index} is not held by the stream (it holds {held})")
        return self._frames[int(index) - self.first_held]

    def close(self) -> None:
        self._frames.clear()
