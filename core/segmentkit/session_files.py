"""Saved tracking sessions: a documented, versioned file that ``save`` writes and ``restore`` reads.

A saved session is one ``.npz`` file (a zip of ``.npy`` arrays, read with
``allow_pickle=False``: it holds numbers and text only, never pickled objects):

- ``manifest``: UTF-8 JSON as a uint8 array::

    {"format": "segmentkit.session", "version": 1,
     "model": "<model id>", "source": "<video path>" | null, "stream": false,
     "num_frames": N, "frame_size": [H, W],
     "objects": [object ids, in the order they were added], "removed": [ids removed],
     "pending": [frames prompted since the last propagation],
     "prompts": [{"frame": f, "object_id": o, "prompts": [<prompt JSON>, ...]}, ...],
     "masks": [{"frame": f, "object_id": o, "rle": {"size": [H, W], "counts": "..."}}, ...],
     "state": {<the tracker's own JSON>}}

  Prompts are :mod:`segmentkit.types` prompts as JSON (``{"kind": "point", "x": .., "y": ..,
  "positive": ..}``, ``box``, ``text``); a mask prompt is ``{"kind": "mask", "array":
  "prompt/<i>"}`` naming its array. ``masks`` are the latest masks of every frame the
  session computed (COCO RLE); ``state`` and the arrays under ``state/`` are what the
  tracker needs to continue (for SAM 2: its memory bank, see the plugin).
- ``prompt/<i>``: mask prompts; ``state/<name>``: the tracker's arrays.

A reader refuses a file whose ``format`` differs or whose ``version`` is newer than it
knows. ``tracker.restore(path)`` (:func:`restore_session`) reopens the video (or the
``source`` given instead), checks it has the saved frame count and size, and hands the
session back in the state it was saved in: it continues with the masks an
uninterrupted session would give.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SessionError

FORMAT = "segmentkit.session"
VERSION = 1

__all__ = ["FORMAT", "VERSION", "SavedSession", "read_session", "restore_session", "write_session"]


@dataclass
class SavedSession:
    """A saved session as read back: the manifest (see the module docstring) and the arrays."""

    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(repr=False)

    @property
    def state_arrays(self) -> dict[str, np.ndarray]:
        return {k.removeprefix("state/"): v for k, v in self.arrays.items() if k.startswith("state/")}

    def prompts(self) -> list[tuple[int, int, list[Any]]]:
        """The prompt log as ``(frame, object_id, prompts)`` with :mod:`segmentkit.types` prompts."""
        from .prompts import decode_prompts

        def arrays_in(prompt: dict[str, Any]) -> dict[str, Any]:
            return {"kind": "mask", "mask": self.arrays[prompt["array"]]} if "array" in prompt else prompt

        return [(int(entry["frame"]), int(entry["object_id"]), decode_prompts([arrays_in(p) for p in entry["prompts"]]))
                for entry in self.manifest["prompts"]]


def write_session(path: str | os.PathLike[str], session: Any) -> Path:
    """Write ``session`` (a :class:`segmentkit.sessions.TrackingSession`, lock held) to ``path``."""
    meta, state = session._state()
    arrays: dict[str, np.ndarray] = {f"state/{k}": np.asarray(v) for k, v in state.items()}
    prompts = [{"frame": frame, "object_id": object_id, "prompts": [_prompt_json(p, arrays) for p in items]}
               for frame, object_id, items in session.prompts]
    source = getattr(session.frames, "path", None)
    manifest = {
        "format": FORMAT, "version": VERSION, "model": session.model_id,
        "source": None if source is None else str(Path(source).resolve()),
        "stream": session.is_stream, "num_frames": session.num_frames,
        "frame_size": None if session.frame_size is None else list(session.frame_size),
        "objects": session.objects.ids, "removed": sorted(session.objects.removed),
        "pending": sorted(session._pending),
        "prompts": prompts,
        "masks": [{"frame": f, "object_id": int(o), "rle": r}
                  for f, masks in sorted(session._results.items()) for o, r in masks.items()],
        "state": meta,
    }
    arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    path = Path(path)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getbuffer())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _prompt_json(prompt: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """A prompt's JSON (:mod:`segmentkit.prompts`); a mask prompt's array (logits too) goes into ``arrays``."""
    from .prompts import encode_prompt

    if prompt.kind != "mask":
        return encode_prompt(prompt)
    key = f"prompt/{len(arrays)}"
    arrays[key] = np.asarray(prompt.mask)
    return {"kind": "mask", "array": key}


def read_session(path: str | os.PathLike[str]) -> SavedSession:
    """Read a saved session; an unreadable, foreign or too new file -> :class:`SessionError`."""
    from .io.files import open_input

    try:
        with open_input(path, max_bytes=sys.maxsize, error=SessionError) as handle, \
                np.load(handle, allow_pickle=False) as data:  # a regular file: never a FIFO or a device
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise SessionError(f"{path}: not a saved session ({exc})") from None
    try:
        manifest = json.loads(arrays.pop("manifest").tobytes())
    except (KeyError, ValueError):
        raise SessionError(f"{path}: not a saved session (no readable manifest)") from None
    if manifest.get("format") != FORMAT:
        raise SessionError(f"{path}: not a saved session (format {manifest.get('format')!r})")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > VERSION:
        raise SessionError(f"{path}: saved session version {manifest.get('version')!r} is newer than this "
                           f"segmentkit reads ({VERSION}); upgrade segmentkit")
    return SavedSession(manifest, arrays)


def restore_session(tracker: Any, path: str | os.PathLike[str], source: Any = None) -> Any:
    """A session of ``tracker`` in the state saved in ``path``, over ``source`` (default: the saved video)."""
    saved = read_session(path)
    manifest = saved.manifest
    if manifest["model"] and manifest["model"] != tracker.card.id:
        raise SessionError(f"{path} was saved by model {manifest['model']!r}, not {tracker.card.id!r}")
    if manifest["stream"]:
        raise SessionError(f"{path} is a live stream's session; only sessions over a video can be restored")
    source = manifest["source"] if source is None else source
    if source is None:
        raise SessionError(f"{path} does not name its video (it was frames in memory): pass source")
    session = tracker.start(source)
    try:
        session._restore(saved)
    except BaseException:
        session.close()
        raise
    return session


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
