"""Batch segmentation of image collections: resumable local runs, Ray Data for clusters.

>>> from segmentkit.batch import run_batch
>>> summary = run_batch(["photos/"], "results/", model="classic")     # doctest: +SKIP
>>> summary.done, summary.skipped, summary.failed                     # doctest: +SKIP

The output folder holds ``results.jsonl`` (one record per image: the ``segmentkit.export``
JSON document plus the job key, model, options, prompts and timing), ``errors.jsonl``,
``summary.json`` and, on request, ``coco.json``, ``masks/`` and ``cutouts/``. Rerunning the
same command skips images already done. Ray is imported only by ``engine="ray"``.
"""

from __future__ import annotations

from .inputs import InputError, Item, collect
from .records import JobSpec, Outcome, Task
from .runner import Reporter, Summary, run_batch

__all__ = ["InputError", "Item", "JobSpec", "Outcome", "Reporter", "Summary", "Task", "collect", "run_batch"]
