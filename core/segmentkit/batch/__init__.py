"""Batch segmentation of image collections: folders, list files and manifests with prompts.

>>> from segmentkit.batch import run_batch
>>> summary = run_batch(["photos/"], "results/", model="classic")     # doctest: +SKIP
>>> summary.done, summary.skipped, summary.failed                     # doctest: +SKIP

This face reads the sources (:mod:`.inputs`); :mod:`segmentkit.jobs` runs them (output
folder, resume, engines).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..jobs import Summary, run_jobs
from .inputs import InputError, collect

__all__ = ["InputError", "collect", "run_batch"]


def run_batch(sources: list[str | Path], out: str | Path, *, glob: str | None = None, **options: Any) -> Summary:
    """Segment every image of ``sources`` into ``out`` (options: :func:`segmentkit.jobs.run_jobs`)."""
    items = collect(sources, glob=glob, exclude=[out])
    if not items:
        raise InputError(f"no images found in {', '.join(map(str, sources))}" + (f" matching {glob!r}" if glob else ""))
    return run_jobs(items, out, **options)
