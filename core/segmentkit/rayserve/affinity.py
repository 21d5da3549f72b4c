"""Which replica should answer a JSON-RPC message: its affinity key (no Ray import here).

- ``vision.mask_from_prompt``: the client's ``image_id``, else a hash of the image reference
  (the base64 text, or the path). Requests about one image then meet the embedding their
  first request left on one replica.
- a method with a ``session`` param: the replica named in the session id (``REPLICA.token``:
  a replica names the sessions it opens, so their key is known before any request about them,
  and a dead replica's sessions are routed nowhere in particular and answer the lost-session error).
- anything else: no key (any replica, least loaded).

A batch goes where its first keyed request goes. A message that does not parse has no key;
the replica answers the parse error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

IMAGE_METHODS = frozenset({"vision.mask_from_prompt"})
STREAMING_METHODS = frozenset({"vision.segment_video_propagate"})
REPLICA_PREFIX = "replica:"


@dataclass(frozen=True)
class Route:
    """Where a message goes and how it is answered."""

    key: str  # "" : no affinity
    method: str  # the (first) request's method, "" when unknown; "batch" for a batch
    request_id: Any  # the (first) request's id
    streams: bool  # a propagation: notifications come before the answer
    session: str | None = None  # the (first) session the message is about


def route(raw: bytes | str) -> Route:
    """The route of one raw JSON-RPC message (object or batch)."""
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):
        return Route("", "", None, False)
    requests = [m for m in (message if isinstance(message, list) else [message]) if isinstance(m, dict)]
    if not requests:
        return Route("", "", None, False)
    keys = [k for k in map(request_key, requests) if k]
    sessions = [s for s in map(_session, requests) if s]
    first = requests[0]
    method = first.get("method") if isinstance(first.get("method"), str) else ""
    streams = any(r.get("method") in STREAMING_METHODS for r in requests)
    kind = "batch" if isinstance(message, list) else method
    return Route(keys[0] if keys else "", kind, first.get("id"), streams, sessions[0] if sessions else None)


def replica_key(replica: str) -> str:
    """The key a replica claims for the sessions it opens."""
    return REPLICA_PREFIX + replica


def _session(request: dict[str, Any]) -> str | None:
    params = request.get("params")
    session = params.get("session") if isinstance(params, dict) else None
    return session if isinstance(session, str) and session else None


def request_key(request: dict[str, Any]) -> str:
    """The affinity key of one request ("" for none)."""
    session = _session(request)
    if session is not None:
        replica, dot, _ = session.partition(".")
        return replica_key(replica) if dot and replica else ""
    params = request.get("params")
    if request.get("method") not in IMAGE_METHODS or not isinstance(params, dict):
        return ""
    image_id = params.get("image_id")
    if isinstance(image_id, str) and image_id:
        return "id:" + image_id
    image = params.get("image")
    if not isinstance(image, dict):
        return ""
    canonical = json.dumps(image, sort_keys=True, separators=(",", ":")).encode("utf-8", "surrogatepass")
    return "image:" + hashlib.blake2b(canonical, digest_size=16).hexdigest()
