"""The forward stage: a SAM-family image model's encoder and prompt decoder, with cached features.

This is the only place that sets device, dtype and inference mode. The image encoder
runs once per image (:meth:`Sam2Engine.encode`); prompts then go straight to the prompt
encoder and mask decoder with the cached features (:meth:`Sam2Engine.decode`), never
through the vision encoder again. The mask decoder is :class:`~.lean_decoder.LeanMaskDecoder`:
transformers' decoder maths with the prompt-independent work done once per image.
The image encoder is the family's lean one (SAM 2: :class:`~.hiera.LeanImageEncoder`,
transformers' Hiera + FPN maths without the per-image work the predictor never reads) or
transformers' own (:mod:`.image_encoder`). ``precision="bf16"`` runs the lean encoder's
bf16 stages (SAM 2: stages 0, 1 and 3 of the backbone; ``hiera.IMAGE_BF16_STAGES``) and the
decoder's image-side matrix products on bf16 inputs
(fp32 accumulation, everything else fp32: autocasting the whole decoder drifted to mask
IoU 0.94 on the test model; this keeps it >= 0.99).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import torch
from segmentkit.cards import ModelOptions

from .family import SamFamily
from .image_encoder import build_image_encoder
from .lean_decoder import DecoderImage, LeanMaskDecoder
from .prompts import mask_only_points


@dataclass(frozen=True, eq=False)
class ImageFeatures:
    """One image's encoder output: the low-res embedding and the two high-res feature maps."""

    embedding: torch.Tensor  # (1, C, h, w), no-memory embedding added
    high_res: tuple[torch.Tensor, torch.Tensor]  # (1, C/8, 4h, 4w), (1, C/4, 2h, 2w)
    original_size: tuple[int, int]
    engine: str  # token of the engine that computed it
    decoder_image: DecoderImage | None = None  # the lean decoder's per-image inputs (torch engine)

    @property
    def nbytes(self) -> int:
        """Bytes held, decoder inputs included (what an embedding cache should count)."""
        held = sum(t.numel() * t.element_size() for t in (self.embedding, *self.high_res))
        return held + (self.decoder_image.nbytes if self.decoder_image is not None else 0)


@dataclass(frozen=True)
class Decoded:
    """Decoder output for B x P prompts: low-res logits (B, P, C, h, w) and IoU (B, P, C)."""

    low_res_logits: torch.Tensor
    iou_scores: torch.Tensor


class Sam2Engine:
    """Runs a SAM-family image model's parts (``Sam2Model``'s layout) with cached image features."""

    def __init__(self, model: torch.nn.Module, options: ModelOptions, family: SamFamily):
        self.model = model
        self.device = torch.device(options.device)
        self.bf16 = options.precision == "bf16"
        self.token = uuid.uuid4().hex
        self.input_size = int(model.config.prompt_encoder_config.image_size)
        self.mask_input_size = tuple(int(s) for s in model.prompt_encoder.mask_input_size)
        self._encoder = build_image_encoder(family, model, bf16=self.bf16, video=False)
        with torch.inference_mode():
            image_pe = model.get_image_wide_positional_embeddings().to(self.device)
        self._decoder = LeanMaskDecoder(model, image_pe, gemm_dtype=torch.bfloat16 if self.bf16 else torch.float32)

    def encode(self, pixel_values: torch.Tensor, original_size: tuple[int, int]) -> ImageFeatures:
        """Run the vision encoder on (1, 3, S, S) pixel values."""
        with torch.inference_mode():
            embedding, high_res_0, high_res_1 = self._encoder(pixel_values.to(self.device))
        high_res = (high_res_0, high_res_1)
        return ImageFeatures(embedding, high_res, tuple(original_size), self.token,
                             self._decoder.prepare(embedding, high_res))

    def decode(
        self,
        features: ImageFeatures,
        points: torch.Tensor | None,
        labels: torch.Tensor | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
        *,
        multimask: bool,
    ) -> Decoded:
        """Decode prompts in model coordinates: points (B, P, K, 2), labels (B, P, K),
        boxes (B, P, 4), masks (B, 1, h, w) logits; B is 1 or the number of mask prompts."""
        if points is None and boxes is None:
            points, labels = mask_only_points(masks)
        ref = points if points is not None else boxes
        batch, objects = ref.shape[:2]
        sparse, dense = self._prompt_embeddings(points, labels, boxes, masks)
        per_object_dense = None if masks is None else dense.repeat_interleave(objects, dim=0)
        low_res, iou = self._decoder(features.decoder_image, sparse.flatten(0, 1), per_object_dense,
                                     multimask=multimask)
        return Decoded(low_res.unflatten(0, (batch, objects)).float(), iou.unflatten(0, (batch, objects)).float())

    def candidates_above(self, features: ImageFeatures, points: torch.Tensor, labels: torch.Tensor,
                         min_iou: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Multimask candidates of (1, P, K, 2) point prompts with predicted IoU above ``min_iou``:
        low-res logits (M, h, w), IoU (M,) and the prompt index of each (M,). Only prompts with a
        candidate above the threshold are upscaled (the automatic generator's first filter)."""
        sparse, _ = self._prompt_embeddings(points, labels, None, None)
        return self._decoder.candidates_above(features.decoder_image, sparse.flatten(0, 1), min_iou)

    def _prompt_embeddings(self, points, labels, boxes, masks) -> tuple[torch.Tensor, torch.Tensor]:
        """transformers' prompt encoder: sparse (B, P, K, C) and dense (B, C, h, w) embeddings."""
        dev = self.device
        with torch.inference_mode():
            return self.model.prompt_encoder(
                input_points=None if points is None else points.to(dev),
                input_labels=None if labels is None else labels.to(dev),
                input_boxes=None if boxes is None else boxes.to(dev),
                input_masks=None if masks is None else masks.to(dev),
            )
