"""The service's resource limits (all configurable from `segmentkit serve`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request or one app may use."""

    max_request_bytes: int = 32 * 2**20  # one JSON-RPC message (line, POST body, WebSocket frame)
    max_pixels: int = 40_000_000  # per decoded image
    max_sessions: int = 8  # open tracking sessions per app
    idle_timeout_s: float = 600.0  # a session untouched this long is closed
    sweep_interval_s: float = 30.0  # how often idle sessions are looked for
    max_batch: int = 32  # requests in one JSON-RPC batch
    max_in_flight: int = 64  # requests one stdio / WebSocket connection may have running
    workers: int = 4  # threads running decoding and inference

    def __post_init__(self) -> None:
        for name in ("max_request_bytes", "max_pixels", "max_sessions", "max_batch", "max_in_flight", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.idle_timeout_s <= 0 or self.sweep_interval_s <= 0:
            raise ValueError("idle_timeout_s and sweep_interval_s must be positive")
