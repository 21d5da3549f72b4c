"""segmentkit-mask2former: the mask-classification family, Mask2Former and EoMT segmenters
(semantic, instance, panoptic from one model).

Only the hook implementation lives here; torch and transformers are imported when a model
is loaded (``segmentkit_mask2former.model``, ``.eomt``).
"""

from __future__ import annotations

from segmentkit import ModelSpec, hookimpl

from . import eomt_specs, specs


@hookimpl
def segmentkit_segmenters() -> list[ModelSpec]:
    return specs.specs() + eomt_specs.specs()
