"""The ``vision.segment_video_*`` methods: tracking sessions over IPC.

A :class:`LiveSession` wraps a tracker's session with what the service needs: an
unguessable id, the app that owns it, a lock serialising calls into it, and the state
of a running propagation. Sessions live in one :class:`~.session_table.SessionTable`
per app (limits, idle eviction, ownership).

Propagation runs frame by frame in a thread of its own (the service's ``tracking``
pool, one thread per running propagation) through
:func:`segmentkit.workpool.stream_in_thread` (a few frames ahead of the reader at most;
cancelling stops it between frames); each frame goes out as a
``vision.segment_video_progress`` notification (or is collected for a plain HTTP answer),
and the answer says whether it was ``cancelled``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..catalog import RegisteredSpec
from ..errors import SessionError, UnknownSessionError
from ..io.video import open_video
from ..model_cache import Loaded, ModelCache
from ..results import ResultDocument, build, model_info
from ..session_files import read_session
from ..workpool import stream_in_thread
from .errors import ErrorCode, RpcError, rpc_error
from .inputs import load_ref, one_object
from .limits import Limits
from .manifest import App
from .protocol import Call
from .schemas import (
    PROGRESS,
    CancelResult,
    CloseResult,
    ExportResult,
    ObjectsResult,
    PropagateResult,
    SaveResult,
    SessionParams,
    VideoAddPromptParams,
    VideoExportParams,
    VideoObjectParams,
    VideoProgress,
    VideoPropagateParams,
    VideoPushFrameParams,
    VideoRestoreParams,
    VideoSaveParams,
    VideoStartParams,
    VideoStartResult,
)
from .session_table import SessionTable

_IN_FLIGHT = 4  # frames computed ahead of the reader


@dataclass(frozen=True)
class ServiceContext:
    """What the session handlers use of their service (which builds it): no import of ``.service``."""

    registry: Any
    limits: Limits
    cache: ModelCache
    tracking: Executor  # one thread per running propagation
    run: Callable[..., Awaitable[Any]]  # a blocking call in the shared pool, charged to the app
    pick_model: Callable[[App, str | None, str], RegisteredSpec]


@dataclass(eq=False)
class _Run:
    """One running propagation."""

    cancel: threading.Event = field(default_factory=threading.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False)
class LiveSession:
    """A tracking session as the service holds it (what the SessionTable stores)."""

    id: str
    app_id: str
    model_id: str
    loaded: Loaded
    session: Any  # segmentkit.handles.Session
    stream: bool
    lock: threading.Lock = field(default_factory=threading.Lock)
    run: _Run | None = None
    closed: bool = False

    def close(self) -> None:
        """Stop a propagation and close the tracker's session (idempotent, any thread)."""
        if self.run is not None:
            self.run.cancel.set()
        with self.lock:
            if not self.closed:
                self.closed = True
                self.session.close()

    def step(self, fn: Callable[[Any], Any]) -> Any:
        """Call ``fn(tracking_session)`` holding the session and the model."""
        with self.lock:
            if self.closed:
                raise SessionError(f"session {self.id!r} was closed")
            with self.loaded.use():
                return fn(self.session)


def lost_session(session_id: str) -> RpcError:
    """The documented ``session_error`` of a session this server does not hold (any more)."""
    return rpc_error(
        ErrorCode.SESSION_ERROR,
        f"unknown session {session_id!r}: it is not open on this server (under --engine ray, the replica "
        "holding it may have died); continue from your latest vision.segment_video_save with "
        "vision.segment_video_restore",
        session=session_id, recover="vision.segment_video_restore",
    )


class VideoMethods:
    """Session handlers of one :class:`~.service.Service`, for the apps ``app_ids``."""

    def __init__(self, context: ServiceContext, app_ids: Iterable[str]):
        self.context = context
        self.id_prefix = ""  # before every session id (a Ray replica puts its name: segmentkit.rayserve.affinity)
        limits = context.limits
        self.tables = {app_id: SessionTable(max_sessions=limits.max_sessions, idle_timeout_s=limits.idle_timeout_s)
                       for app_id in app_ids}

    def handlers(self) -> dict[str, Callable[..., Any]]:
        return {
            "vision.segment_video_start": self.start,
            "vision.segment_video_add_prompt": self.add_prompt,
            "vision.segment_video_push_frame": self.push_frame,
            "vision.segment_video_propagate": self.propagate,
            "vision.segment_video_cancel": self.cancel,
            "vision.segment_video_close": self.close,
            "vision.segment_video_remove_object": self.remove_object,
            "vision.segment_video_reset": self.reset,
            "vision.segment_video_save": self.save,
            "vision.segment_video_export": self.export,
            "vision.segment_video_restore": self.restore,
        }

    def count(self, app: App) -> int:
        return len(self.tables[app.id])

    def evict_idle(self) -> list[str]:
        return [sid for table in self.tables.values() for sid in table.evict_idle()]

    async def close_all(self) -> None:
        """Close every session of every app (closing stops a running propagation first)."""
        for table in self.tables.values():
            await self.context.run(table.close_all)

    def _get(self, app: App, session_id: str, *, idle: bool = True) -> LiveSession:
        try:
            live: LiveSession = self.tables[app.id].get(session_id, owner=app.id)
        except UnknownSessionError:  # never opened, or the process (replica) holding it is gone
            raise lost_session(session_id) from None
        if idle and live.run is not None:
            raise rpc_error(
                ErrorCode.SESSION_BUSY,
                f"session {session_id!r} is propagating; wait for it or call segment_video_cancel",
                session=session_id,
            )
        return live

    # ------------------------------------------------------------------ methods

    async def start(self, params: VideoStartParams, call: Call) -> VideoStartResult:
        app = call.app
        if params.stream:
            app.check_camera("a live (stream) session")
        model_id = self.context.pick_model(app, params.model, "tracker").spec.card.id
        source = None if params.source is None else str(app.check_path(params.source.path))
        return await self._open(app, model_id, lambda tracker: tracker.start(self._frames(app, source),
                                                                            stream=params.stream))

    async def restore(self, params: VideoRestoreParams, call: Call) -> VideoStartResult:
        app = call.app
        path = app.check_path(params.path)
        saved = await self.context.run(read_session, path)
        entry = self.context.pick_model(app, params.model or saved.manifest["model"] or None, "tracker")
        video = saved.manifest["source"]
        source = None if video is None else str(app.check_path(video))
        frames = lambda tracker: tracker.restore(path, self._frames(app, source))  # noqa: E731
        return await self._open(app, entry.spec.card.id, frames)

    def _frames(self, app: App, source: str | None) -> Any:
        """The frames of ``source``, read only from files inside ``app``'s grants (links resolved)."""
        limit = self.context.limits.max_pixels
        return None if source is None else open_video(source, roots=app.roots, max_pixels=limit)

    async def _open(self, app: App, model_id: str, make: Callable[[Any], Any]) -> VideoStartResult:
        table = self.tables[app.id]

        def job() -> LiveSession:
            table.evict_idle()
            if len(table) >= table.max_sessions:
                raise SessionError(
                    f"app {app.id!r} has {len(table)} open sessions, the limit; close one first"
                )
            loaded = self.context.cache.get(model_id, "tracker")
            with loaded.use() as tracker:
                session = make(tracker)
            live = LiveSession(self.id_prefix + secrets.token_urlsafe(16), app.id, model_id, loaded, session,
                               session.is_stream)
            try:
                table.add(live, owner=app.id)
            except BaseException:
                live.close()
                raise
            return live

        live = await self.context.run(job)
        return VideoStartResult(
            session=live.id, model=live.model_id, stream=live.stream,
            num_frames=int(live.session.num_frames), frame_size=live.session.frame_size,
        )

    async def add_prompt(self, params: VideoAddPromptParams, call: Call) -> ResultDocument:
        live = self._get(call.app, params.session)

        def job() -> ResultDocument:
            def add(session: Any) -> Any:
                prompts = one_object(params, _pixels(session.frame_size, self.context.limits.max_pixels))
                return session.add_prompts(params.frame, params.object_id, prompts)

            return build(live.step(add), model=model_info(live.session.tracker))

        return await self.context.run(job)

    async def push_frame(self, params: VideoPushFrameParams, call: Call) -> ResultDocument:
        call.app.check_camera("segment_video_push_frame")
        live = self._get(call.app, params.session)
        if not live.stream:
            raise SessionError(f"session {params.session!r} reads a video; push_frame needs stream: true")

        def job() -> ResultDocument:
            image = load_ref(params.image, call.app, self.context.limits.max_pixels)
            return build(live.step(lambda s: s.push_frame(image)), model=model_info(live.session.tracker))

        return await self.context.run(job)

    async def propagate(self, params: VideoPropagateParams, call: Call) -> PropagateResult:
        live = self._get(call.app, params.session)
        run = live.run = _Run()
        try:
            frames = await self.context.run(live.step, lambda s: s.propagate(
                params.start, direction=params.walk, max_frames=params.max_frames))
        except BaseException:
            live.run = None
            raise

        def step() -> ResultDocument | None:
            frame = live.step(lambda _: next(frames, None))
            return None if frame is None else build(frame, model=model_info(live.session.tracker))

        def finish() -> None:
            with live.lock, contextlib.suppress(Exception):
                frames.close()

        table = self.tables[call.app.id]
        collected: list[ResultDocument] = []  # for a plain HTTP answer; else each frame is a notification
        done = 0
        stream = stream_in_thread(step, self.context.tracking, run.cancel, ahead=_IN_FLIGHT, finish=finish,
                                  stopped=SessionError)  # closed while it ran
        try:
            async with contextlib.aclosing(stream):
                async for document in stream:
                    done += 1
                    with contextlib.suppress(SessionError):
                        table.get(live.id, owner=call.app.id)  # in use: not idle
                    if call.notify is None:
                        collected.append(document)
                        continue
                    progress = VideoProgress(session=live.id, request_id=call.request_id, done=done,
                                             total=frames.total, frame=document)
                    await call.notify(PROGRESS, progress.model_dump(mode="json"))
        finally:
            live.run = None
            run.finished.set()
        return PropagateResult(session=live.id, frames_done=done, cancelled=run.cancel.is_set(),
                               frames=collected if call.notify is None else None)

    async def remove_object(self, params: VideoObjectParams, call: Call) -> ObjectsResult:
        live = self._get(call.app, params.session)
        ids = await self.context.run(live.step, lambda s: (s.remove_object(params.object_id), s.object_ids)[1])
        return ObjectsResult(session=live.id, object_ids=ids)

    async def reset(self, params: SessionParams, call: Call) -> ObjectsResult:
        live = self._get(call.app, params.session)
        ids = await self.context.run(live.step, lambda s: (s.reset(), s.object_ids)[1])
        return ObjectsResult(session=live.id, object_ids=ids)

    async def save(self, params: VideoSaveParams, call: Call) -> SaveResult:
        live = self._get(call.app, params.session)
        target = Path(params.path)
        if target.name in ("", ".", ".."):
            raise SessionError(f"{params.path!r} does not name a file to save to")
        folder = call.app.check_path(str(target.parent))  # the file may not exist yet; its folder must
        path = await self.context.run(live.step, lambda s: s.save(folder / target.name))
        return SaveResult(session=live.id, path=str(path))

    async def export(self, params: VideoExportParams, call: Call) -> ExportResult:
        from ..formats import choose
        from ..video_export import export_session

        if params.formats:  # names against this service's format table (built-in and plugins')
            choose(params.formats, "video", self.context.registry)
        live = self._get(call.app, params.session)
        folder = call.app.check_path(params.dir)
        paths = await self.context.run(live.step, lambda s: export_session(s, folder, params.formats,
                                                                                 self.context.registry))
        return ExportResult(session=live.id, paths=[str(p) for p in paths])

    async def cancel(self, params: SessionParams, call: Call) -> CancelResult:
        live = self._get(call.app, params.session, idle=False)
        run = live.run
        if run is None:
            return CancelResult(session=live.id, cancelled=False)
        run.cancel.set()
        await run.finished.wait()
        return CancelResult(session=live.id, cancelled=True)

    async def close(self, params: SessionParams, call: Call) -> CloseResult:
        live = self._get(call.app, params.session, idle=False)
        run = live.run
        if run is not None:
            run.cancel.set()
            await run.finished.wait()
        await self.context.run(self.tables[call.app.id].close, params.session, call.app.id)
        return CloseResult(session=live.id, closed=True)


def _pixels(frame_size: tuple[int, int] | None, max_pixels: int) -> int:
    """The most pixels a mask prompt may describe: the frame's, once there is a frame."""
    return max_pixels if frame_size is None else min(max_pixels, frame_size[0] * frame_size[1])
