"""Image embeddings by (model id, image content) for every long-running host (the IPC
service, the Label Studio backend, Ray Serve replicas): a click on an image seen before
skips the encoder. Thread-safe, with hit / miss counters and listeners (e.g. Ray Serve
metrics) told of every lookup.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

CacheListener = Callable[[bool], None]  # hit?


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
