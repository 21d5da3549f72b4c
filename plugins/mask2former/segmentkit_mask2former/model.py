"""The Mask2Former segmenter: preprocess -> forward -> semantic / instance / panoptic result."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from segmentkit import ModelCard, Segmentation
from segmentkit.checkpoints import labels_from_config, read_config
from segmentkit.errors import WeightsUnavailableError
from segmentkit.io.image import load_image
from segmentkit.types import Masks
from segmentkit.weights import resolve_weights

from . import postprocess
from .processing import Preprocessing, preprocess
from .specs import INPUT_SIZE, Mask2FormerCall, Mask2FormerOptions, card_dataset

log = logging.getLogger(__name__)


class Mask2FormerSegmenter:
    """Semantic, instance and panoptic segmentation from one ``Mask2FormerForUniversalSegmentation``."""

    def __init__(self, card: ModelCard, options: Mask2FormerOptions):
        self.card = card
        self.options = options
        self.folder = resolve_weights(card, options.weights)
        config = read_config(self.folder, card.id, "mask2former", "Mask2Former")
        self.id2label = labels_from_config(config, card)
        dataset = card_dataset(card)
        self.thing_ids = frozenset(i for i, name in self.id2label.items() if name in dataset.things)
        self.stuff_ids = frozenset(self.id2label) - self.thing_ids
        self.preprocessing = Preprocessing.from_dir(self.folder, card.input_size or INPUT_SIZE)
        self.model = self._load()

    def segment(self, image: Any, *, task: str | None = None, options: Mask2FormerCall | None = None) -> Segmentation:
        """Segment ``image`` for ``task`` (default: the card's first; the core checked it is on the card).

        ``options`` (the thresholds set for this call) override the load options.
        """
        task = task or self.card.tasks[0]
        given = {} if options is None else options.model_dump(exclude_unset=True)
        options = self.options.model_copy(update=given) if given else self.options
        pixels = load_image(image)
        size = (int(pixels.shape[0]), int(pixels.shape[1]))
        class_logits, mask_logits = self._forward(preprocess(pixels, self.preprocessing))
        if task == "semantic":
            label_map = postprocess.semantic(class_logits, mask_logits, size)
            return Segmentation.from_label_map(label_map.to(torch.int32).numpy(), self.id2label)
        if task == "instance":
            found = postprocess.instance(class_logits, mask_logits, size, threshold=options.threshold,
                                         mask_threshold=options.mask_threshold)
            return Segmentation(kind="instance", image_size=size, masks=self._masks(found, size),
                                id2label=dict(self.id2label))
        fuse = self.stuff_ids if options.label_ids_to_fuse is None else frozenset(options.label_ids_to_fuse)
        found = postprocess.panoptic(
            class_logits, mask_logits, size, threshold=options.threshold, mask_threshold=options.mask_threshold,
            overlap_mask_area_threshold=options.overlap_mask_area_threshold, label_ids_to_fuse=fuse,
        )
        return Segmentation(kind="panoptic", image_size=size, masks=self._masks(found, size),
                            label_map=found.label_map.numpy(), id2label=dict(self.id2label))

    # ------------------------------------------------------------------ stages

    def _forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        device = torch.device(self.options.device)
        with torch.inference_mode():
            out = self.model(pixel_values=pixel_values.to(device))
        return out.class_queries_logits[0].float().cpu(), out.masks_queries_logits[0].float().cpu()

    def _masks(self, found: postprocess.Segments, size: tuple[int, int]) -> Masks:
        class_ids = found.class_ids.numpy()
        data = {"is_thing": np.array([int(c) in self.thing_ids for c in class_ids], dtype=bool)}
        if found.fused is not None:
            data["fused"] = found.fused.numpy()
        return Masks(found.masks.numpy().reshape(-1, *size), scores=found.scores.numpy(), class_ids=class_ids,
                     data=data, id2label=dict(self.id2label))

    def _load(self) -> Any:
        from transformers import Mask2FormerForUniversalSegmentation

        try:
            model = Mask2FormerForUniversalSegmentation.from_pretrained(self.folder)
        except Exception as exc:  # noqa: BLE001 - transformers raises OSError, ValueError, safetensors errors
            raise WeightsUnavailableError(
                f"weights for {self.card.id!r} in {self.folder} cannot be loaded: {type(exc).__name__}: {exc}"
            ) from None
        return model.eval().to(torch.device(self.options.device))
