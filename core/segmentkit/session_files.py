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

A tracker whose state is nested dicts and lists of tensors can save it with
:func:`pack_tree` (in ``_state``) and read it back with :func:`unpack_tree` (in
``_load_state``): the tree becomes JSON whose leaves name arrays
(``{"tensor": key, "dtype": ...}``, ``{"array": key}``) or hold plain values
(``{"value": ...}``); tensors are stored exactly (bf16 as its 16-bit pattern).

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

__all__ = ["FORMAT", "VERSION", "SavedSession", "pack_tree", "read_session", "restore_session", "unpack_tree",
           "write_session"]


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


def pack_tree(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """``value`` (nested dicts, lists and tuples of torch tensors, numpy arrays, ``None``, bools,
    numbers and strings) as a JSON tree; its tensors and arrays go into ``arrays`` under fresh keys."""
    torch = sys.modules.get("torch")  # a tensor exists only once torch is loaded: never import it here
    if torch is not None and isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        key = _fresh_key(arrays)
        arrays[key] = (tensor.view(torch.int16) if tensor.dtype == torch.bfloat16 else tensor).numpy()
        return {"tensor": key, "dtype": str(tensor.dtype).removeprefix("torch.")}
    if isinstance(value, np.ndarray):
        key = _fresh_key(arrays)
        arrays[key] = value
        return {"array": key}
    if isinstance(value, dict):
        return {"dict": [[k, pack_tree(v, arrays)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"list": [pack_tree(v, arrays) for v in value]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    raise TypeError(f"cannot save a {type(value).__name__} in a session state")


def unpack_tree(tree: Any, arrays: dict[str, np.ndarray], device: Any = None) -> Any:
    """The value :func:`pack_tree` packed (tuples come back as lists); tensors on ``device`` if given."""
    if "tensor" in tree:
        import torch

        tensor = torch.from_numpy(np.array(arrays[tree["tensor"]]))
        if tree["dtype"] == "bfloat16":
            tensor = tensor.view(torch.bfloat16)
        return tensor if device is None else tensor.to(device)
    if "array" in tree:
        return np.array(arrays[tree["array"]])
    if "dict" in tree:
        return {k: unpack_tree(v, arrays, device) for k, v in tree["dict"]}
    if "list" in tree:
        return [unpack_tree(v, arrays, device) for v in tree["list"]]
    return tree["value"]


def _fresh_key(arrays: dict[str, np.ndarray]) -> str:
    n = len(arrays)
    while str(n) in arrays:
        n += 1
    return str(n)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
