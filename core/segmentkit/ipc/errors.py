"""JSON-RPC error codes of the IPC service, and the exception that carries one.

Codes are stable: hosts switch on them. The JSON-RPC 2.0 reserved codes (-32700 ..
-32603) mean what the specification says; the service's own codes live in
-32001 .. -32099. Every error response also carries ``data.code``, a stable string
(the :class:`~segmentkit.errors.SegmentkitError` ``code`` where one applies).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from ..errors import SegmentkitError


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
    PLUGIN_ERROR = -32019  # a plugin failed to load or returned a bad spec
    SESSION_ERROR = -32020  # unknown / closed session, session limit, misuse
    SESSION_BUSY = -32021  # a propagation is running on the session
    DEADLINE_EXCEEDED = -32022  # not answered within the service's request deadline
    SEGMENTKIT_ERROR = -32099  # any other segmentkit error


# The stable string code of each error (``data.code``).
ERROR_NAMES: dict[ErrorCode, str] = {
    ErrorCode.PARSE_ERROR: "parse_error",
    ErrorCode.INVALID_REQUEST: "invalid_request",
    ErrorCode.METHOD_NOT_FOUND: "method_not_found",
    ErrorCode.INVALID_PARAMS: "invalid_params",
    ErrorCode.INTERNAL_ERROR: "internal_error",
    ErrorCode.MODEL_DENIED: "model_denied",
    ErrorCode.PATH_DENIED: "path_denied",
    ErrorCode.CAMERA_DENIED: "camera_denied",
    ErrorCode.PAYLOAD_TOO_LARGE: "payload_too_large",
    ErrorCode.UNAUTHORIZED: "unauthorized",
    ErrorCode.FORBIDDEN: "forbidden",
    ErrorCode.BAD_IMAGE: "bad_image",
    ErrorCode.BAD_PROMPT: "bad_prompt",
    ErrorCode.UNKNOWN_MODEL: "unknown_model",
    ErrorCode.IMAGE_TOO_LARGE: "image_too_large",
    ErrorCode.UNSUPPORTED_TASK: "unsupported_task",
    ErrorCode.INVALID_OPTIONS: "invalid_options",
    ErrorCode.BAD_VIDEO: "bad_video",
    ErrorCode.WEIGHTS_UNAVAILABLE: "weights_unavailable",
    ErrorCode.MISSING_DEPENDENCY: "missing_dependency",
    ErrorCode.PLUGIN_ERROR: "plugin_error",
    ErrorCode.SESSION_ERROR: "session_error",
    ErrorCode.SESSION_BUSY: "session_busy",
    ErrorCode.DEADLINE_EXCEEDED: "deadline_exceeded",
    ErrorCode.SEGMENTKIT_ERROR: "segmentkit_error",
}

# ``SegmentkitError.code`` -> JSON-RPC code.
_BY_SEGMENTKIT_CODE: dict[str, ErrorCode] = {
    "bad_image": ErrorCode.BAD_IMAGE,
    "image_too_large": ErrorCode.IMAGE_TOO_LARGE,
    "bad_prompt": ErrorCode.BAD_PROMPT,
    "unknown_model": ErrorCode.UNKNOWN_MODEL,
    "unsupported_task": ErrorCode.UNSUPPORTED_TASK,
    "invalid_options": ErrorCode.INVALID_OPTIONS,
    "bad_video": ErrorCode.BAD_VIDEO,
    "weights_unavailable": ErrorCode.WEIGHTS_UNAVAILABLE,
    "missing_dependency": ErrorCode.MISSING_DEPENDENCY,
    "plugin_load_error": ErrorCode.PLUGIN_ERROR,
    "spec_error": ErrorCode.PLUGIN_ERROR,
    "duplicate_model": ErrorCode.PLUGIN_ERROR,
    "session_error": ErrorCode.SESSION_ERROR,
    "path_denied": ErrorCode.PATH_DENIED,
}


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
        code = _BY_SEGMENTKIT_CODE.get(exc.code, ErrorCode.SEGMENTKIT_ERROR)
        return RpcError(code, " ".join(str(exc).split()) or type(exc).__name__, {"code": exc.code})
    return rpc_error(ErrorCode.INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}")
