"""A bounded, thread-safe cache of image embeddings, keyed by model and image content.

A prompter's encoder is the expensive half of a click; a host that sees the same image
again (the next click on a Label Studio task, the next request of a web page) takes the
embedding from here and runs only the decoder.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from .io.image import image_key
from .roles import Embedding


class EmbeddingCache:
    """The last ``capacity`` embeddings, least recently used dropped first."""

    def __init__(self, capacity: int = 8):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[tuple[str, str], Embedding] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, prompter: Any, rgb: np.ndarray) -> Embedding:
        """``prompter.embed(rgb)``, computed once per (model, image content) while cached."""
        key = (prompter.card.id, image_key(rgb))
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        embedding = prompter.embed(rgb)  # outside the lock: other images embed meanwhile
        with self._lock:
            self._items[key] = embedding
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return embedding
