"""A thread pool shared fairly by several owners (the apps of one service).

Each owner has at most ``per_owner`` jobs in the pool at once; its further jobs wait in
its own queue, so another owner's job is never stuck behind one owner's backlog, only
behind jobs already running. A job whose caller stops waiting (a deadline, a closed
connection) is dropped if it has not started; one that has started runs to the end and
keeps its owner's slot until then, so abandoning work cannot be used to pile it up.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

# Whose work the current task does; set by whoever dispatches a request.
owner: ContextVar[str] = ContextVar("segmentkit_work_owner", default="")


class FairPool:
    """``await pool.run(fn, *args)`` runs ``fn`` in a worker thread, charged to :data:`owner`."""

    def __init__(self, workers: int, per_owner: int, name: str):
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix=name)
        self.per_owner = per_owner
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # semaphores belong to one event loop
            self._loop, self._slots = loop, {}
        slots = self._slots.setdefault(owner.get(), asyncio.Semaphore(self.per_owner))
        await slots.acquire()
        try:
            future = self.executor.submit(functools.partial(fn, *args, **kwargs))
        except BaseException:
            slots.release()
            raise

        def release(_: Future[Any]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(slots.release)

        future.add_done_callback(release)
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
