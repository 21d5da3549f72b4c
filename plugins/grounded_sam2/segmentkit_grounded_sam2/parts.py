"""Find the pipeline's grounder and SAM 2 models through the registry, never by import."""

from __future__ import annotations

import threading
from typing import Any

from segmentkit.registry import default_registry

from .options import GroundedOptions
from .phrases import normalise_query


class Parts:
    """Lazily loaded grounder / prompter / tracker named by the options, shared by one pipeline."""

    def __init__(self, options: GroundedOptions):
        self.options = options
        self._lock = threading.Lock()
        self._loaded: dict[str, Any] = {}

    def _get(self, role: str, model_id: str, weights: Any, **extra: Any) -> Any:
        with self._lock:
            if role not in self._loaded:
                kwargs: dict[str, Any] = {"device": self.options.device, **extra}
                if weights is not None:
                    kwargs["weights"] = weights
                self._loaded[role] = default_registry().load(model_id, role=role, **kwargs)
            return self._loaded[role]

    @property
    def detector(self) -> Any:
        return self._get("grounder", self.options.detector, self.options.detector_weights)

    @property
    def prompter(self) -> Any:
        return self._get("prompter", self.options.sam, self.options.sam_weights)

    @property
    def tracker(self) -> Any:
        return self._get("tracker", self.options.sam, self.options.sam_weights)

    def detect(self, image: Any, text: str) -> Any:
        """Run the grounder on the normalised query ("A cat. dog" -> "a cat. dog.").

        The pipeline's thresholds go to a grounder whose per-call options take them.
        """
        takes = self.detector.spec.call_options.model_fields
        thresholds = {k: getattr(self.options, k) for k in ("box_threshold", "text_threshold") if k in takes}
        return self.detector.detect(image, normalise_query(text), **thresholds)
