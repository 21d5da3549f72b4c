"""JSON-RPC error codes of the IPC service, and the exception that carries one.

Codes are stable: hosts switch on them. The JSON-RPC 2.0 reserved codes (-32700 ..
-32603) mean what the specification says; the service's own codes live in
-32001 .. -32099. Every error response also carries ``data.code``, a stable string
(the :class:`~segmentkit.errors.SegmentkitError` ``code`` where one applies).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from ..errors import PluginContractError, SegmentkitError, classify


class ErrorCode(IntEnum):
    """Every error code the service answers with."""

    PARSE_ERROR = -32700  # not JSON
    INVALID_REQUEST = -32600  # JSON, but not a JSON-RPC 2.0 request
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602  # params missing, of the wrong type, or unknown fields
    INTERNAL_ERROR = -32603  # a bug: the message names the exception
    MODEL_DENIED = -32001  # model not in the app manifest's capabilities.models
    PATH_DENIED = -32002  # path outside capabilities.fs.user-selected (after resolving)
    CAMERA_DENIED = -32003  # camera frames / live sessions without device.camera
    PAYLOAD_TOO_LARGE = -32004  # request over the size limit
    UNAUTHORIZED = -32005  # HTTP / WebSocket: missing or wrong token
    FORBIDDEN = -32006  # HTTP / WebSocket: Host header not loopback (DNS rebinding)
    BAD_IMAGE = -32010
    BAD_PROMPT = -32011
    UNKNOWN_MODEL = -32012
    IMAGE_TOO_LARGE = -32013  # more pixels than the service's limit
    UNSUPPORTED_TASK = -32014
    INVALID_OPTIONS = -32015
    BAD_VIDEO = -32016
    WEIGHTS_UNAVAILABLE = -32017
    MISSING_DEPENDENCY = -32018
    PLUGIN_ERROR = -32019  # a plugin failed to load, returned a bad spec or broke the contract
    SESSION_ERROR = -32020  # unknown / closed session, session limit, misuse
    SESSION_BUSY = -32021  # a propagation is running on the session
    DEADLINE_EXCEEDED = -32022  # not answered within the service's request deadline
    SEGMENTKIT_ERROR = -32099  # any other segmentkit error


# The stable string code of each error (``data.code``): its name in lower case.
ERROR_NAMES: dict[ErrorCode, str] = {code: code.name.lower() for code in ErrorCode}


class RpcError(SegmentkitError):
    """A JSON-RPC error: raised by the service, and by :mod:`segmentkit.client` on the host side.

    ``rpc_code`` is the integer JSON-RPC code (an :class:`ErrorCode` where known), ``code``
    the stable string name, ``data`` the error's ``data`` object.
    """

    def __init__(self, rpc_code: int, message: str, data: dict[str, Any] | None = None):
        super().__init__(message)
        try:
            self.rpc_code: int = ErrorCode(rpc_code)
        except ValueError:
            self.rpc_code = int(rpc_code)
        self.message = message
        self.data = dict(data or {})
        self.code = str(self.data.get("code") or ERROR_NAMES.get(self.rpc_code, "rpc_error"))  # type: ignore[call-overload]
        self.data.setdefault("code", self.code)

    def to_json(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` member."""
        return {"code": int(self.rpc_code), "message": self.message, "data": self.data}


def rpc_error(code: ErrorCode, message: str, **data: Any) -> RpcError:
    """Build an :class:`RpcError` for ``code`` with extra ``data`` fields."""
    return RpcError(code, message, {"code": ERROR_NAMES[code], **data})


def from_exception(exc: BaseException) -> RpcError:
    """Map any exception to the :class:`RpcError` the service answers with."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, SegmentkitError):
        code = ErrorCode[classify(exc)[0].upper()]
        data = {"code": exc.code}
        if isinstance(exc, PluginContractError):  # hosts can tell users which plugin to report
            data.update(model=exc.model, plugin=exc.plugin, distribution=exc.distribution)
        return RpcError(code, " ".join(str(exc).split()) or type(exc).__name__, data)
    return rpc_error(ErrorCode.INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}")
