"""The EoMT segmenter: ``EomtForUniversalSegmentation`` with EoMT's input geometry and the family's post-processing."""

from __future__ import annotations

import numpy as np
from segmentkit import ModelCard, Segmentation

from . import eomt_postprocess
from .eomt_processing import eomt_input
from .model import QuerySegmenter
from .processing import Preprocessing
from .specs import Mask2FormerOptions

# EomtImageProcessor's class defaults, used where a checkpoint's preprocessor_config.json is silent.
DEFAULT_SIZE = {"shortest_edge": 640, "longest_edge": 640}


class EomtSegmenter(QuerySegmenter):
    """Semantic, instance and panoptic segmentation from one ``EomtForUniversalSegmentation``.

    Panoptic and instance checkpoints pad the resized image to the model's square input;
    semantic checkpoints split it into overlapping square windows, one batch, averaged back.
    """

    model_type = "eomt"
    model_name = "EoMT"
    model_class = "EomtForUniversalSegmentation"

    def __init__(self, card: ModelCard, options: Mask2FormerOptions):
        super().__init__(card, options)
        self.preprocessing = Preprocessing.from_dir(self.folder, DEFAULT_SIZE, size_divisor=0, max_size=None)

    def _segment(self, pixels: np.ndarray, task: str, options: Mask2FormerOptions) -> Segmentation:
        size = (int(pixels.shape[0]), int(pixels.shape[1]))
        prep = self.preprocessing
        inputs = eomt_input(pixels, prep, split=task == "semantic")
        class_logits, mask_logits = self._forward(inputs.pixel_values)
        if task == "semantic":
            return self._semantic(eomt_postprocess.semantic(class_logits, mask_logits, inputs, prep, size))
        if task == "instance":
            return self._result("instance", eomt_postprocess.instance(
                class_logits[0], mask_logits[0], prep, size, threshold=options.threshold,
                mask_threshold=options.mask_threshold,
            ), size)
        return self._result("panoptic", eomt_postprocess.panoptic(
            class_logits[0], mask_logits[0], prep, size, threshold=options.threshold,
            mask_threshold=options.mask_threshold, overlap_mask_area_threshold=options.overlap_mask_area_threshold,
            label_ids_to_fuse=self._fuse(options),
        ), size)
