"""The IPC service behind `segmentkit serve`: JSON-RPC 2.0 over stdio, HTTP and WebSocket.

Modules: :mod:`.schemas` (params / results of every method), :mod:`.protocol`
(JSON-RPC framing), :mod:`.service` (the ``vision.*`` methods), :mod:`.video`
(tracking sessions), :mod:`.manifest` (app grants), :mod:`.errors` (stable codes),
:mod:`.stdio` and :mod:`.http` (transports), :mod:`.schema_doc` (``docs/ipc.schema.json``).
The HTTP transport needs the ``serve`` extra (Starlette, uvicorn); nothing here imports
it until :mod:`.http` is imported.
"""

from __future__ import annotations

from .errors import ErrorCode, RpcError
from .limits import Limits
from .manifest import App, load_manifest

__all__ = ["App", "ErrorCode", "Limits", "RpcError", "load_manifest"]
