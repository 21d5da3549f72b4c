"""``engine="reference"``: the image model's plain transformers forward, for parity and debugging.

Same interface as :class:`~.engine.Sam2Engine`. ``encode`` is ``model.get_image_embeddings``;
``decode`` is ``model(image_embeddings=..., input_points=..., ...)``, one call per batch row
(mask prompts bring one row each). Nothing of the lean paths runs, so a difference between
the two engines points at the lean code.
"""

from __future__ import annotations

import uuid

import torch
from segmentkit.cards import ModelOptions

from .engine import Decoded, ImageFeatures


class ReferenceEngine:
    """Runs the loaded transformers image model as its own docs do (fp32)."""

    def __init__(self, model: torch.nn.Module, options: ModelOptions):
        self.model = model
        self.device = torch.device(options.device)
        self.token = uuid.uuid4().hex
        self.input_size = int(model.config.prompt_encoder_config.image_size)
        self.mask_input_size = tuple(int(s) for s in model.prompt_encoder.mask_input_size)

    def encode(self, pixel_values: torch.Tensor, original_size: tuple[int, int]) -> ImageFeatures:
        """``get_image_embeddings`` on (1, 3, S, S) pixel values."""
        with torch.inference_mode():
            high_res_0, high_res_1, embedding = self.model.get_image_embeddings(pixel_values.to(self.device))
        return ImageFeatures(embedding, (high_res_0, high_res_1), tuple(original_size), self.token)

    def decode(self, features: ImageFeatures, points: torch.Tensor | None, labels: torch.Tensor | None,
               boxes: torch.Tensor | None, masks: torch.Tensor | None, *, multimask: bool) -> Decoded:
        """Same contract as :meth:`~.engine.Sam2Engine.decode`."""
        rows = max(t.shape[0] for t in (points, boxes, masks) if t is not None)
        dev = self.device
        image = [features.high_res[0], features.high_res[1], features.embedding]
        low_res, iou = [], []
        with torch.inference_mode():
            for b in range(rows):
                out = self.model(
                    image_embeddings=image,
                    input_points=None if points is None else points[b:b + 1].to(dev),
                    input_labels=None if labels is None else labels[b:b + 1].to(dev),
                    input_boxes=None if boxes is None else boxes[b:b + 1].to(dev),
                    input_masks=None if masks is None else masks[b:b + 1].to(dev),
                    multimask_output=multimask,
                )
                low_res.append(out.pred_masks)
                iou.append(out.iou_scores)
        return Decoded(torch.cat(low_res).float(), torch.cat(iou).float())
