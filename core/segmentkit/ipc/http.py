"""JSON-RPC over HTTP (``POST /rpc``) and WebSocket (``/ws``), on loopback, with a token.

- ``POST /rpc``: one message (or batch) per request, ``Authorization: Bearer <token>``.
  A propagation comes back as one aggregated response.
- ``/ws``: JSON-RPC messages as text frames, requests handled concurrently; a
  propagation streams ``vision.segment_video_progress`` notifications before its
  response. The token goes in ``?token=`` (browsers cannot set headers on a
  WebSocket) or the ``Authorization`` header.
- ``/``: the web UI from the package's ``web/`` folder when it is installed. Its files
  hold no secrets; the page reads the token from its own ``?token=`` and sends it.
- ``/components/``: the ``@segmentkit/components`` modules the page is built on (the
  wheel's copy, or ``packages/components/src`` in a source checkout).
- CORS: none by default. ``allow_origins`` (``segmentkit serve --allow-origin``) lets pages
  of exactly those origins call ``/rpc`` (Starlette's ``CORSMiddleware``); they still need
  the token.

Each app (manifest) has its own random per-launch token; the token decides which
app's grants a request runs with. Every request must name a loopback host in its
``Host`` header (DNS-rebinding defence); a cross-origin request without a valid token
is refused as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..errors import OptionsError
from .errors import ErrorCode, rpc_error
from .manifest import App
from .protocol import dumps, error_response, leading_id, notification, too_large
from .service import Service

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
# The wheel carries the npm package's modules in web/components (setup.py copies them); a
# source checkout (or an editable install) serves them from the package's own folder.
COMPONENT_DIRS = (WEB_DIR / "components", WEB_DIR.parents[2] / "packages" / "components" / "src")
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # the page URL carries the token
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
]


def _hostname(value: str) -> str | None:
    try:
        return urlsplit(f"//{value}").hostname
    except ValueError:
        return None


def _header(scope: Mapping[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class HostGuard:
    """ASGI middleware: refuse requests whose ``Host`` is not one of ``allowed``; add security headers."""

    def __init__(self, app: Any, allowed: frozenset[str]):
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = _hostname(_header(scope, b"host") or "")
        if host not in self.allowed:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            error = rpc_error(ErrorCode.FORBIDDEN, f"host {host or '(none)'!r} is not served here; use 127.0.0.1")
            await _send_json(send, 403, error_response(None, error))
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + _SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


async def _send_json(send: Any, status: int, document: Any) -> None:
    body = dumps(document).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *_SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


class Tokens:
    """Per-app bearer tokens, compared in constant time."""

    def __init__(self, tokens: Mapping[str, App]):
        self._tokens = dict(tokens)

    def app_for(self, token: str | None) -> App | None:
        found = None
        for known, app in self._tokens.items():
            if token is not None and hmac.compare_digest(known.encode(), token.encode()):
                found = app
        return found


def _bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _cross_origin(headers: Mapping[str, str], scope: Mapping[str, Any]) -> bool:
    origin = headers.get("origin")
    if origin is None:
        return False  # not a browser, or a same-origin GET
    parts = urlsplit(origin)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    server_port = (scope.get("server") or ("", None))[1]
    return not (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS and port == server_port)


def _refusal(headers: Mapping[str, str], scope: Mapping[str, Any], given: bool) -> tuple[int, Any]:
    if _cross_origin(headers, scope):
        return 403, rpc_error(ErrorCode.FORBIDDEN, "cross-origin request without a valid token")
    why = "wrong token" if given else "missing token: send Authorization: Bearer <token>"
    return 401, rpc_error(ErrorCode.UNAUTHORIZED, why)


def components_dir() -> Path | None:
    """The folder of the ``@segmentkit/components`` modules: the wheel's copy, else the checkout's."""
    return next((d for d in COMPONENT_DIRS if (d / "index.js").is_file()), None)


def cors_origins(values: Iterable[str]) -> list[str]:
    """Validated origins (``scheme://host[:port]``, no path) for CORS; raises OptionsError."""
    out = []
    for value in values:
        parts = urlsplit(value.strip())
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if not (parts.scheme in ("http", "https") and parts.hostname and port_ok and parts.path in ("", "/")
                and not (parts.query or parts.fragment or parts.username)):
            raise OptionsError(f"--allow-origin {value!r} is not an origin such as http://localhost:5173")
        out.append(f"{parts.scheme}://{parts.netloc.lower()}")
    return out


def service_lifespan(service: Any) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    """A Starlette lifespan that starts ``service`` with the server and closes it on shutdown."""

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.aclose()

    return lifespan


def create_app(service: Service, tokens: Mapping[str, App], *, allowed_hosts: frozenset[str] = LOOPBACK_HOSTS,
               web_dir: Path | None = WEB_DIR, allow_origins: Iterable[str] = ()) -> Any:
    """The ASGI application serving ``service`` to the apps of ``tokens`` (token -> app).

    ``allow_origins``: origins whose pages may call ``/rpc`` across origins (CORS; none by default).
    """
    auth = Tokens(tokens)
    limit = service.limits.max_request_bytes

    async def rpc(request: Request) -> Response:
        token = _bearer(request.headers)
        app = auth.app_for(token)
        if app is None:
            status, error = _refusal(request.headers, request.scope, token is not None)
            return _json(status, error_response(None, error), {"www-authenticate": "Bearer"})
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _json(413, error_response(None, too_large(int(declared), limit)))
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return _json(413, error_response(None, too_large(len(body), limit)))
        response = await service.handle(bytes(body), app, None)
        return Response(status_code=204) if response is None else _json(200, response)

    async def ws(websocket: WebSocket) -> None:
        token = websocket.query_params.get("token") or _bearer(websocket.headers)
        app = auth.app_for(token)
        if app is None:
            await websocket.close(code=1008)
            return
        await websocket.accept()
        await serve_websocket(websocket, service, app)

    async def index(request: Request) -> Response:
        return PlainTextResponse("segmentkit IPC service: POST /rpc (JSON-RPC 2.0), WebSocket /ws\n")

    routes: list[Any] = [Route("/rpc", rpc, methods=["POST"]), WebSocketRoute("/ws", ws)]
    components = components_dir()
    if web_dir is not None and components is not None:
        routes.append(Mount("/components", app=StaticFiles(directory=components)))
    if web_dir is not None and (web_dir / "index.html").is_file():
        routes.append(Mount("/", app=StaticFiles(directory=web_dir, html=True)))
    else:
        routes.append(Route("/", index))

    asgi: Any = Starlette(routes=routes, lifespan=service_lifespan(service))
    origins = cors_origins(allow_origins)
    if origins:
        asgi = CORSMiddleware(asgi, allow_origins=origins, allow_methods=["POST"],
                              allow_headers=["Authorization", "Content-Type"], max_age=600)
    return HostGuard(asgi, allowed_hosts)


def _json(status: int, document: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(document), status_code=status, media_type="application/json", headers=headers)


async def serve_websocket(websocket: WebSocket, service: Service, app: App) -> None:
    """Answer JSON-RPC messages on an accepted WebSocket until it closes."""
    limit = service.limits.max_request_bytes
    lock = asyncio.Lock()

    async def send(document: Any) -> None:
        async with lock:
            await websocket.send_text(dumps(document))

    async def notify(method: str, params: dict[str, Any]) -> None:
        await send(notification(method, params))

    async def answer(raw: str | bytes) -> None:
        response = await service.handle(raw, app, notify)
        if response is not None:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await send(response)

    tasks: set[asyncio.Task[None]] = set()
    room = asyncio.Semaphore(service.limits.max_in_flight)

    def finished(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        room.release()

    try:
        while True:
            await room.acquire()  # a client over max_in_flight waits: its next message is not read yet
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            raw = message.get("text") if message.get("text") is not None else message.get("bytes")
            size = 0 if raw is None else len(raw.encode("utf-8")) if isinstance(raw, str) else len(raw)
            if raw is None or size > limit:
                room.release()
                if raw is not None:
                    head = raw[:256].encode("utf-8") if isinstance(raw, str) else raw[:256]
                    await send(error_response(leading_id(head), too_large(size, limit)))
                continue
            task = asyncio.create_task(answer(raw))
            tasks.add(task)
            task.add_done_callback(finished)
    except WebSocketDisconnect:
        pass
    finally:
        for task in tasks:  # the client is gone: stop its propagations
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def serve_http(service: Service, tokens: Mapping[str, App], *, host: str = "127.0.0.1", port: int = 8765,
               ready: Callable[[int], None] | None = None, allow_origins: Iterable[str] = ()) -> None:
    """Serve until interrupted; ``ready(port)`` is called once the socket listens."""
    import uvicorn

    sock = bind(host, port)
    allowed = LOOPBACK_HOSTS | {host.strip("[]").lower()}
    asgi = create_app(service, tokens, allowed_hosts=frozenset(allowed), allow_origins=allow_origins)
    config = uvicorn.Config(
        asgi, log_level="warning", access_log=False, lifespan="on", ws="websockets-sansio", http="h11",
        ws_max_size=2 * service.limits.max_request_bytes, timeout_graceful_shutdown=3,
    )
    if ready is not None:
        ready(sock.getsockname()[1])
    uvicorn.Server(config).run(sockets=[sock])
