"""Resumable segmentation jobs over many images: keyed records, local processes or Ray Data.

:func:`run_jobs` segments a list of :class:`Item` (collected by a face: the batch manifests
of :mod:`segmentkit.batch`) into an output folder: ``results.jsonl`` (one record per image:
the result document plus the job key, model, options, prompts and timing), ``errors.jsonl``,
``summary.json`` and, on request, ``coco.json``, ``masks/`` and ``cutouts/``. A rerun skips
jobs already done. Ray is imported only by ``engine="ray"``.
"""

from __future__ import annotations

from .records import Item, JobSpec, Outcome, Task
from .runner import Reporter, Summary, run_jobs

__all__ = ["Item", "JobSpec", "Outcome", "Reporter", "Summary", "Task", "run_jobs"]
