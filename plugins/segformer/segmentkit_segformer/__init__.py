"""segmentkit-segformer: SegFormer b0-b5 semantic segmenters (ADE20k and Cityscapes heads).

Only the hook implementation lives here; torch, transformers and onnxruntime are imported
when a model is loaded (``segmentkit_segformer.model``).
"""

from __future__ import annotations

from segmentkit import ModelSpec, hookimpl

from .specs import specs


@hookimpl
def segmentkit_segmenters() -> list[ModelSpec]:
    return specs()
