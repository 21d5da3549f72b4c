"""The local engine: a bounded pool of worker processes, each holding the model once.

Tasks are handed out lazily, at most ``2 * workers`` at a time, so memory stays flat for
any number of images. A worker process that dies (out of memory, a crash in native code)
fails only the tasks it had in flight: they become error records and a fresh pool takes
over. ``workers=1`` runs in this process.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from .records import JobSpec, Outcome, Task, error_record, image_info
from .worker import Worker

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_worker: Worker | None = None


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def run_local(tasks: Iterable[Task], spec: JobSpec, roles: tuple[str, ...],
              workers: int) -> Iterator[Outcome]:
    """Yield one outcome per task, in completion order."""
    if workers <= 1:
        worker = Worker(spec, roles)
        for task in tasks:
            yield worker.process(task)
        return
    pending = _Pending(tasks)
    threads = max(1, (os.cpu_count() or 1) // workers)
    while True:
        broken = yield from _run_pool(pending, spec, roles, workers, threads)
        if not broken:
            return
        for task in broken:  # the tasks in flight when a worker died
            yield Outcome(task, error=error_record(
                image_info(task), task.key, spec.model, "model", "worker_died",
                "a worker process died while this image was in flight (out of memory or a crash); "
                "run again to retry it",
            ))


class _Pending:
    """The tasks not handed out yet; one refused by a broken pool goes back in front."""

    def __init__(self, tasks: Iterable[Task]):
        self._tasks = iter(tasks)
        self._back: list[Task] = []

    def next(self) -> Task | None:
        return self._back.pop() if self._back else next(self._tasks, None)

    def push_back(self, task: Task) -> None:
        self._back.append(task)


def _run_pool(pending: _Pending, spec: JobSpec, roles: tuple[str, ...], workers: int,
              threads: int) -> Iterator[Outcome]:
    """Run tasks on one pool; return the in-flight tasks if a worker died, else []."""
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads or a model
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                               initargs=(spec, roles, threads))
    in_flight: dict[Future[Outcome], Task] = {}
    finished = False
    try:
        while True:
            while len(in_flight) < 2 * workers and (task := pending.next()) is not None:
                try:
                    in_flight[pool.submit(_process, task)] = task
                except BrokenProcessPool:  # a worker died since the last wait: this task never ran
                    pending.push_back(task)
                    break
            if not in_flight:
                finished = True
                return []
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                task = in_flight.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    finished = True
                    return [task, *in_flight.values()]
                yield outcome
    finally:
        if not finished:  # interrupted or the consumer stopped: do not wait for in-flight work
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


def _start_worker(spec: JobSpec, roles: tuple[str, ...], threads: int) -> None:
    """Pool initializer: share the CPUs between workers, then load the model once."""
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    for name in THREAD_VARS:
        os.environ.setdefault(name, str(threads))
    _worker = Worker(spec, roles)
    if "torch" in sys.modules:  # libraries the model brought in keep to their share too
        sys.modules["torch"].set_num_threads(threads)
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(threads)


def _process(task: Task) -> Outcome:
    if _worker is None:
        raise RuntimeError("the pool initializer did not run")
    return _worker.process(task)
