"""``segmentkit.workpool.stream_in_thread``: a blocking producer read from asyncio, bounded and cancellable."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from segmentkit.workpool import stream_in_thread


class Producer:
    """Counts 0..n-1 on the producer's thread and notes how far it got and where it ran."""

    def __init__(self, n: int, fail_at: int | None = None):
        self.n, self.fail_at = n, fail_at
        self.made = 0
        self.threads: set[str] = set()
        self.finished = threading.Event()

    def step(self) -> Any:
        self.threads.add(threading.current_thread().name)
        if self.made == self.fail_at:
            raise ValueError(f"broken at {self.made}")
        if self.made == self.n:
            return None
        self.made += 1
        return self.made - 1

    def finish(self) -> None:
        self.finished.set()


def collect(producer: Producer, cancel: threading.Event, *, ahead: int = 2, take: int | None = None,
            pause_s: float = 0.0) -> tuple[list[Any], int]:
    """Read the stream (``take`` items, or all), returning the items and how many were made
    when the reader had taken its last one."""

    async def main() -> tuple[list[Any], int]:
        got: list[Any] = []
        made_then = 0
        with ThreadPoolExecutor(1, thread_name_prefix="producer") as pool:
            stream = stream_in_thread(producer.step, pool, cancel, ahead=ahead, finish=producer.finish)
            async with contextlib.aclosing(stream):
                async for item in stream:
                    got.append(item)
                    if pause_s:
                        await asyncio.sleep(pause_s)
                    made_then = producer.made
                    if take is not None and len(got) == take:
                        break
        return got, made_then

    return asyncio.run(main())


def test_every_item_in_order_on_the_executor_thread() -> None:
    producer = Producer(10)
    got, _ = collect(producer, threading.Event())
    assert got == list(range(10))
    assert {name.split("_")[0] for name in producer.threads} == {"producer"}
    assert producer.finished.is_set()


def test_a_slow_reader_holds_the_producer_back() -> None:
    producer = Producer(50)
    got, made_then = collect(producer, threading.Event(), ahead=3, take=5, pause_s=0.05)
    assert got == [0, 1, 2, 3, 4]
    # the producer may run `ahead` items past what was read (+1 it is making while it waits)
    assert made_then <= 5 + 3 + 1
    assert producer.made < 50 and producer.finished.is_set()


def test_leaving_early_cancels_the_producer() -> None:
    producer = Producer(10_000)
    cancel = threading.Event()
    got, _ = collect(producer, cancel, take=3)
    assert got == [0, 1, 2] and cancel.is_set()
    made = producer.made
    time.sleep(0.2)
    assert producer.made == made < 10_000  # stopped, not running on in the background
    assert producer.finished.is_set()


def test_cancel_stops_between_items() -> None:
    producer = Producer(10_000)
    cancel = threading.Event()

    async def main() -> list[Any]:
        got = []
        with ThreadPoolExecutor(1) as pool:
            async with contextlib.aclosing(stream_in_thread(producer.step, pool, cancel, ahead=1)) as stream:
                async for item in stream:
                    got.append(item)
                    if item == 4:
                        cancel.set()
        return got

    got = asyncio.run(main())
    assert got[:5] == [0, 1, 2, 3, 4] and len(got) <= 6 and producer.made < 10_000


def test_a_producer_error_reaches_the_reader_after_the_items_before_it() -> None:
    producer = Producer(10, fail_at=4)
    got: list[Any] = []

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            async for item in stream_in_thread(producer.step, pool, threading.Event(), finish=producer.finish):
                got.append(item)

    with pytest.raises(ValueError, match="broken at 4"):
        asyncio.run(main())
    assert got == [0, 1, 2, 3] and producer.finished.is_set()


def test_a_stopped_error_after_cancel_ends_quietly() -> None:
    cancel = threading.Event()
    calls = iter(range(3))

    def step() -> Any:
        item = next(calls, None)
        if item == 2:
            cancel.set()  # e.g. the session was closed while a frame was computed
            raise LookupError("closed")
        return item

    async def main() -> list[Any]:
        with ThreadPoolExecutor(1) as pool:
            return [i async for i in stream_in_thread(step, pool, cancel, stopped=LookupError)]

    assert asyncio.run(main()) == [0, 1]
