"""The IPC service: the ``vision.*`` methods over one registry, for any number of apps.

Transport-independent; :mod:`.stdio` and :mod:`.http` feed it raw messages. Decoding,
inference and encoding run in a thread pool shared fairly by the apps
(:class:`~segmentkit.workpool.FairPool`), never on the event loop. Models are loaded
once and shared by every client (:class:`~segmentkit.model_cache.ModelCache`); each app gets its own
session table, so apps never see each other's sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .. import pipeline
from ..catalog import RegisteredSpec
from ..embedding_cache import EmbeddingCache
from ..errors import UnknownModelError
from ..io.image import image_key
from ..model_cache import ModelCache
from ..plan import make_plan
from ..results import ResultDocument
from ..workpool import FairPool
from .errors import ErrorCode, rpc_error
from .inputs import load_ref, objects, ref_path
from .limits import Limits
from .manifest import App
from .metrics import Latencies
from .protocol import Call, Dispatcher, Notify
from .schemas import (
    METHODS,
    LoadedModel,
    MaskFromPromptParams,
    ModelsParams,
    ModelsResult,
    SegmentParams,
    StatsParams,
    StatsResult,
)
from .video import ServiceContext, VideoMethods

log = logging.getLogger(__name__)
T = TypeVar("T")


class Service:
    """Answers JSON-RPC messages for the apps it was given (by app id)."""

    def __init__(
        self,
        registry: Any = None,
        apps: Sequence[App] = (),
        *,
        limits: Limits | None = None,
        load_options: dict[str, Any] | None = None,
        model_options: dict[str, dict[str, Any]] | None = None,
    ):
        if registry is None:
            from ..registry import default_registry

            registry = default_registry()
        self.registry = registry
        self.limits = limits or Limits()
        self.apps = {app.id: app for app in (apps or [App.local()])}
        self.cache = ModelCache(registry, load_options, model_options)
        self.embeddings = EmbeddingCache(self.limits.max_embeddings)
        self.latencies = Latencies()
        self.pool = FairPool(self.limits.workers, self.limits.max_app_jobs, "segmentkit-ipc")
        # A propagation holds a thread for its whole run (a tracker's generator stays on one
        # thread); these threads are its own, so long videos never starve the other requests.
        self.tracking = ThreadPoolExecutor(
            self.limits.max_sessions * len(self.apps), thread_name_prefix="segmentkit-track"
        )
        self.video = VideoMethods(ServiceContext(registry, self.limits, self.cache, self.tracking, self.run,
                                                 self.pick_model), self.apps)
        handlers: dict[str, Callable[..., Any]] = {
            "vision.models": self.models,
            "vision.segment": self.segment,
            "vision.mask_from_prompt": self.mask_from_prompt,
            "vision.stats": self.stats,
            **self.video.handlers(),
        }
        self.dispatcher = Dispatcher(
            {name: (METHODS[name][0], handler) for name, handler in handlers.items()},
            max_bytes=self.limits.max_request_bytes, max_batch=self.limits.max_batch,
            deadline_s=self.limits.request_timeout_s, offload=self.run,
            unbounded=frozenset({"vision.segment_video_propagate"}), observe=self.latencies.observe,
        )
        self._sweeper: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def handle(self, raw: bytes | str, app: App, notify: Notify | None = None) -> Any:
        """The JSON-RPC response document for one raw message (``None``: no response)."""
        return await self.dispatcher.handle(raw, app, notify)

    async def start(self) -> None:
        """Start the idle-session sweeper (call from the event loop that serves)."""
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep(), name="segmentkit-session-sweeper")

    async def aclose(self) -> None:
        """Stop the sweeper, stop propagations, close every session, stop the threads."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self.video.close_all()
        self.pool.shutdown()
        self.tracking.shutdown(wait=False, cancel_futures=True)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.limits.sweep_interval_s)
            try:
                evicted = await self.run(self.video.evict_idle)
            except Exception:  # the sweeper must outlive one bad close()
                log.exception("idle session sweep failed")
                continue
            if evicted:
                log.info("closed idle sessions: %s", ", ".join(evicted))

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking ``fn`` in the service's thread pool, charged to the calling app."""
        return await self.pool.run(fn, *args, **kwargs)

    # ------------------------------------------------------------------ model choice

    def pick_model(self, app: App, requested: str | None, role: str) -> RegisteredSpec:
        """The model a call uses: granted to ``app``, installed in ``role``."""
        if requested is None:
            return self._default_model(app, role)
        if not app.allows_model([requested]):
            try:
                card = self.registry.resolve(requested).spec.card
            except UnknownModelError:
                card = None
            if card is None or not app.allows_model([card.id, *card.aliases]):
                raise rpc_error(
                    ErrorCode.MODEL_DENIED,
                    f"model {requested!r} is not in app {app.id!r}'s capabilities.models", model=requested,
                )
        return self.registry.resolve(requested, role)

    def _default_model(self, app: App, role: str) -> RegisteredSpec:
        if app.models is None:
            return self.registry.resolve(self.registry.default_model_id(role), role)
        for name in app.models:
            with contextlib.suppress(UnknownModelError):
                return self.registry.resolve(name, role)
        raise rpc_error(
            ErrorCode.UNKNOWN_MODEL,
            f"no installed {role} model is granted to app {app.id!r}; pass model= or extend capabilities.models",
        )

    # ------------------------------------------------------------------ methods

    async def models(self, params: ModelsParams, call: Call) -> ModelsResult:
        infos = self.registry.models(role=params.role, task=params.task)
        return ModelsResult(models=[i.entry() for i in infos if call.app.allows_model([i.card.id, *i.card.aliases])])

    async def segment(self, params: SegmentParams, call: Call) -> ResultDocument:
        plan = make_plan(self.pick_model(call.app, params.model, "segmenter"), task=params.task)

        def job() -> ResultDocument:
            image = load_ref(params.image, call.app, self.limits.max_pixels)
            with self.cache.get(plan.card.id, "segmenter").use() as model:
                seg, document = pipeline.segment(model, image, task=params.task, path=ref_path(params.image))
            return pipeline.attach_files(document, seg, image, params.formats, self.registry)

        return await self.run(job)

    async def mask_from_prompt(self, params: MaskFromPromptParams, call: Call) -> ResultDocument:
        entry = self.pick_model(call.app, params.model, "prompter")

        def job() -> ResultDocument:
            plan = make_plan(entry, objects=objects(params, self.limits.max_pixels))
            image = load_ref(params.image, call.app, self.limits.max_pixels)
            with self.cache.get(plan.card.id, "prompter").use() as model:

                def embed(rgb: Any) -> Any:
                    return self.embeddings.get((plan.card.id, image_key(rgb)), lambda: model.embed(rgb))

                masks, document = pipeline.prompt(model, image, plan.objects, multimask=params.multimask,
                                                  path=ref_path(params.image), embed=embed)
            return pipeline.attach_files(document, masks, image, params.formats, self.registry)

        return await self.run(job)

    async def stats(self, params: StatsParams, call: Call) -> StatsResult:
        loaded = [
            LoadedModel(model=m.model_id, role=m.role, loads=m.loads, calls=m.calls)  # type: ignore[arg-type]
            for m in self.cache.stats() if call.app.allows_model([m.model_id])
        ]
        limits = {"max_pixels": self.limits.max_pixels, "max_request_bytes": self.limits.max_request_bytes}
        return StatsResult(app=call.app.id, loaded=loaded, sessions=self.video.count(call.app), limits=limits,
                           **self.figures())

    def figures(self) -> dict[str, Any]:
        """The embedding cache's counters and the per-method latencies (for ``vision.stats``)."""
        return {"embedding_cache": self.embeddings.stats(), "methods": self.latencies.stats()}
