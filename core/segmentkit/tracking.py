"""One tracking run from prompts to files: what ``segmentkit track`` (and any host) runs.

>>> prompts = {(0, 1): [sk.Box(40, 60, 200, 220)]}             # doctest: +SKIP
>>> with tracker.start("clip.mp4") as session:                 # doctest: +SKIP
...     run_tracking(session, prompts, TrackExport("out", ("davis", "mots"), video))

Prompts are keyed by (frame, object id). Every object is tracked forwards from the
earliest prompted frame to the end, then backwards from there to frame 0; each frame is
handed to the export (and ``on_frame``) as soon as it is computed.
Ctrl-C stops the run between frames; the export then writes what was tracked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .errors import PromptError
from .types import FrameMasks
from .video_export import TrackExport

__all__ = ["run_tracking", "track_frames"]

Prompts = Mapping[tuple[int, int], Sequence[Any]]


def track_frames(session: Any, prompts: Prompts) -> Iterator[FrameMasks]:
    """Prompt ``session``, then yield every frame's masks once (forwards, then backwards)."""
    if not prompts:
        raise PromptError("no prompt given: give at least one prompt on some frame")
    for (frame, object_id), items in sorted(prompts.items()):
        session.add_prompts(frame, object_id, list(items))
    yield from session.propagate(min(frame for frame, _ in prompts), direction="both")


def run_tracking(session: Any, prompts: Prompts, export: TrackExport, *,
                 on_frame: Callable[[FrameMasks], None] | None = None) -> bool:
    """Track and export every frame; close the export. Returns ``True`` if Ctrl-C stopped the run.

    Ctrl-C still writes what was tracked; an error (e.g. a plugin breaking the contract) writes
    no documents.
    """
    frames = track_frames(session, prompts)
    interrupted = False
    try:
        for fm in frames:
            export.add(fm)
            if on_frame is not None:
                on_frame(fm)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        frames.close()
    export.close()
    return interrupted
