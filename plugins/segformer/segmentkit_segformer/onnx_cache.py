"""Export a SegFormer checkpoint to ONNX once, keep it in a cache folder, reuse it.

The cache key is the model id, the weights' identity (the hub snapshot's commit, or a
content hash of a local checkpoint's files), the input size, the opset and the exporter's
torch version. Each export is written to a temporary file and renamed into place together
with a ``meta.json`` holding the file's SHA-256; a file whose hash or ONNX Runtime load
fails is exported again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from segmentkit.weights import derived_cache_root, file_sha256

log = logging.getLogger(__name__)

FORMAT = 2  # bump when the export itself changes (2: folded decode head)


def cache_root(override: str | os.PathLike[str] | None = None) -> Path:
    """Where exported models live: ``override``, ``$SEGMENTKIT_CACHE/onnx`` or ``~/.cache/segmentkit/onnx``."""
    if override is not None:
        return Path(override).expanduser()
    return derived_cache_root("onnx")


def cache_dir(root: Path, model_id: str, identity: str, input_size: tuple[int, int], opset: int) -> Path:
    import torch

    key = hashlib.blake2b(
        json.dumps([FORMAT, identity, list(input_size), opset, torch.__version__]).encode(), digest_size=10
    ).hexdigest()
    return root / model_id / key


def load_or_export(folder: Path, export: Callable[[Path], None], providers: list[str],
                   threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``folder/model.onnx``, exporting it first if needed.

    ``threads``: intra-op threads (None: ONNX Runtime's default, the physical cores).
    """
    model_path = folder / "model.onnx"
    session = _open_verified(model_path, providers, threads)
    if session is not None:
        log.debug("reusing ONNX export %s", model_path)
        return session
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".export-", suffix=".onnx", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        log.info("exporting ONNX model to %s", model_path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export(tmp)
        sha = file_sha256(tmp)
        os.replace(tmp, model_path)
        _write_atomic(folder / "meta.json", json.dumps({"sha256": sha, "format": FORMAT}))
    finally:
        tmp.unlink(missing_ok=True)
    return _session(model_path, providers, threads)


def _open_verified(model_path: Path, providers: list[str], threads: int | None) -> Any:
    meta_path = model_path.with_name("meta.json")
    if not (model_path.is_file() and meta_path.is_file()):
        return None
    try:
        expected = json.loads(meta_path.read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("ONNX cache metadata %s is unreadable; exporting again", meta_path)
        return None
    if file_sha256(model_path) != expected:
        log.warning("cached ONNX model %s is corrupt (hash mismatch); exporting again", model_path)
        return None
    try:
        return _session(model_path, providers, threads)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        log.warning("cached ONNX model %s does not load (%s); exporting again", model_path, exc)
        return None


def _session(model_path: Path, providers: list[str], threads: int | None) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or 0  # 0: ONNX Runtime's default
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads sleep instead of spinning: the numpy / torch steps around each run need
    # the cores (on a busy 2-core machine a 720p call took ~25 % longer with spinning).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(model_path), options, providers=providers)



def _write_atomic(path: Path, text: str) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=".meta-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
