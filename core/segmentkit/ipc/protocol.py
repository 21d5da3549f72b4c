"""JSON-RPC 2.0 framing: parse a message, validate it, dispatch it, build the response.

Transport-independent: stdio, HTTP and WebSocket all hand raw message bytes to
:meth:`Dispatcher.handle` and send back what it returns (``None``: nothing to send,
the message held only notifications). Batches are supported; params are by name only
and strict (no type coercion). Every request is answered within the deadline (except
the methods named unbounded: a propagation streams and can be cancelled); a big
message is parsed and validated off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from .. import workpool
from ..errors import validation_details
from .errors import ErrorCode, RpcError, from_exception, rpc_error
from .manifest import App

log = logging.getLogger(__name__)

Notify = Callable[[str, dict[str, Any]], Awaitable[None]]
Handler = Callable[[Any, "Call"], Awaitable[BaseModel]]
Offload = Callable[..., Awaitable[Any]]
_ENVELOPE = {"jsonrpc", "method", "params", "id"}
_PARSE_OFF_LOOP = 1 << 20  # bytes
_LEADING_ID = re.compile(rb'^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(-?\d{1,18}|"[^"\\]{0,128}")\s*,')


@dataclass(frozen=True)
class Call:
    """What a handler knows about the request besides its params."""

    app: App
    request_id: Any
    notify: Notify | None  # None: the transport cannot stream (plain HTTP POST)


def dumps(document: Any) -> str:
    """Compact JSON, refusing NaN / Infinity (not JSON); always encodable as UTF-8."""
    text = json.dumps(document, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate echoed from the request: send it escaped
            text = json.dumps(document, separators=(",", ":"), allow_nan=False)
    return text


def error_response(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


def notification(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse(raw: bytes | str) -> Any:
    return json.loads(raw, parse_constant=_reject_constant)


class Dispatcher:
    """Routes JSON-RPC messages to typed handlers."""

    def __init__(self, methods: dict[str, tuple[type[BaseModel], Handler]], *, max_bytes: int, max_batch: int,
                 deadline_s: float, offload: Offload, unbounded: frozenset[str] = frozenset(),
                 observe: Callable[[str, float, bool], None] | None = None):
        self.methods = methods
        self.max_bytes = max_bytes
        self.max_batch = max_batch
        self.deadline_s = deadline_s
        self.offload = offload  # runs CPU work in a worker thread
        self.unbounded = unbounded
        self.observe = observe  # told (method, seconds, ok) after every call of a known method

    async def handle(self, raw: bytes | str, app: App, notify: Notify | None = None) -> Any:
        """The response document for one message (object, batch array, or ``None``)."""
        if len(raw) > self.max_bytes:
            head = raw[:256] if isinstance(raw, bytes) else raw[:256].encode("utf-8")
            return error_response(leading_id(head), too_large(len(raw), self.max_bytes))
        workpool.owner.set(app.id)
        big = len(raw) > _PARSE_OFF_LOOP  # a big image: do not stall the other connections
        try:
            message = await self.offload(_parse, raw) if big else _parse(raw)
        except (ValueError, RecursionError) as exc:
            return error_response(None, rpc_error(ErrorCode.PARSE_ERROR, f"parse error: {exc}"))
        if isinstance(message, list):
            if not message:
                return error_response(None, rpc_error(ErrorCode.INVALID_REQUEST, "empty batch"))
            if len(message) > self.max_batch:
                return error_response(None, rpc_error(
                    ErrorCode.INVALID_REQUEST, f"batch of {len(message)} requests is over the limit of {self.max_batch}"
                ))
            answers = await asyncio.gather(*(self._one(m, app, notify, big) for m in message))
            return [a for a in answers if a is not None] or None
        return await self._one(message, app, notify, big)

    async def _one(self, message: Any, app: App, notify: Notify | None, big: bool) -> dict[str, Any] | None:
        if not isinstance(message, dict):
            return error_response(None, rpc_error(ErrorCode.INVALID_REQUEST, "a request must be a JSON object"))
        request_id = message.get("id")
        if not _valid_id(request_id):
            return error_response(None, rpc_error(ErrorCode.INVALID_REQUEST, "id must be a string, a number or null"))
        try:
            method, model, handler = self._envelope(message)
        except RpcError as error:  # an invalid request is no notification: answered even without an id
            answered = "id" in message or error.rpc_code == ErrorCode.INVALID_REQUEST
            return error_response(request_id, error) if answered else None
        scope = asyncio.timeout(None if method in self.unbounded else self.deadline_s)
        started = time.perf_counter()
        try:
            async with scope:
                params = message.get("params", {})
                params = await self.offload(_params, model, params) if big else _params(model, params)
                result = await handler(params, Call(app=app, request_id=request_id, notify=notify))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._observe(method, started, False)
            error = deadline_exceeded(self.deadline_s) if scope.expired() else from_exception(exc)
            if error.rpc_code == ErrorCode.INTERNAL_ERROR:
                log.exception("internal error in %r", method)
            return error_response(request_id, error) if "id" in message else None
        self._observe(method, started, True)
        if "id" not in message:
            return None
        return {"jsonrpc": "2.0", "id": request_id, "result": result.model_dump(mode="json")}

    def _observe(self, method: str, started: float, ok: bool) -> None:
        if self.observe is not None:
            self.observe(method, time.perf_counter() - started, ok)

    def _envelope(self, message: dict[str, Any]) -> tuple[str, type[BaseModel], Handler]:
        if message.get("jsonrpc") != "2.0":
            raise rpc_error(ErrorCode.INVALID_REQUEST, 'the request must have "jsonrpc": "2.0"')
        extra = sorted(set(message) - _ENVELOPE)
        if extra:
            raise rpc_error(ErrorCode.INVALID_REQUEST, f"unknown request member(s): {', '.join(extra)}")
        method = message.get("method")
        if not isinstance(method, str):
            raise rpc_error(ErrorCode.INVALID_REQUEST, "method must be a string")
        if method not in self.methods:
            raise rpc_error(ErrorCode.METHOD_NOT_FOUND, f"method not found: {method!r}", method=method)
        return (method, *self.methods[method])


def _params(model: type[BaseModel], params: Any) -> BaseModel:
    if not isinstance(params, dict):
        raise rpc_error(ErrorCode.INVALID_PARAMS, "params must be an object (parameters by name)")
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise invalid_params(exc) from None


def invalid_params(exc: ValidationError) -> RpcError:
    """An ``invalid_params`` error listing where and why validation failed."""
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")).removeprefix("Value error, ")}
        for e in exc.errors(include_url=False, include_input=False)
    ]
    return rpc_error(ErrorCode.INVALID_PARAMS, f"invalid params: {validation_details(exc)}", errors=errors)


def deadline_exceeded(deadline_s: float) -> RpcError:
    return rpc_error(ErrorCode.DEADLINE_EXCEEDED, f"not answered within the service's deadline of {deadline_s:g} s "
                     "(segmentkit serve --request-timeout)", deadline_s=deadline_s)


def too_large(size: int, limit: int) -> RpcError:
    return rpc_error(
        ErrorCode.PAYLOAD_TOO_LARGE, f"request of {size:,} bytes is over the limit of {limit:,} bytes", limit=limit
    )


def leading_id(head: bytes) -> Any:
    """The ``id`` of a message too large to parse, if it leads the message (else ``None``)."""
    match = _LEADING_ID.match(head)
    return None if match is None else json.loads(match.group(1))


def _valid_id(value: Any) -> bool:
    if value is None or isinstance(value, str):
        return True
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
