"""The service's resource limits (all configurable from `segmentkit serve`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..io.image import DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request or one app may use."""

    max_request_bytes: int = 32 * 2**20  # one JSON-RPC message (line, POST body, WebSocket frame)
    max_pixels: int = DEFAULT_MAX_PIXELS  # per decoded image (and per mask prompt)
    max_sessions: int = 8  # open tracking sessions per app
    idle_timeout_s: float = 600.0  # a session untouched this long is closed
    sweep_interval_s: float = 30.0  # how often idle sessions are looked for
    max_batch: int = 32  # requests in one JSON-RPC batch
    max_in_flight: int = 64  # requests one stdio / WebSocket connection may have running
    workers: int = 4  # threads running decoding and inference
    max_app_jobs: int = 4  # of those, jobs one app may have running or queued in the pool
    request_timeout_s: float = 300.0  # deadline of every request but a propagation
    max_embeddings: int = 32  # image embeddings the service keeps (LRU) for later prompts on the same image

    @classmethod
    def of(cls, **given: float | None) -> Limits:
        """Limits with the ``given`` values that are set; idle sessions are looked for 4 times per timeout."""
        limits = cls(**{k: v for k, v in given.items() if v is not None})
        return replace(limits, sweep_interval_s=min(limits.sweep_interval_s, max(0.05, limits.idle_timeout_s / 4)))

    def __post_init__(self) -> None:
        names = ("max_request_bytes", "max_pixels", "max_sessions", "max_batch", "max_in_flight", "workers",
                 "max_app_jobs", "max_embeddings")
        for name in names:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.idle_timeout_s <= 0 or self.sweep_interval_s <= 0 or self.request_timeout_s <= 0:
            raise ValueError("idle_timeout_s, sweep_interval_s and request_timeout_s must be positive")
