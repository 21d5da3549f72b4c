"""Label Studio's ML backend protocol over HTTP (Starlette + uvicorn, as ``segmentkit serve``).

- ``GET /health``: ``{"status": "UP", "model": ...}``;
- ``POST /setup``: ``{"model_version": "<model id>@<weights revision>"}``;
- ``POST /predict``: ``{"results": [prediction per task], "model_version": ...}``;
- ``POST /webhook``: training events answered "not trained here" (never an error).

A bad request gets a JSON ``{"error": message, "code": code}`` with a 4xx status and the
server keeps serving. With ``basic_auth`` set, every route wants those credentials (what
Label Studio's ML settings send when "Use basic auth" is on).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import SegmentkitError
from ..ipc.http import LOOPBACK_HOSTS, HostGuard, bind, service_lifespan
from .config import parse_label_config
from .engine import Engine
from .predict import predict_task
from .sources import TaskFiles

log = logging.getLogger(__name__)
TRAINING_EVENTS = frozenset(
    {"START_TRAINING", "ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED"}
)
NOT_TRAINED = (
    "segmentkit does not train models here: predictions come from the served model "
    "(its weights are pinned); annotations are not used to update it"
)


class BadRequest(SegmentkitError, ValueError):
    """The request body is not what the protocol expects."""

    code = "bad_request"


def _error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse({"error": message, "code": code}, status_code=status)


def _authorised(request: Request, basic_auth: tuple[str, str] | None) -> bool:
    if basic_auth is None:
        return True
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    ok_user = hmac.compare_digest(user.encode(), basic_auth[0].encode())
    return hmac.compare_digest(password.encode(), basic_auth[1].encode()) and ok_user


def create_app(
    engine: Engine,
    *,
    basic_auth: tuple[str, str] | None = None,
    allowed_hosts: frozenset[str] = LOOPBACK_HOSTS,
) -> Any:
    """The ASGI app answering Label Studio for ``engine``'s model."""
    service = engine.service
    limit = service.limits.max_request_bytes
    fallback: dict[str, str | None] = {}  # hostname and access token Label Studio sent to /setup

    def files() -> TaskFiles:
        return TaskFiles.from_env(engine.app, limit, service.limits.max_pixels, **fallback)

    async def body(request: Request) -> dict[str, Any]:
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise BadRequest(f"request body is over the backend's limit of {limit:,} bytes")
        try:
            document = json.loads(bytes(data) or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequest(f"request body is not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise BadRequest("request body must be a JSON object")
        return document

    def guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            if not _authorised(request, basic_auth):
                return JSONResponse(
                    {"error": "basic auth required", "code": "unauthorized"},
                    status_code=401,
                    headers={"www-authenticate": 'Basic realm="segmentkit"'},
                )
            try:
                return JSONResponse(await handler(request))
            except SegmentkitError as exc:
                code = getattr(exc, "code", "segmentkit_error")
                status = 413 if code in ("image_too_large",) else 400
                return _error(status, " ".join(str(exc).split()), code)
            except Exception as exc:  # a bug: answer it, keep serving
                log.exception("label studio request failed")
                return _error(500, f"internal error: {type(exc).__name__}: {exc}", "internal_error")

        return endpoint

    async def health(request: Request) -> dict[str, Any]:
        return {
            "status": "UP",
            "model_class": "segmentkit",
            "model": engine.card().id,
            "model_version": engine.model_version(),
        }

    async def setup(request: Request) -> dict[str, Any]:
        document = await body(request)
        if document.get("hostname"):
            fallback.update(url=str(document["hostname"]), api_key=document.get("access_token"))
        if document.get("schema"):
            parse_label_config(str(document["schema"]))  # a config that is not XML fails at connect time
        return {"model_version": engine.model_version()}

    async def predict(request: Request) -> dict[str, Any]:
        document = await body(request)
        tasks = document.get("tasks")
        if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
            raise BadRequest("'tasks' must be a list of task objects")
        config = parse_label_config(str(document.get("label_config") or ""))
        context = (document.get("params") or {}).get("context")
        where = files()
        results = [await service.run(predict_task, engine, where, config, task, context) for task in tasks]
        return {"results": results, "model_version": engine.model_version()}

    async def webhook(request: Request) -> dict[str, Any]:
        document = await body(request)
        action = str(document.get("action", ""))
        return {
            "status": "not trained here" if action in TRAINING_EVENTS else "ignored",
            "action": action,
            "detail": NOT_TRAINED,
        }

    routes = [
        Route("/health", guarded(health), methods=["GET"]),
        Route("/", guarded(health), methods=["GET"]),
        Route("/setup", guarded(setup), methods=["POST"]),
        Route("/predict", guarded(predict), methods=["POST"]),
        Route("/webhook", guarded(webhook), methods=["POST"]),
    ]
    return HostGuard(Starlette(routes=routes, lifespan=service_lifespan(service)), allowed_hosts)


def serve(
    engine: Engine,
    *,
    host: str = "127.0.0.1",
    port: int = 9090,
    basic_auth: tuple[str, str] | None = None,
    ready: Callable[[int], None] | None = None,
) -> None:
    """Serve Label Studio until interrupted; ``ready(port)`` once the socket listens."""
    import uvicorn

    sock = bind(host, port)
    allowed = LOOPBACK_HOSTS | {host.strip("[]").lower()}
    asgi = create_app(engine, basic_auth=basic_auth, allowed_hosts=frozenset(allowed))
    config = uvicorn.Config(
        asgi, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=3
    )
    if ready is not None:
        ready(sock.getsockname()[1])
    uvicorn.Server(config).run(sockets=[sock])
