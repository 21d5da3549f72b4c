"""Which replica should answer a JSON-RPC message: its affinity key (no Ray import here).

- ``vision.mask_from_prompt``: the client's ``image_id``, else a hash of the image reference
  (the base64 text, or the path). Requests about one image then meet the embedding their
  first request left on one replica.
- a method with a ``session`` param: that session (it lives in one replica's memory).
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
SESSION_PREFIX = "session:"


@dataclass(frozen=True)
class Route:
    """Where a message goes and how it is answered."""

    key: str  # "" : no affinity
    method: str  # the (first) request's method, "" when unknown; "batch" for a batch
    request_id: Any  # the (first) request's id
    streams: bool  # a propagation: notifications come before the answer

    @property
    def session(self) -> str | None:
        return self.key.removeprefix(SESSION_PREFIX) if self.key.startswith(SESSION_PREFIX) else None


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
    first = requests[0]
    method = first.get("method") if isinstance(first.get("method"), str) else ""
    streams = any(r.get("method") in STREAMING_METHODS for r in requests)
    return Route(keys[0] if keys else "", "batch" if isinstance(message, list) else method, first.get("id"), streams)


def request_key(request: dict[str, Any]) -> str:
    """The affinity key of one request ("" for none)."""
    params = request.get("params")
    if not isinstance(params, dict):
        return ""
    session = params.get("session")
    if isinstance(session, str) and session:
        return SESSION_PREFIX + session
    if request.get("method") not in IMAGE_METHODS:
        return ""
    image_id = params.get("image_id")
    if isinstance(image_id, str) and image_id:
        return "id:" + image_id
    image = params.get("image")
    if not isinstance(image, dict):
        return ""
    canonical = json.dumps(image, sort_keys=True, separators=(",", ":")).encode("utf-8", "surrogatepass")
    return "image:" + hashlib.blake2b(canonical, digest_size=16).hexdigest()
