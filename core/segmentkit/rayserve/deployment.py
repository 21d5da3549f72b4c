"""`segmentkit serve --engine ray`: the same JSON-RPC service on Ray Serve replicas.

Two deployments, both built on the single-process pieces:

- ``VisionReplica`` runs a whole :class:`~segmentkit.ipc.service.Service` (methods, grants, limits,
  embedding cache, sessions). Ray Serve's model multiplexing is its routing table: each
  image key (:mod:`.affinity`) it answered is "loaded" there, so Ray Serve sends later
  requests with that key to it (a new key goes to the replica holding the fewest). Its
  session ids start with its name, and it claims the key of that name when it starts, so
  a session's requests reach it from the first one on.
- ``VisionIngress`` is the HTTP / WebSocket face: the ASGI app of :mod:`segmentkit.ipc.http` (tokens,
  Host guard, size limits) with a :class:`Router` in place of the service. It forwards each
  raw message with its key, retries an image request whose replica died (the next one
  re-embeds), and answers a session request whose replica died with the documented
  ``session_error`` (continue from ``vision.segment_video_save``).

``vision.stats`` adds every replica's figures (as of its latest answer) and the ingress's
end-to-end latencies; the same counters go out as Ray metrics (``segmentkit_*``).
Needs the ``ray`` extra (``ray[serve]``).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.exceptions import RayActorError
from ray.serve.handle import DeploymentHandle

from ..ipc.errors import ErrorCode, rpc_error
from ..ipc.limits import Limits
from ..ipc.manifest import App, apps_from_manifests
from ..ipc.metrics import Latencies
from ..ipc.protocol import error_response
from ..ipc.schemas import StatsResult
from ..ipc.service import Service
from ..ipc.video import lost_session
from .affinity import REPLICA_PREFIX, Route, replica_key, route

MAX_KEYS = 4096  # affinity keys a replica claims (LRU); its embedding cache is bounded on its own
RETRIES = 3  # an image request whose replica died is sent again this many times


@dataclass(frozen=True)
class ServiceSpec:
    """What every replica builds its :class:`~segmentkit.ipc.service.Service` from."""

    apps: tuple[App, ...]
    limits: Limits = field(default_factory=Limits)
    load_options: dict[str, Any] = field(default_factory=dict)
    model_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    plugins: tuple[str, ...] = ()

    def build(self) -> Service:
        from ..registry import default_registry

        registry = default_registry()
        for name in self.plugins:
            registry.register(importlib.import_module(name), name=name)
        return Service(registry, self.apps, limits=self.limits, load_options=self.load_options,
                       model_options=self.model_options)


# --------------------------------------------------------------------------- replicas


def _export_metrics(service: Service, replica: str) -> None:
    """Tell Ray's metrics (Prometheus on each node) what ``vision.stats`` counts."""
    from ray.util.metrics import Counter, Histogram

    tags = {"replica": replica}
    hits = Counter("segmentkit_embedding_cache_hits", "Prompts answered from a cached embedding.",
                   ("replica",))
    misses = Counter("segmentkit_embedding_cache_misses", "Prompts that ran the image encoder.", ("replica",))
    seconds = Histogram("segmentkit_method_seconds", "Time of successful calls, per method.",
                        [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30], ("replica", "method"))
    errors = Counter("segmentkit_method_errors", "Calls answered with an error, per method.",
                     ("replica", "method"))

    def on_lookup(hit: bool) -> None:
        (hits if hit else misses).inc(1, tags)

    def on_call(method: str, spent: float, ok: bool) -> None:
        if ok:
            seconds.observe(spent, {**tags, "method": method})
        else:
            errors.inc(1, {**tags, "method": method})

    service.embeddings.listeners.append(on_lookup)
    service.latencies.listeners.append(on_call)


@serve.deployment(name="VisionReplica", max_ongoing_requests=32)
class VisionReplica:
    """One :class:`~segmentkit.ipc.service.Service`; the keys it answered route back to it."""

    async def __init__(self, spec: ServiceSpec):
        self.service = spec.build()
        self.name = serve.get_replica_context().replica_id.unique_id
        self.service.video.id_prefix = self.name + "."
        _export_metrics(self.service, self.name)
        await self.service.start()
        await self.hold(replica_key(self.name))

    @serve.multiplexed(max_num_models_per_replica=MAX_KEYS)
    async def hold(self, key: str) -> str:
        """Claim ``key``: Ray Serve routes its later requests here."""
        return key

    async def answer(self, raw: bytes | str, app_id: str) -> dict[str, Any]:
        """The response to one message, with this replica's name and figures."""
        await self._claim(serve.get_multiplexed_model_id())
        return self._reply(await self.service.handle(raw, self.service.apps[app_id]))

    async def answer_stream(self, raw: bytes | str, app_id: str) -> AsyncIterator[dict[str, Any]]:
        """``{"notify": [method, params]}`` items (a propagation's frames), then the reply."""
        await self._claim(serve.get_multiplexed_model_id())
        queue: asyncio.Queue[list[Any]] = asyncio.Queue(maxsize=4)

        async def notify(method: str, params: dict[str, Any]) -> None:
            await queue.put([method, params])

        task = asyncio.create_task(self.service.handle(raw, self.service.apps[app_id], notify))
        try:
            while not (task.done() and queue.empty()):
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield {"notify": getter.result()}
                else:
                    getter.cancel()
            yield self._reply(task.result())
        finally:
            task.cancel()  # the client went away: stop the propagation

    async def _claim(self, key: str) -> None:
        await self.hold(replica_key(self.name))  # kept fresh, never evicted by image keys
        if key and not key.startswith(REPLICA_PREFIX):  # another replica's name is not claimed
            await self.hold(key)

    def _reply(self, response: Any) -> dict[str, Any]:
        figures = self.service.figures()
        figures["sessions"] = {i: self.service.video.count(app) for i, app in self.service.apps.items()}
        return {"response": response, "replica": self.name, "figures": figures}


# --------------------------------------------------------------------------- ingress


class Router:
    """Stands in for the service behind :func:`.http.create_app`: forwards to the replicas."""

    def __init__(self, replicas: DeploymentHandle, limits: Limits, *, affinity: bool = True):
        self.replicas = replicas
        self.limits = limits
        self.affinity = affinity
        self.latencies = Latencies()
        self.figures: dict[str, dict[str, Any]] = {}  # replica -> its figures as of its latest answer

    async def start(self) -> None:
        """Nothing to start (the replicas run their own sweepers)."""

    async def aclose(self) -> None:
        """Nothing to close (Ray Serve stops the replicas)."""

    async def handle(self, raw: bytes | str, app: App, notify: Any = None) -> Any:
        """The response document for one raw message, answered by a replica."""
        where = route(raw)
        started = time.perf_counter()
        response = await self._forward(raw, app, where, notify)
        failed = isinstance(response, dict) and "error" in response
        self.latencies.observe(where.method or "(unparsed)", time.perf_counter() - started, not failed)
        if where.method == "vision.stats" and isinstance(response, dict) and "result" in response:
            response["result"] = self._stats(response["result"], app)
        return response

    async def _forward(self, raw: bytes | str, app: App, where: Route, notify: Any) -> Any:
        handle = self.replicas
        if self.affinity and where.key:
            handle = handle.options(multiplexed_model_id=where.key)
        for attempt in range(RETRIES + 1):
            try:
                if where.streams and notify is not None:
                    reply = None
                    async for item in handle.options(stream=True).answer_stream.remote(raw, app.id):
                        if "notify" in item:
                            await notify(*item["notify"])
                        else:
                            reply = item
                    if reply is None:
                        raise RuntimeError("the replica's stream ended without an answer")
                else:
                    reply = await handle.answer.remote(raw, app.id)
            except RayActorError:
                if where.session is not None:  # the session was in that replica's memory
                    return error_response(where.request_id, lost_session(where.session))
                if attempt == RETRIES:
                    return error_response(where.request_id, rpc_error(
                        ErrorCode.INTERNAL_ERROR, f"no replica answered after {RETRIES + 1} tries"))
                await asyncio.sleep(0.25 * (attempt + 1))  # let Ray Serve notice the dead replica
                continue
            self.figures[reply["replica"]] = reply["figures"]
            return reply["response"]
        raise AssertionError("unreachable")

    def _stats(self, result: dict[str, Any], app: App) -> dict[str, Any]:
        replicas = [{"replica": name, "embedding_cache": f["embedding_cache"], "methods": f["methods"]}
                    for name, f in sorted(self.figures.items())]
        total = {k: sum(r["embedding_cache"][k] for r in replicas) for k in ("hits", "misses", "entries")}
        sessions = sum(f["sessions"].get(app.id, 0) for f in self.figures.values())
        merged = {**result, "embedding_cache": total, "methods": self.latencies.stats(), "replicas": replicas,
                  "sessions": sessions}
        return StatsResult.model_validate(merged).model_dump(mode="json")


@serve.deployment(name="VisionIngress", ray_actor_options={"num_cpus": 0})
@serve.ingress()
class VisionIngress:
    """HTTP ``POST /rpc`` and WebSocket ``/ws``, exactly as :mod:`.http` serves them."""

    def __init__(self, replicas: DeploymentHandle, tokens: dict[str, str], apps: tuple[App, ...],
                 limits: Limits, allowed_hosts: tuple[str, ...] = (), affinity: bool = True):
        by_id = {a.id: a for a in apps}
        self.tokens = {token: by_id[app_id] for token, app_id in tokens.items()}
        self.allowed_hosts = allowed_hosts
        self.router = Router(replicas, limits, affinity=affinity)

    def __serve_build_asgi_app__(self) -> Any:
        from ..ipc.http import LOOPBACK_HOSTS, create_app

        hosts = LOOPBACK_HOSTS | frozenset(self.allowed_hosts)
        return create_app(self.router, self.tokens, allowed_hosts=hosts)


# --------------------------------------------------------------------------- building and running


def application(spec: ServiceSpec, tokens: Mapping[str, App], *, replicas: int = 1,
                autoscale: tuple[int, int] | None = None, replica_cpus: float = 1.0,
                allowed_hosts: tuple[str, ...] = (), affinity: bool = True) -> Any:
    """The Ray Serve application: an ingress in front of ``replicas`` (or autoscaled) services."""
    threads = str(max(1, int(replica_cpus)))  # one inference thread pool per replica's CPUs
    actor = {"num_cpus": replica_cpus, "runtime_env": {"env_vars": {"OMP_NUM_THREADS": threads}}}
    scaling: dict[str, Any] = (
        {"num_replicas": replicas} if autoscale is None else
        {"autoscaling_config": {"min_replicas": autoscale[0], "max_replicas": autoscale[1],
                                "target_ongoing_requests": 2}}
    )
    replica = VisionReplica.options(ray_actor_options=actor, **scaling).bind(spec)
    return VisionIngress.bind(replica, {t: a.id for t, a in tokens.items()}, spec.apps, spec.limits,
                              allowed_hosts, affinity)


class DeployArgs(BaseModel):
    """Arguments of :func:`build` (the ``args:`` of a ``serve deploy`` config)."""

    model_config = ConfigDict(extra="forbid")

    manifests: list[Path] = Field(default_factory=list,
                                  description="App manifests (none: one unrestricted app).")
    tokens: dict[str, str] = Field(default_factory=dict, description=(
        "App id -> bearer token; default: the JSON object in $SEGMENTKIT_TOKENS."))
    limits: dict[str, Any] = Field(default_factory=dict, description="Limits fields (e.g. max_embeddings).")
    load_options: dict[str, Any] = Field(default_factory=dict, description="device, precision, runtime.")
    weights: dict[str, Path] = Field(default_factory=dict, description="Model id -> local checkpoint folder.")
    model_options: dict[str, dict[str, Any]] = Field(default_factory=dict, description=(
        "Model id -> its load options (e.g. the SAM 2 plugin's cache_bytes)."))
    plugins: list[str] = Field(default_factory=list, description="Extra plugin modules to register.")
    allowed_hosts: list[str] = Field(default_factory=list, description="Host names served besides loopback.")
    replica_cpus: float = 1.0


def build(args: dict[str, Any]) -> Any:
    """Application builder for ``serve deploy`` / ``serve run segmentkit.rayserve.deployment:build``."""
    parsed = DeployArgs.model_validate(args)
    apps = tuple(apps_from_manifests(parsed.manifests))
    given = parsed.tokens or json.loads(os.environ.get("SEGMENTKIT_TOKENS", "{}"))
    missing = sorted({a.id for a in apps} - set(given))
    if missing:
        raise ValueError(f"no token for app(s) {', '.join(missing)}: set args.tokens or $SEGMENTKIT_TOKENS "
                         '(a JSON object {"app id": "token"})')
    by_id = {a.id: a for a in apps}
    per_model = {m: dict(o) for m, o in parsed.model_options.items()}
    for model, folder in parsed.weights.items():
        per_model.setdefault(model, {})["weights"] = folder
    spec = ServiceSpec(apps, Limits(**parsed.limits), parsed.load_options, per_model, tuple(parsed.plugins))
    return application(spec, {t: by_id[i] for i, t in given.items() if i in by_id},
                       replica_cpus=parsed.replica_cpus, allowed_hosts=tuple(parsed.allowed_hosts))


def free_port(host: str) -> int:
    """A TCP port free on ``host`` now (Ray Serve's proxy cannot take port 0)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def serve_ray(spec: ServiceSpec, tokens: Mapping[str, App], *, host: str = "127.0.0.1", port: int = 8765,
              address: str | None = None, replicas: int = 1, autoscale: tuple[int, int] | None = None,
              ready: Callable[[int], None] | None = None) -> None:
    """Deploy on the Ray cluster at ``address`` (none: start a local one) and serve until interrupted."""
    import ray

    ray.init(address=address, include_dashboard=False, log_to_driver=False)
    port = port or free_port(host)
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(application(spec, tokens, replicas=replicas, autoscale=autoscale, allowed_hosts=(host,)),
                  name="segmentkit", route_prefix="/")
        if ready is not None:
            ready(port)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        if address is None:
            serve.shutdown()
        else:  # a shared cluster: leave its other applications alone
            serve.delete("segmentkit")
        ray.shutdown()
