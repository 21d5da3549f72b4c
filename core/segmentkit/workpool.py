"""Thread pools for asyncio hosts: one shared fairly by several owners (the apps of one
service), and a blocking producer streamed to an async reader.

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
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
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


_END = object()


async def stream_in_thread(step: Callable[[], Any], executor: Executor, cancel: threading.Event, *,
                           ahead: int = 4, finish: Callable[[], None] | None = None,
                           stopped: type[BaseException] | tuple[type[BaseException], ...] = ()) -> AsyncIterator[Any]:
    """Items of a blocking producer, computed on a thread of ``executor`` while the caller reads.

    ``step()`` returns the next item, or ``None`` at the end. At most ``ahead`` items wait
    unread, so a slow reader slows the producer instead of filling memory. Setting ``cancel``
    stops the producer between items; a ``stopped`` exception raised once ``cancel`` is set
    ends the stream quietly (what it read was closed under it). ``finish()`` runs on the
    producer's thread at the end. Closing the stream early (use :func:`contextlib.aclosing`)
    cancels the producer and waits for it.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    room = threading.Semaphore(ahead)

    def put(item: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def produce() -> None:
        try:
            while not cancel.is_set():
                try:
                    item = step()
                except stopped:
                    if cancel.is_set():
                        break
                    raise
                if item is None:
                    break
                while not room.acquire(timeout=0.1):
                    if cancel.is_set():
                        return
                put(item)
        finally:
            if finish is not None:
                finish()

    def done(future: asyncio.Future[None]) -> None:
        error = None if future.cancelled() else future.exception()
        put(_END if error is None else error)

    work = loop.run_in_executor(executor, produce)
    work.add_done_callback(done)
    try:
        while (item := await queue.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            room.release()
            yield item
    finally:
        if not work.done():  # the reader left early or failed
            cancel.set()
            with contextlib.suppress(BaseException):
                await asyncio.shield(work)
