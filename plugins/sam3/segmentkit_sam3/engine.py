"""SAM 3 on one image: features once, then concept queries (text / exemplars) or tracker prompts.

- ``features``: one ViT pass feeds both FPN necks (the detector's and the tracker's).
- ``concept``: ``Sam3Model`` with the image features, text tokens and exemplar boxes; every
  query scoring above the threshold is an instance (score = query prob x presence prob,
  as transformers' ``post_process_instance_segmentation``), its mask the sigmoid of its
  logits upsampled to the image and thresholded.
- ``interactive``: ``Sam3TrackerModel`` (SAM 2-style prompt encoder + mask decoder) for
  points and a box; low-res logits upsampled straight to the image, inside where > 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from segmentkit.types import Masks

from . import preprocess
from .loading import Sam3Models


@dataclass(frozen=True)
class ImageFeatures:
    """What one image's ViT pass gives both heads."""

    detector: Any  # Sam3VisionEncoderOutput (detector FPN)
    tracker: list[torch.Tensor]  # Sam3TrackerModel image_embeddings (tracker FPN, projected)
    image_size: tuple[int, int]


class Sam3Engine:
    """The maths of SAM 3 on images, over the shared transformers modules of one checkpoint."""

    def __init__(self, models: Sam3Models):
        self.models = models

    @torch.inference_mode()
    def features(self, rgb: np.ndarray) -> ImageFeatures:
        models = self.models
        pixels = preprocess.pixel_values(rgb, models.image_size).to(models.device)
        detector = models.detector.vision_encoder(pixels)
        return ImageFeatures(detector, self._tracker_features(detector.last_hidden_state), rgb.shape[:2])

    def _tracker_features(self, hidden: torch.Tensor) -> list[torch.Tensor]:
        """``Sam3TrackerModel``'s image embeddings, from the ViT output the detector already has."""
        tracker = self.models.tracker
        grid = self.models.image_size // tracker.vision_encoder.config.backbone_config.patch_size
        spatial = hidden.view(hidden.shape[0], grid, grid, -1).permute(0, 3, 1, 2)
        maps = list(tracker.vision_encoder.neck(spatial)[0])
        maps[0] = tracker.mask_decoder.conv_s0(maps[0])
        maps[1] = tracker.mask_decoder.conv_s1(maps[1])
        flat = [m.flatten(2).permute(2, 0, 1) for m in maps]
        flat[-1] = flat[-1] + tracker.no_memory_embedding
        return [f.permute(1, 2, 0).view(hidden.shape[0], -1, *size)
                for f, size in zip(flat, tracker.backbone_feature_sizes)]

    @torch.inference_mode()
    def concept(self, features: ImageFeatures, text: str, boxes: np.ndarray, *, threshold: float,
                mask_threshold: float) -> Masks:
        """Every instance of ``text`` (and of the exemplar ``boxes``, XYXY pixels) scoring above ``threshold``."""
        models = self.models
        ids, attention = preprocess.tokens(models.tokenizer, [text])
        extra: dict[str, torch.Tensor] = {}
        if len(boxes):
            extra["input_boxes"] = preprocess.exemplar_boxes(boxes, features.image_size).to(models.device)
            extra["input_boxes_labels"] = torch.ones(extra["input_boxes"].shape[:2], dtype=torch.long,
                                                     device=models.device)
        out = models.detector(vision_embeds=features.detector, input_ids=ids.to(models.device),
                              attention_mask=attention.to(models.device), **extra)
        return concept_masks(out, features.image_size, text, threshold=threshold, mask_threshold=mask_threshold)

    @torch.inference_mode()
    def interactive(self, features: ImageFeatures, points: np.ndarray, labels: np.ndarray, box: np.ndarray | None,
                    *, multimask: bool) -> Masks:
        """One object's mask (or three candidates with ``multimask``) from clicks and at most one box."""
        models, size = self.models, self.models.image_size
        kwargs: dict[str, torch.Tensor] = {}
        if len(points):
            kwargs["input_points"] = preprocess.to_model_square(points, features.image_size, size)[None, None]
            kwargs["input_labels"] = torch.as_tensor(labels, dtype=torch.long)[None, None]
        if box is not None:
            kwargs["input_boxes"] = preprocess.to_model_square(box.reshape(2, 2), features.image_size,
                                                               size).reshape(1, 1, 4)
        kwargs = {k: v.to(models.device) for k, v in kwargs.items()}
        out = models.tracker(image_embeddings=features.tracker, multimask_output=multimask, **kwargs)
        logits = torch.nn.functional.interpolate(out.pred_masks[0, 0][None], features.image_size, mode="bilinear",
                                                 align_corners=False)[0]
        scores = out.iou_scores[0, 0].float().cpu().numpy()
        order = np.argsort(-scores, kind="stable") if multimask else np.arange(len(scores))
        return Masks((logits > 0).cpu().numpy()[order], scores=scores[order],
                     data={"iou_pred": scores[order],
                           "object_score": np.full(len(order), float(out.object_score_logits.reshape(-1)[0]),
                                                   np.float32)})


def concept_masks(out: Any, image_size: tuple[int, int], label: str, *, threshold: float,
                  mask_threshold: float) -> Masks:
    """Instances of a ``Sam3Model`` output above ``threshold``, best first, labelled ``label``."""
    scores = out.pred_logits[0].sigmoid()
    if out.presence_logits is not None:
        scores = scores * out.presence_logits[0].sigmoid()
    keep = torch.nonzero(scores > threshold).reshape(-1)
    keep = keep[torch.argsort(scores[keep], descending=True, stable=True)]
    h, w = image_size
    detector_boxes = (out.pred_boxes[0, keep] * torch.tensor([w, h, w, h], device=scores.device)).float().cpu()
    if len(keep):
        probs = torch.nn.functional.interpolate(out.pred_masks[0, keep][None].sigmoid(), size=image_size,
                                                mode="bilinear", align_corners=False)[0]
        masks = (probs > mask_threshold).cpu().numpy()
    else:
        masks = np.zeros((0, h, w), dtype=bool)
    kept = scores[keep].float().cpu().numpy()
    return Masks(masks, scores=kept, class_ids=np.zeros(len(keep), np.int64), id2label={0: label},
                 data={"detector_box": detector_boxes.numpy().reshape(-1, 4), "query": keep.cpu().numpy()})
