"""The output folder of a batch run, written so that a kill loses at most one record.

``results.jsonl`` and ``errors.jsonl`` grow one line at a time (write, flush, fsync);
every other file is written to a temporary name and renamed into place. A run holds an
exclusive lock on the folder so two runs never interleave their lines.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from ..errors import SegmentkitError
from ..formats import atomic_write

log = logging.getLogger(__name__)

RESULTS = "results.jsonl"
ERRORS = "errors.jsonl"
SUMMARY = "summary.json"
COCO = "coco.json"
LOCK = ".lock"


class JsonlWriter:
    """Appends JSON lines durably; drops a torn last line left by a killed run first."""

    def __init__(self, path: Path):
        self.path = path
        _drop_torn_tail(path)
        self._handle: IO[bytes] = open(path, "ab")  # noqa: SIM115 - kept open for appends until close()

    def append(self, record: Mapping[str, Any]) -> int:
        """Write one record as one line; return the byte offset it starts at."""
        data = (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()
        offset = self._handle.tell()
        self._handle.write(data)
        self._handle.flush()
        os.fsync(self._handle.fileno())
        return offset

    def close(self) -> None:
        self._handle.close()


def _drop_torn_tail(path: Path) -> None:
    """Cut a file back to its last newline (a line cut short by a kill is not a record)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as handle:
        handle.seek(0, os.SEEK_END)
        size = end = handle.tell()
        while end > 0:
            step = min(65536, end)
            handle.seek(end - step)
            chunk = handle.read(step)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                end = end - step + cut + 1
                break
            end -= step
        if end != size:
            log.warning("%s: dropping an incomplete last line (%d bytes) left by an interrupted run",
                        path, size - end)
            handle.truncate(end)
            handle.flush()
            os.fsync(handle.fileno())


class OutputDir:
    """An output folder held by one run: the JSONL writers, the lock and atomic files."""

    def __init__(self, root: Path):
        if root.exists() and not root.is_dir():
            raise SegmentkitError(f"--out {root} exists and is not a folder")
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self._lock = open(root / LOCK, "w")  # noqa: SIM115 - holds the folder lock until close()
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise SegmentkitError(
                f"another batch run is writing to {root}; wait for it or pick another --out") from None
        self.results = JsonlWriter(root / RESULTS)
        self.errors = JsonlWriter(root / ERRORS)

    def write_files(self, files: Mapping[str, bytes]) -> None:
        """Write ``name -> bytes`` under the folder, each atomically."""
        for name, data in files.items():
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data)

    def write_json(self, name: str, document: Any) -> Path:
        return atomic_write(self.root / name, json.dumps(document, indent=1, allow_nan=False).encode())

    def close(self) -> None:
        self.results.close()
        self.errors.close()
        self._lock.close()

    def __enter__(self) -> OutputDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def coco_document(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One COCO dataset (images, annotations, categories) for all ``records``.

    Each record's result is rebuilt and passed through :func:`segmentkit.export.to_coco`,
    so the batch COCO file matches what ``segmentkit segment --format coco`` writes.
    """
    from ..export import to_coco
    from ..results import ResultDocument

    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    categories: dict[int, str] = {}
    for image_id, record in enumerate(records, start=1):
        document = ResultDocument.model_validate(record["result"])
        info = {"file_name": record["source"]["file_name"]}
        part = to_coco(document.to_masks(), info, image_id=image_id, first_annotation_id=len(annotations) + 1)
        images.extend(part["images"])
        annotations.extend(part["annotations"])
        for category in part["categories"]:
            categories.setdefault(int(category["id"]), category["name"])
    return {
        "info": {"description": "segmentkit batch", "version": "1.0"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c, "name": n} for c, n in sorted(categories.items())],
    }

