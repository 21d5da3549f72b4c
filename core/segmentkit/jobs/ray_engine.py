"""The Ray Data engine: the same tasks and the same worker code, on a Ray cluster.

The tasks become a dataset (``ray.data.from_items``); ``map_batches`` runs them on an
actor pool whose actors each hold the model once; the driver streams the outcomes back
and writes every output itself, so the output folder is the same as the local engine's.
Ray is imported here only, when this engine runs: ``pip install 'segmentkit[ray]'``.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import MissingDependencyError, SegmentkitError
from .records import JobSpec, Outcome, Task
from .worker import Worker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide the Ray engine runs."""

    address: str | None = None  # an existing cluster ("auto", "ray://host:10001"); None starts a local Ray
    workers: int = 2  # actors in the pool, each holding one model
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    batch_size: int = 4  # images per map_batches call
    log_level: int = logging.WARNING  # of Ray's own loggers, when this engine starts Ray


def import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingDependencyError("ray[data]", "pip install 'segmentkit[ray]'", purpose="--engine ray") \
            from None
    return ray


class RayWorker:
    """An actor of the pool: one model, and a batch of pickled tasks in, outcomes out."""

    def __init__(self, spec: JobSpec, roles: tuple[str, ...]):
        self.worker = Worker(spec, roles)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outcomes = [pickle.dumps(self.worker.process(pickle.loads(blob))) for blob in batch["task"]]
        return {"outcome": np.array(outcomes, dtype=object)}


def run_ray(tasks: Iterable[Task], spec: JobSpec, roles: tuple[str, ...],
            options: RayOptions) -> Iterator[Outcome]:
    """Yield one outcome per task as the actors finish them (order not kept)."""
    rows = [{"task": pickle.dumps(task)} for task in tasks]
    if not rows:
        return
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        local_cpus = None if options.address else max(os.cpu_count() or 1,
                                                      math.ceil(options.workers * options.cpus_per_worker))
        ray.init(address=options.address, num_cpus=local_cpus, include_dashboard=False,
                 logging_level=options.log_level)
        logging.getLogger("ray.data").setLevel(max(options.log_level, logging.WARNING))
    try:
        _check_resources(ray, options, local=not options.address)
        ray.data.DataContext.get_current().enable_progress_bars = False  # the CLI draws its own
        dataset = ray.data.from_items(rows).map_batches(
            RayWorker,
            fn_constructor_kwargs={"spec": spec, "roles": roles},
            batch_size=options.batch_size,
            compute=ray.data.ActorPoolStrategy(size=options.workers),
            num_cpus=options.cpus_per_worker,
            num_gpus=options.gpus_per_worker or None,
        )
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for blob in batch["outcome"]:
                yield pickle.loads(blob)
    finally:
        if started:
            ray.shutdown()


def _check_resources(ray: Any, options: RayOptions, *, local: bool) -> None:
    """Refuse a pool a local Ray can never place (it would wait forever); a cluster may scale up."""
    have = ray.cluster_resources()
    for name, per_worker in (("CPU", options.cpus_per_worker), ("GPU", options.gpus_per_worker)):
        need, has = options.workers * per_worker, have.get(name, 0.0)
        if need > has + 1e-9:
            message = (f"{options.workers} Ray workers x {per_worker:g} {name} need {need:g} {name}, "
                       f"the cluster has {has:g}; lower --workers or --{name.lower()}s-per-worker")
            if local:
                raise SegmentkitError(message)
            log.warning("%s (waiting for the cluster to scale up)", message)
