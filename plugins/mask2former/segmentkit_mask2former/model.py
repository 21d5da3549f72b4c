"""Segmenters of the mask-classification family: the shared load / options / result steps, and Mask2Former."""

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


class QuerySegmenter:
    """What every mask-classification segmenter shares: weights and labels, thing / stuff classes,
    per-call options, the forward pass and the result types. Subclasses name the transformers model
    and turn an image into a result (:meth:`_segment`)."""

    model_type = ""  # config.json's model_type
    model_name = ""  # shown in errors
    model_class = ""  # the transformers class that loads the checkpoint

    def __init__(self, card: ModelCard, options: Mask2FormerOptions):
        self.card = card
        self.options = options
        self.folder = resolve_weights(card, options.weights)
        self.config = read_config(self.folder, card.id, self.model_type, self.model_name)
        self.id2label = labels_from_config(self.config, card)
        dataset = card_dataset(card)
        self.thing_ids = frozenset(i for i, name in self.id2label.items() if name in dataset.things)
        self.stuff_ids = frozenset(self.id2label) - self.thing_ids
        self.dtype = torch.bfloat16 if options.precision == "bf16" else torch.float32
        self.model = self._load()

    def segment(self, image: Any, *, task: str | None = None, options: Mask2FormerCall | None = None) -> Segmentation:
        """Segment ``image`` for ``task`` (default: the card's first; the core checked it is on the card).

        ``options`` (the thresholds set for this call) override the load options.
        """
        given = {} if options is None else options.model_dump(exclude_unset=True)
        merged = self.options.model_copy(update=given) if given else self.options
        return self._segment(load_image(image), task or self.card.tasks[0], merged)

    def _segment(self, pixels: np.ndarray, task: str, options: Mask2FormerOptions) -> Segmentation:
        raise NotImplementedError

    # ------------------------------------------------------------------ shared stages

    def _forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, Q, C + 1) class logits and (N, Q, h, w) mask logits, float32 on the CPU."""
        device = torch.device(self.options.device)
        with torch.inference_mode():
            out = self.model(pixel_values=pixel_values.to(device, self.dtype))
        return out.class_queries_logits.float().cpu(), out.masks_queries_logits.float().cpu()

    def _fuse(self, options: Mask2FormerOptions) -> frozenset[int]:
        return self.stuff_ids if options.label_ids_to_fuse is None else frozenset(options.label_ids_to_fuse)

    def _result(self, kind: str, found: postprocess.Segments, size: tuple[int, int]) -> Segmentation:
        """An instance or panoptic result of ``found``."""
        label_map = None if found.label_map is None else found.label_map.numpy()
        return Segmentation(kind=kind, image_size=size, masks=self._masks(found, size), label_map=label_map,
                            id2label=dict(self.id2label))

    def _semantic(self, label_map: torch.Tensor) -> Segmentation:
        return Segmentation.from_label_map(label_map.to(torch.int32).numpy(), self.id2label)

    def _masks(self, found: postprocess.Segments, size: tuple[int, int]) -> Masks:
        class_ids = found.class_ids.numpy()
        data = {"is_thing": np.array([int(c) in self.thing_ids for c in class_ids], dtype=bool)}
        if found.fused is not None:
            data["fused"] = found.fused.numpy()
        return Masks(found.masks.numpy().reshape(-1, *size), scores=found.scores.numpy(), class_ids=class_ids,
                     data=data, id2label=dict(self.id2label))

    def _load(self) -> Any:
        import transformers

        try:
            model = getattr(transformers, self.model_class).from_pretrained(self.folder)
        except Exception as exc:
            raise WeightsUnavailableError(
                f"weights for {self.card.id!r} in {self.folder} cannot be loaded: {type(exc).__name__}: {exc}"
            ) from None
        return model.eval().to(torch.device(self.options.device), self.dtype)


class Mask2FormerSegmenter(QuerySegmenter):
    """Semantic, instance and panoptic segmentation from one ``Mask2FormerForUniversalSegmentation``."""

    model_type = "mask2former"
    model_name = "Mask2Former"
    model_class = "Mask2FormerForUniversalSegmentation"

    def __init__(self, card: ModelCard, options: Mask2FormerOptions):
        super().__init__(card, options)
        size = card.input_size or INPUT_SIZE
        self.preprocessing = Preprocessing.from_dir(self.folder, {"height": size, "width": size})

    def _forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The final decoder layer's class and mask logits, as ``Mask2FormerForUniversalSegmentation``
        answers them, without the work it throws away at inference: the hidden states its
        auxiliary loss asks for, and the class logits of the nine intermediate decoder layers."""
        inner = self.model.model
        device = torch.device(self.options.device)
        with torch.inference_mode():
            pixels = inner.pixel_level_module(pixel_values=pixel_values.to(device, self.dtype))
            decoder = inner.transformer_module(multi_scale_features=pixels.decoder_hidden_states,
                                               mask_features=pixels.decoder_last_hidden_state)
            class_logits = self.model.class_predictor(decoder.intermediate_hidden_states[-1].transpose(0, 1))
            mask_logits = decoder.masks_queries_logits[-1]
        return class_logits.float().cpu(), mask_logits.float().cpu()

    def _segment(self, pixels: np.ndarray, task: str, options: Mask2FormerOptions) -> Segmentation:
        size = (int(pixels.shape[0]), int(pixels.shape[1]))
        class_logits, mask_logits = (t[0] for t in self._forward(preprocess(pixels, self.preprocessing)))
        if task == "semantic":
            return self._semantic(postprocess.semantic(class_logits, mask_logits, size))
        if task == "instance":
            return self._result("instance", postprocess.instance(
                class_logits, mask_logits, size, threshold=options.threshold, mask_threshold=options.mask_threshold,
            ), size)
        return self._result("panoptic", postprocess.panoptic(
            class_logits, mask_logits, size, threshold=options.threshold, mask_threshold=options.mask_threshold,
            overlap_mask_area_threshold=options.overlap_mask_area_threshold, label_ids_to_fuse=self._fuse(options),
        ), size)
