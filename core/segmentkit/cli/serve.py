"""`segmentkit serve`: the JSON-RPC service on stdio, or on HTTP + WebSocket (127.0.0.1).

stdio is for a host that spawns the process; HTTP prints its URL with the per-launch
token on stderr (``--token-file`` writes it as JSON for scripts). See docs/ipc.md.
"""

from __future__ import annotations

import importlib
import json
import logging
import secrets
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .app import app
from .common import DeviceOpt, PrecisionOpt, RuntimeOpt, fail, guarded, load_options


def _token_file(path: Path, url: str, port: int, tokens: dict[str, Any]) -> None:
    """Write URL and tokens as JSON to a fresh file readable by the user only."""
    from ..io.files import write_private

    by_app = {a.id: t for t, a in tokens.items()}
    write_private(path, json.dumps({"url": url, "port": port, "token": next(iter(tokens)), "tokens": by_app}))


def _weights(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """``["MODEL=DIR", ...]`` -> ``{model_id: {"weights": Path}}``."""
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        model_id, sep, folder = pair.partition("=")
        if not sep or not model_id or not folder:
            raise typer.BadParameter(f"{pair!r} must be MODEL=DIR", param_hint="'--weights'")
        out[model_id.strip()] = {"weights": Path(folder).expanduser()}
    return out


def _register_plugins(registry: Any, modules: list[str]) -> None:
    for name in modules:
        registry.register(importlib.import_module(name), name=name)


def _serve_label_studio(service: Any, model: str | None, host: str, port: int,
                        basic_auth: str | None) -> None:
    from ..labelstudio.app import serve
    from ..labelstudio.engine import Engine

    credentials = None
    if basic_auth is not None:
        user, sep, password = basic_auth.partition(":")
        if not sep or not user or not password:
            raise typer.BadParameter("must be USER:PASS", param_hint="'--basic-auth'")
        credentials = (user, password)
    engine = Engine(service, model)
    version = engine.model_version()  # an unknown model fails here, before the port opens

    def ready(bound: int) -> None:
        sys.stderr.write(f"segmentkit serve: Label Studio ML backend for {version}: "
                         f"http://{host}:{bound}\n")
        sys.stderr.flush()

    serve(engine, host=host, port=port, basic_auth=credentials, ready=ready)


@app.command("serve")
@guarded
def serve_command(
    stdio: Annotated[
        bool, typer.Option("--stdio", help="Speak JSON-RPC on stdin / stdout (one message a line).")
    ] = False,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="HTTP port (0: any free port).")] = 8765,
    host: Annotated[str, typer.Option("--host", help="Interface to bind; keep the loopback default.")] = "127.0.0.1",
    manifest: Annotated[
        list[Path] | None,
        typer.Option("--manifest", metavar="APP.JSON", help="App manifest (repeat for several apps; HTTP only)."),
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="Write {url, port, token, tokens} as JSON here (mode 600).")
    ] = None,
    plugin: Annotated[
        list[str] | None, typer.Option("--plugin", metavar="MODULE", help="Also register this module as a plugin.")
    ] = None,
    max_request_mb: Annotated[
        float | None, typer.Option("--max-request-mb", min=0.001, help="Largest request.")
    ] = None,
    max_pixels: Annotated[int | None, typer.Option(
        "--max-pixels", min=1, envvar="SEGMENTKIT_MAX_PIXELS", help="Largest image or mask prompt, in pixels.")
    ] = None,
    request_timeout: Annotated[
        float | None, typer.Option("--request-timeout", min=0.001, help="Deadline of a request (not a propagation), s.")
    ] = None,
    max_app_jobs: Annotated[
        int | None, typer.Option("--max-app-jobs", min=1, help="Jobs one app may have running.")
    ] = None,
    max_sessions: Annotated[
        int | None, typer.Option("--max-sessions", min=1, help="Open video sessions per app.")
    ] = None,
    idle_timeout: Annotated[
        float | None, typer.Option("--idle-timeout", min=0.001, help="Close sessions idle this many seconds.")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Inference threads.")] = None,
    weights: Annotated[
        list[str] | None,
        typer.Option("--weights", metavar="MODEL=DIR", help="Load MODEL from a local checkpoint directory (repeat)."),
    ] = None,
    device: DeviceOpt = None,
    runtime: RuntimeOpt = None,
    precision: PrecisionOpt = None,
    log_level: Annotated[str, typer.Option("--log-level", help="Python logging level on stderr.")] = "warning",
    label_studio: Annotated[bool, typer.Option(
        "--label-studio", help="Speak Label Studio's ML backend protocol (docs/label-studio.md).")] = False,
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help="--label-studio: the model to serve (default: the default prompter).")] = None,
    basic_auth: Annotated[str | None, typer.Option(
        "--basic-auth", metavar="USER:PASS", envvar="SEGMENTKIT_BASIC_AUTH",
        help="--label-studio: require these basic-auth credentials (Label Studio's ML settings).")] = None,
    allow_origin: Annotated[list[str] | None, typer.Option(
        "--allow-origin", metavar="ORIGIN",
        help="Let web pages of ORIGIN (e.g. http://localhost:5173) call the service: CORS (repeat; "
             "none by default). They still need the token.")
    ] = None,
    engine: Annotated[str, typer.Option(
        "--engine", help="local: this process; ray: Ray Serve replicas with embedding / session affinity.")
    ] = "local",
    replicas: Annotated[int, typer.Option("--replicas", min=1, help="Ray: number of replicas.")] = 1,
    autoscale: Annotated[
        str | None, typer.Option("--autoscale", metavar="MIN:MAX", help="Ray: autoscale between MIN and MAX replicas.")
    ] = None,
    address: Annotated[
        str | None, typer.Option("--address", help="Ray: cluster address (e.g. auto); none: start a local Ray.")
    ] = None,
) -> None:
    """Serve the models over JSON-RPC 2.0 to host apps (stdio, or HTTP + WebSocket on 127.0.0.1)."""
    from ..ipc.limits import Limits
    from ..ipc.manifest import apps_from_manifests
    from ..ipc.service import Service
    from ..registry import default_registry

    logging.basicConfig(stream=sys.stderr, level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    apps = apps_from_manifests(manifest or [])
    if stdio and len(apps) > 1:
        raise fail("--stdio serves one app; pass one --manifest")
    if engine not in ("local", "ray") or (engine == "ray" and stdio):
        raise fail("--engine is local or ray (ray serves HTTP + WebSocket, not --stdio)")
    registry = default_registry()
    _register_plugins(registry, plugin or [])
    given = {"max_request_bytes": None if max_request_mb is None else int(max_request_mb * 2**20),
             "max_pixels": max_pixels, "max_sessions": max_sessions, "idle_timeout_s": idle_timeout,
             "workers": workers, "request_timeout_s": request_timeout, "max_app_jobs": max_app_jobs}
    limits = Limits.of(**given)  # unset options keep the service's defaults (ipc/limits.py)
    options = load_options(device=device, runtime=runtime, precision=precision)
    per_model = {registry.resolve(m).spec.card.id: o for m, o in _weights(weights or []).items()}
    service = Service(registry, apps, limits=limits, load_options=options, model_options=per_model)
    if label_studio:
        _serve_label_studio(service, model, host, port, basic_auth)
        return
    if stdio:
        import asyncio

        from ..ipc.stdio import serve_stdio

        asyncio.run(serve_stdio(service, apps[0]))
        return
    try:
        from ..ipc.http import serve_http
    except ImportError as exc:
        from ..errors import MissingDependencyError

        raise MissingDependencyError(exc.name or "starlette", 'pip install "segmentkit[serve]"',
                                     purpose="segmentkit serve over HTTP") from None
    tokens = {secrets.token_urlsafe(32): a for a in apps}
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.stderr.write(f"warning: serving on {host}, not loopback: anyone who can reach it and has a token "
                         "can use the granted models and files\n")

    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)

    def ready(bound: int) -> None:
        for token, a in tokens.items():
            sys.stderr.write(f"segmentkit serve: app {a.id}: http://{shown}:{bound}/?token={token}\n")
        sys.stderr.flush()
        if token_file is not None:
            _token_file(token_file, f"http://{shown}:{bound}/", bound, tokens)

    if engine == "ray":
        _serve_ray(apps, tokens, limits, options, per_model, plugin or [], host=host, port=port, address=address,
                   replicas=replicas, autoscale=autoscale, ready=ready)
        return
    serve_http(service, tokens, host=host, port=port, ready=ready, allow_origins=allow_origin or [])


def _serve_ray(apps: list[Any], tokens: dict[str, Any], limits: Any, options: dict[str, Any],
               per_model: dict[str, dict[str, Any]], plugins: list[str], *, autoscale: str | None, **kw: Any) -> None:
    try:
        from ..rayserve.deployment import ServiceSpec, serve_ray
    except ImportError as exc:
        from ..errors import MissingDependencyError

        raise MissingDependencyError(exc.name or "ray", 'pip install "segmentkit[ray]"',
                                     purpose="segmentkit serve --engine ray") from None
    bounds = None
    if autoscale is not None:
        low, sep, high = autoscale.partition(":")
        if not (sep and low.isdigit() and high.isdigit() and 1 <= int(low) <= int(high)):
            raise typer.BadParameter(f"{autoscale!r} must be MIN:MAX with 1 <= MIN <= MAX", param_hint="'--autoscale'")
        bounds = (int(low), int(high))
    spec = ServiceSpec(tuple(apps), limits, options, per_model, tuple(plugins))
    serve_ray(spec, tokens, autoscale=bounds, **kw)
