"""ONNX Runtime for the plugins: providers, session options and one verified export cache.

An export is a folder of ``.onnx`` graphs keyed by what it was made from (model id, the
weights' identity, input size, opset, the plugin's export format, torch's version):
``<root>/<model id>/<key>/``. It is written under a temporary name and renamed into place
with a ``manifest.json`` holding each file's SHA-256; a folder whose files are missing or
do not match is exported again (:func:`ensure_exported`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from segmentkit.weights import derived_cache_root, file_sha256

log = logging.getLogger(__name__)


def physical_cores() -> int:
    """Physical CPU cores available to this process (logical CPUs when unknown)."""
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        allowed = set(range(os.cpu_count() or 1))
    cores: set[tuple[str, str]] = set()
    try:
        for cpu in allowed:
            topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
            cores.add(((topo / "physical_package_id").read_text().strip(), (topo / "core_id").read_text().strip()))
    except OSError:
        return max(1, len(allowed))
    return max(1, len(cores))


def providers(device: str) -> list[str]:
    """CUDA first when the device asks for it and this onnxruntime has it; CPU always."""
    import onnxruntime

    if device.startswith("cuda") and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session_options(intra_op_threads: int | None = None) -> Any:
    """Sequential execution, ``intra_op_threads`` (default: the physical cores), one inter-op
    thread, every graph optimisation, and idle pool threads that sleep instead of spinning
    (the numpy / torch steps around each run need the cores: on a busy 2-core machine a
    SegFormer 720p call took ~25 % longer with spinning)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = intra_op_threads or physical_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # shape-merge notes on traced graphs are harmless
    return options


def session(path: Path, device: str = "cpu", intra_op_threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` for one graph with :func:`session_options`."""
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), session_options(intra_op_threads), providers=providers(device))


def export_dir(model_id: str, key: Sequence[Any], root: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder of one export: ``root`` (default ``$SEGMENTKIT_CACHE/onnx``) /
    model id / a hash of ``key`` (JSON values) and torch's version."""
    import torch

    digest = hashlib.blake2b(json.dumps([*key, torch.__version__]).encode(), digest_size=10).hexdigest()
    base = Path(root).expanduser() if root is not None else derived_cache_root("onnx")
    return base / model_id / digest


def ensure_exported(folder: Path, graphs: Sequence[str], export: Callable[[Path], None]) -> dict[str, Path]:
    """Paths of the verified graphs ``<name>.onnx`` in ``folder``; when any is missing or
    corrupt, ``export(staging)`` writes them all into a fresh folder that replaces it."""
    paths = {name: folder / f"{name}.onnx" for name in graphs}
    if verify(folder, graphs):
        log.debug("reusing the ONNX export in %s", folder)
        return paths
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        log.info("exporting to ONNX in %s", folder)
        export(staging)
        manifest = {"files": {f"{name}.onnx": file_sha256(staging / f"{name}.onnx") for name in graphs}}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a corrupt or partial earlier export
        try:
            os.replace(staging, folder)
        except OSError:  # another process renamed its export into place first
            if not verify(folder, graphs):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths


def verify(folder: Path, graphs: Sequence[str]) -> bool:
    """True when every graph in ``folder`` exists and matches the manifest's SHA-256."""
    try:
        files = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if not isinstance(files, dict) or set(files) != {f"{name}.onnx" for name in graphs}:
        return False
    for name, expected in files.items():
        path = folder / name
        if not path.is_file() or file_sha256(path) != expected:
            log.warning("cached ONNX file %s is missing or corrupt; exporting again", path)
            return False
    return True
