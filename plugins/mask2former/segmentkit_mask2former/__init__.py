"""segmentkit-mask2former: Mask2Former segmenters (semantic, instance, panoptic from one model).

Only the hook implementation lives here; torch and transformers are imported when a model
is loaded (``segmentkit_mask2former.model``).
"""

from __future__ import annotations

from segmentkit import ModelSpec, hookimpl

from .specs import specs


@hookimpl
def segmentkit_segmenters() -> list[ModelSpec]:
    return specs()
