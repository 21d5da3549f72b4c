"""Loaded models shared by every client of a long-running host (the IPC service, and the
Label Studio backend and Ray Serve replicas built on it).

Options come from the server's command line: some for every model (device, precision),
some for one model id (a local checkpoint). Each (model id, role, options) is loaded once, on first use,
and kept. Loading happens under a per-entry lock, so two clients asking for the same model at once load it once,
while different models load in parallel. A model is called under its own lock unless
it declares ``thread_safe = True``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Loaded:
    """A loaded model and the lock its calls take."""

    model: Any
    model_id: str
    role: str
    loads: int = 1
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def use(self) -> Iterator[Any]:
        """Hold the model for one call (serialised unless the model is thread-safe)."""
        if getattr(self.model, "thread_safe", False) is True:
            self.calls += 1
            yield self.model
            return
        with self.lock:
            self.calls += 1
            yield self.model


@dataclass(eq=False)
class _Slot:
    lock: threading.Lock = field(default_factory=threading.Lock)
    loaded: Loaded | None = None
    loads: int = 0


class ModelCache:
    """Lazy, thread-safe cache of loaded models over one registry."""

    def __init__(self, registry: Any, options: dict[str, Any] | None = None,
                 per_model: dict[str, dict[str, Any]] | None = None):
        self.registry = registry
        self.options = dict(options or {})
        self.per_model = {k: dict(v) for k, v in (per_model or {}).items()}
        self._slots: dict[tuple[str, str, str], _Slot] = {}
        self._lock = threading.Lock()

    def get(self, model_id: str, role: str) -> Loaded:
        """The loaded ``model_id`` in ``role`` (a canonical id), loading it on first use."""
        options = {**self.options, **self.per_model.get(model_id, {})}
        key = (model_id, role, json.dumps(options, sort_keys=True, default=str))
        with self._lock:
            slot = self._slots.setdefault(key, _Slot())
        with slot.lock:
            if slot.loaded is None:
                log.info("loading model %s as %s", model_id, role)
                model = self.registry.load(model_id, role=role, **options)
                slot.loads += 1
                slot.loaded = Loaded(model, model_id, role, loads=slot.loads)
            return slot.loaded

    def stats(self) -> list[Loaded]:
        """Every model loaded so far."""
        with self._lock:
            return [s.loaded for s in self._slots.values() if s.loaded is not None]
