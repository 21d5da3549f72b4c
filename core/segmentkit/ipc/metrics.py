"""Per-method latencies for ``vision.stats``: call counts, errors, and p50 / p99 over the
latest calls (thread-safe; listeners, e.g. Ray Serve metrics, are told of every call)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

CallListener = Callable[[str, float, bool], None]  # method, seconds, ok?


class Latencies:
    """Calls, errors and p50 / p99 (milliseconds, over the last ``window`` calls) per method."""

    def __init__(self, window: int = 1024):
        self.window = window
        self.listeners: list[CallListener] = []
        self._seconds: dict[str, deque[float]] = {}
        self._calls: dict[str, list[int]] = {}  # method -> [calls, errors]
        self._lock = threading.Lock()

    def observe(self, method: str, seconds: float, ok: bool) -> None:
        with self._lock:
            counts = self._calls.setdefault(method, [0, 0])
            counts[0] += 1
            counts[1] += 0 if ok else 1
            if ok:
                self._seconds.setdefault(method, deque(maxlen=self.window)).append(seconds)
        for listener in self.listeners:
            listener(method, seconds, ok)

    def stats(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            samples = {m: np.asarray(s, dtype=np.float64) for m, s in self._seconds.items()}
            counts = {m: tuple(c) for m, c in self._calls.items()}
        out = {}
        for method, (calls, errors) in sorted(counts.items()):
            s = samples.get(method)
            p50, p99 = (None, None) if s is None or not s.size else np.percentile(s * 1e3, [50, 99]).tolist()
            out[method] = {"calls": calls, "errors": errors, "p50_ms": p50, "p99_ms": p99}
        return out
