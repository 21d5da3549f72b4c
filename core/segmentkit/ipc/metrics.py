"""What ``vision.stats`` reports besides models and sessions.

:class:`EmbeddingCache`: image embeddings by (model id, image content), with hit and miss
counters, so a click on an image seen before skips the encoder. :class:`Latencies`:
per-method call counts, errors, and p50 / p99 over the latest calls. Both are
thread-safe; listeners (e.g. Ray Serve metrics) are told of every lookup and call.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import numpy as np

CacheListener = Callable[[bool], None]  # hit?
CallListener = Callable[[str, float, bool], None]  # method, seconds, ok?


class EmbeddingCache:
    """LRU of embeddings bounded in entries; concurrent misses of one key embed once."""

    def __init__(self, max_entries: int):
        self.max_entries = int(max_entries)
        self.hits = 0
        self.misses = 0
        self.listeners: list[CacheListener] = []
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._loading: dict[Any, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, embed: Callable[[], Any]) -> Any:
        """The embedding cached under ``key``, or ``embed()``'s, cached (a miss)."""
        with self._lock:
            found = self._hit(key)
            if found is not None:
                return found
            slot = self._loading.setdefault(key, threading.Lock())
        with slot:  # a second miss of the same key waits for the first, then hits
            with self._lock:
                found = self._hit(key)
                if found is not None:
                    return found
            try:
                value = embed()
            finally:
                with self._lock:
                    self._loading.pop(key, None)
            with self._lock:
                self.misses += 1
                self._items[key] = value
                while len(self._items) > self.max_entries:
                    self._items.popitem(last=False)
        self._tell(False)
        return value

    def _hit(self, key: Any) -> Any:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
            self.hits += 1
            self._tell(True)
        return value

    def _tell(self, hit: bool) -> None:
        for listener in self.listeners:
            listener(hit)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "entries": len(self._items)}


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
