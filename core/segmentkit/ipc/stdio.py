"""JSON-RPC over stdio: one JSON message per line in, one per line out.

For a host that spawns ``segmentkit serve --stdio``. Requests are handled concurrently
(a ``segment_video_cancel`` can overtake a running propagation), so responses may come
out of order: match them by ``id``. Progress notifications of a propagation arrive
before its response. A line over the request limit is answered with a
``payload_too_large`` error (``id`` null) and skipped. At end of input the server
finishes the requests in flight, answers them, and exits.

Anything else that writes to stdout (a chatty plugin, a C library) is sent to stderr,
so the protocol stream stays clean.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sys
import threading
from typing import Any, BinaryIO

from .manifest import App
from .protocol import dumps, error_response, leading_id, notification, too_large
from .service import Service

_CHUNK = 1 << 16


def _read_lines(fd: int, limit: int, loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue[Any]) -> None:
    """Thread: split ``fd`` into lines; an oversized line becomes (its size, its first bytes)."""
    buffer = bytearray()
    skipping = 0  # > 0 while discarding the rest of an oversized line
    head = b""
    while True:
        try:
            chunk = os.read(fd, _CHUNK)
        except OSError:
            chunk = b""
        if not chunk:
            break
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if skipping:
                skipping += len(piece)
            else:
                buffer += piece
                if len(buffer) > limit:
                    skipping, head, buffer = len(buffer), bytes(buffer[:256]), bytearray()
            if end < 0:
                break
            if skipping:
                loop.call_soon_threadsafe(inbox.put_nowait, (skipping, head))
                skipping = 0
            elif buffer.strip():
                loop.call_soon_threadsafe(inbox.put_nowait, bytes(buffer))
            buffer = bytearray()
            start = end + 1
    if skipping or buffer.strip():
        loop.call_soon_threadsafe(inbox.put_nowait, (skipping, head) if skipping else bytes(buffer))
    loop.call_soon_threadsafe(inbox.put_nowait, None)


def _write_lines(out: BinaryIO, outbox: queue.Queue[bytes | None]) -> None:
    """Thread: write queued lines (a host that stops reading blocks only this thread)."""
    while (line := outbox.get()) is not None:
        try:
            out.write(line)
            out.flush()
        except (BrokenPipeError, OSError):
            break


async def serve_stdio(service: Service, app: App, *, stdin_fd: int = 0, stdout_fd: int = 1) -> None:
    """Serve ``app`` on stdin / stdout until end of input."""
    loop = asyncio.get_running_loop()
    out = os.fdopen(os.dup(stdout_fd), "wb")
    if stdout_fd == 1:  # stray writes to stdout go to stderr from now on
        sys.stdout.flush()
        os.dup2(2, 1)
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    outbox: queue.Queue[bytes | None] = queue.Queue()
    limit = service.limits.max_request_bytes
    reader = threading.Thread(target=_read_lines, args=(stdin_fd, limit, loop, inbox), daemon=True,
                              name="segmentkit-stdin")
    writer = threading.Thread(target=_write_lines, args=(out, outbox), daemon=True, name="segmentkit-stdout")
    reader.start()
    writer.start()

    def send(document: Any) -> None:
        outbox.put((dumps(document) + "\n").encode("utf-8"))

    async def notify(method: str, params: dict[str, Any]) -> None:
        send(notification(method, params))

    async def answer(raw: bytes) -> None:
        response = await service.handle(raw, app, notify)
        if response is not None:
            send(response)

    tasks: set[asyncio.Task[None]] = set()
    room = asyncio.Semaphore(service.limits.max_in_flight)

    def finished(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        room.release()

    await service.start()
    try:
        while (item := await inbox.get()) is not None:
            if isinstance(item, tuple):
                size, head = item
                send(error_response(leading_id(head), too_large(size, limit)))
                continue
            await room.acquire()  # at most max_in_flight requests run; the rest wait their turn
            task = asyncio.create_task(answer(item))
            tasks.add(task)
            task.add_done_callback(finished)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for task in tasks:
            task.cancel()
        await service.aclose()
        outbox.put(None)
        await loop.run_in_executor(None, writer.join)
        out.close()
