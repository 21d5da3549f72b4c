"""Writing (H, W, 3) uint8 RGB frames to a video file with PyAV (H.264 where FFmpeg has it)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .video import _av

__all__ = ["write_video"]


def write_video(path: str | Path, pictures: Iterable[np.ndarray], *, fps: float = 10.0) -> Path:
    """Encode ``pictures`` (all one size) into ``path``, atomically; odd sizes are padded by one pixel."""
    av = _av()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        with av.open(str(tmp), "w") as container:
            stream = None
            for picture in pictures:
                h, w = picture.shape[:2]
                if stream is None:
                    stream = container.add_stream(_h264(av) or "mpeg4", rate=max(1, round(fps)))
                    stream.height, stream.width = h + h % 2, w + w % 2  # 4:2:0 needs even sizes
                    stream.pix_fmt = "yuv420p"
                picture = np.pad(picture, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
                container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
            if stream is not None:
                container.mux(stream.encode())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _h264(av: object) -> str | None:
    try:
        av.codec.Codec("libx264", "w")  # type: ignore[attr-defined]
    except Exception:  # an FFmpeg build without x264
        return None
    return "libx264"
