"""Grounding DINO through transformers, with our own pre- and post-processing.

Preprocessing reproduces transformers' ``GroundingDinoImageProcessorPil`` (PIL bilinear
resize to shortest 800 / longest 1333, rescale, ImageNet normalise, single image so no
padding); post-processing reproduces ``post_process_grounded_object_detection``.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from PIL import Image
from segmentkit.cards import ModelCard
from segmentkit.errors import PromptError, WeightsUnavailableError
from segmentkit.io import load_image
from segmentkit.roles import Detections
from segmentkit.runtime.pixels import IMAGENET
from segmentkit.weights import resolve_weights

from .options import GroundingCall, GroundingOptions
from .phrases import PhraseMap, normalise_query

log = logging.getLogger(__name__)

IMAGENET_MEAN = np.array(IMAGENET.image_mean, dtype=np.float32)
IMAGENET_STD = np.array(IMAGENET.image_std, dtype=np.float32)


def resized_size(height: int, width: int, shortest: int, longest: int) -> tuple[int, int]:
    """Output (h, w): short side ``shortest`` unless the long side would pass ``longest``."""
    raw = None
    size = shortest
    small, large = float(min(height, width)), float(max(height, width))
    if large / small * size > longest:
        raw = longest * small / large
        size = int(round(raw))
    if (height <= width and height == size) or (width <= height and width == size):
        return height, width
    if width < height:
        return (int(raw * height / width) if raw is not None else int(size * height / width)), size
    return size, (int(raw * width / height) if raw is not None else int(size * width / height))


def preprocess(image: np.ndarray, shortest: int, longest: int) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, h, w) float32, normalised."""
    h, w = resized_size(image.shape[0], image.shape[1], shortest, longest)
    resized = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR), dtype=np.float32)
    normalised = (resized / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)))[None]


def center_to_corners(boxes: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


class GroundingDino:
    """Grounder: ``detect(image, text)`` -> boxes, scores and matched phrases."""

    def __init__(self, card: ModelCard, options: GroundingOptions):
        from transformers import AutoTokenizer, GroundingDinoForObjectDetection

        self.card, self.options = card, options
        directory = resolve_weights(card, options.weights)
        try:
            self.model = GroundingDinoForObjectDetection.from_pretrained(directory).eval()
            self.tokenizer = AutoTokenizer.from_pretrained(directory)
        except (OSError, ValueError, RuntimeError) as exc:
            raise WeightsUnavailableError(
                f"weights for {card.id!r} in {directory} cannot be loaded ({type(exc).__name__}: {exc}); "
                "the directory needs config.json, the weights and the tokenizer files"
            ) from None
        self.device = torch.device(options.device)
        self.model.to(self.device)
        self.max_text_len = int(self.model.config.max_text_len)

    def tokenize(self, text: str) -> tuple[dict[str, torch.Tensor], PhraseMap]:
        query = normalise_query(text)
        enc = self.tokenizer(query, return_offsets_mapping=True, return_token_type_ids=True)
        n_tokens = len(enc["input_ids"])
        if n_tokens > self.max_text_len:
            raise PromptError(
                f"text prompt is {n_tokens} tokens, over {self.card.id}'s limit of {self.max_text_len}; "
                "use fewer or shorter phrases"
            )
        phrase_map = PhraseMap.build(query, [tuple(o) for o in enc["offset_mapping"]])
        tensors = {k: torch.tensor([enc[k]]) for k in ("input_ids", "attention_mask", "token_type_ids")}
        return tensors, phrase_map

    def forward(self, pixel_values: torch.Tensor, text_inputs: dict[str, torch.Tensor]):
        with torch.inference_mode():
            pixel_values = pixel_values.to(self.device)
            mask = torch.ones(pixel_values.shape[0], *pixel_values.shape[2:], dtype=torch.long, device=self.device)
            inputs = {k: v.to(self.device) for k, v in text_inputs.items()}
            return self.model(pixel_values=pixel_values, pixel_mask=mask, **inputs)

    def detect(self, image, text: str, *, options: GroundingCall | None = None) -> Detections:
        """Boxes (XYXY pixels) for the phrases of ``text``; empty when nothing scores high enough.

        ``options`` (thresholds set for this call) override the load options."""
        given = {} if options is None else options.model_dump(exclude_unset=True)
        array = load_image(image)
        text_inputs, phrase_map = self.tokenize(text)
        pixels = preprocess(array, self.options.shortest_edge, self.options.longest_edge)
        outputs = self.forward(pixels, text_inputs)
        return self.postprocess(
            outputs.logits[0], outputs.pred_boxes[0], text_inputs["input_ids"][0], phrase_map, array.shape[:2],
            given.get("box_threshold", self.options.box_threshold),
            given.get("text_threshold", self.options.text_threshold),
        )

    def postprocess(self, logits: torch.Tensor, boxes: torch.Tensor, input_ids: torch.Tensor,
                    phrase_map: PhraseMap, image_size: tuple[int, int], box_threshold: float,
                    text_threshold: float) -> Detections:
        """The reference grounded post-processing, vectorised; labels also mapped to query phrases."""
        probs = torch.sigmoid(logits.float().cpu())  # (Q, max_text_len)
        scores = probs.max(dim=-1).values
        keep = scores > box_threshold
        h, w = image_size
        xyxy = center_to_corners(boxes.float().cpu()[keep]) * torch.tensor([w, h, w, h], dtype=torch.float32)
        kept = probs[keep]
        posmap = kept > text_threshold
        posmap[:, 0] = False
        posmap[:, posmap.shape[-1] - 1:] = False
        ids = input_ids.cpu()
        token_labels = [
            self.tokenizer.decode([int(ids[i]) for i in row.nonzero(as_tuple=True)[0].tolist() if i < len(ids)])
            for row in posmap
        ]
        best = phrase_map.best_phrase(kept[:, : len(ids)].numpy()) if len(kept) else np.zeros(0, np.int64)
        return Detections(
            boxes=xyxy.numpy().astype(np.float32),
            scores=scores[keep].numpy().astype(np.float32),
            labels=[phrase_map.phrases[i] for i in best],
            image_size=(int(h), int(w)),
            token_labels=token_labels,
            phrase_ids=best.astype(np.int64),
            phrases=list(phrase_map.phrases),
        )
