"""EoMT outputs -> semantic, instance and panoptic results, as ``EomtImageProcessor.post_process_*`` computes them.

EoMT's mask geometry: mask logits are resized (bilinear) to the processor's size
(:func:`.eomt_processing.output_size`), the padding is cropped off and what is left is resized
to the image; split images average their windows' class scores on the resized image first.
The maths after that is the family's (:mod:`.postprocess`). Queries that cannot pass the score
threshold are dropped before any resize: an instance's score is its class probability times a
mean mask probability (< 1), so a class probability under the threshold never passes.

One deliberate difference: transformers' semantic output of a *padded* input resizes the whole
padded score map to the image (the padding stretches over it); here the padding is cropped
first, as panoptic and instance output do. Equal when nothing is padded (a square image).
"""

from __future__ import annotations

import math
from collections.abc import Collection

import torch
import torch.nn.functional as F

from . import postprocess
from .eomt_processing import EomtInput, output_size
from .postprocess import Segments
from .processing import Preprocessing


def _at_output_size(mask_logits: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """(..., Q, h, w) -> (..., Q, H0, W0) at the processor's size, bilinear (``F.interpolate``'s defaults)."""
    if mask_logits.dim() == 3:
        return F.interpolate(mask_logits[None], size=output_size(prep), mode="bilinear")[0]
    return F.interpolate(mask_logits, size=output_size(prep), mode="bilinear")


def _to_image(mask_logits: torch.Tensor, prep: Preprocessing, size: tuple[int, int]) -> torch.Tensor:
    """(K, h, w) mask logits -> (K, H, W) at the image size: via the processor's size, padding cropped."""
    if mask_logits.shape[0] == 0:
        return torch.zeros((0, *size))
    height, width = prep.target_size(*size)  # the resized image inside the padded input
    logits = _at_output_size(mask_logits, prep)[:, :height, :width]
    return F.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)[0]


def semantic(class_logits: torch.Tensor, mask_logits: torch.Tensor, inputs: EomtInput, prep: Preprocessing,
             size: tuple[int, int]) -> torch.Tensor:
    """(H, W) int64 class map; ``class_logits`` (N, Q, C + 1) and ``mask_logits`` (N, Q, h, w) for N windows."""
    scores = postprocess.class_scores(class_logits, _at_output_size(mask_logits, prep).sigmoid())  # (N, C, H0, W0)
    if inputs.windows is None:
        merged = scores[0]
        if prep.do_pad:
            merged = merged[:, :inputs.resized[0], :inputs.resized[1]]
    else:
        merged = torch.zeros((scores.shape[1], *inputs.resized))
        count = torch.zeros(inputs.resized)
        for window, (start, end) in zip(scores, inputs.windows.spans):
            if inputs.windows.vertical:
                merged[:, start:end] += window
                count[start:end] += 1
            else:
                merged[:, :, start:end] += window
                count[:, start:end] += 1
        merged /= count.clamp(min=1)
    return postprocess.semantic_map(merged, size)


def instance(class_logits: torch.Tensor, mask_logits: torch.Tensor, prep: Preprocessing, size: tuple[int, int], *,
             threshold: float, mask_threshold: float) -> Segments:
    """Instances: each query's best class, scored by class probability x mean mask probability inside
    its mask (logit above ``logit(mask_threshold)``, 0 by default); highest score first."""
    scores, classes = class_logits.softmax(dim=-1)[:, :-1].max(-1)
    candidates = (scores.double() >= threshold).nonzero().flatten()
    logits = _to_image(mask_logits[candidates], prep, size)
    binary = logits > math.log(mask_threshold / (1 - mask_threshold))
    pred_scores = scores[candidates] * postprocess.mask_scores(logits.sigmoid(), binary.float())
    keep = ((pred_scores.double() >= threshold) & binary.flatten(1).any(1)).nonzero().flatten()
    keep = keep[pred_scores[keep].argsort(descending=True, stable=True)]
    return Segments(binary[keep], classes[candidates][keep], pred_scores[keep])


def panoptic(class_logits: torch.Tensor, mask_logits: torch.Tensor, prep: Preprocessing, size: tuple[int, int], *,
             threshold: float, mask_threshold: float, overlap_mask_area_threshold: float,
             label_ids_to_fuse: Collection[int]) -> Segments:
    """Panoptic segments: each pixel goes to its best score-weighted query; a segment keeps only the
    pixels inside its own mask; classes in ``label_ids_to_fuse`` merge."""
    keep, pred_scores, pred_labels = postprocess.confident_queries(class_logits, threshold)
    if pred_labels.shape[0] == 0:
        return postprocess.empty_panoptic(size)
    probs = _to_image(mask_logits[keep], prep, size).sigmoid()
    owner = (pred_scores.view(-1, 1, 1) * probs).argmax(0)
    return postprocess.assign_segments(owner, probs, pred_labels, pred_scores, mask_threshold=mask_threshold,
                                       overlap_mask_area_threshold=overlap_mask_area_threshold,
                                       label_ids_to_fuse=label_ids_to_fuse, clip_to_mask=True)
