"""Per-model options of the SAM-family prompter and automatic segmenter (pydantic, no torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from segmentkit.cards import ModelCard, ModelOptions


class SamFamilyOptions(ModelOptions):
    """Options every SAM-family model takes (prompter, automatic segmenter, tracker)."""

    engine: Literal["lean", "reference"] = Field(
        default="lean",
        description="'lean': segmentkit's forwards (fast paths); 'reference': transformers' own forward "
                    "(torch fp32, for parity checks and debugging).",
    )

    @model_validator(mode="after")
    def _reference_is_torch_fp32(self) -> SamFamilyOptions:
        if self.engine == "reference" and (self.runtime not in (None, "torch")
                                           or self.precision not in ("auto", "fp32")):
            raise ValueError(f"engine='reference' runs transformers' own forward on torch in fp32, "
                             f"not runtime {self.runtime or 'torch'!r} with precision {self.precision!r}")
        return self

    def precisions(self, card: ModelCard) -> tuple[str, ...]:
        """fp32 alone for the reference engine and ONNX Runtime; the card's precisions otherwise."""
        if self.engine == "reference" or self.runtime == "onnxruntime":
            return ("fp32",)
        return card.precisions


class Sam2Options(SamFamilyOptions):
    """Options of the SAM-family prompter."""

    cache_bytes: int = Field(
        default=512 * 2**20, ge=0,
        description="Upper bound in bytes of the image-embedding LRU cache (0 disables caching).",
    )
    mask_threshold: float = Field(default=0.0, description="Logit above which a pixel belongs to the mask.")
    ort_threads: int | None = Field(
        default=None, ge=1,
        description="ONNX Runtime intra-op threads with runtime='onnxruntime' (None: the physical cores).",
    )


class Sam2AutomaticOptions(Sam2Options):
    """Options of automatic mask generation (names and defaults follow SAM 2's generator)."""

    points_per_side: int = Field(default=32, ge=1, le=256, description="Grid points along each side.")
    points_per_batch: int = Field(default=64, ge=1, description="Grid points decoded in one call.")
    pred_iou_thresh: float = Field(default=0.8, ge=0.0, le=1.0, description="Keep masks with predicted IoU above this.")
    stability_score_thresh: float = Field(
        default=0.95, ge=0.0, le=1.0, description="Keep masks whose stability score is above this."
    )
    stability_score_offset: float = Field(default=1.0, ge=0.0, description="Logit offset of the stability score.")
    box_nms_thresh: float = Field(default=0.7, ge=0.0, le=1.0, description="Box IoU for NMS within a crop.")
    crop_n_layers: int = Field(default=0, ge=0, le=4, description="Extra layers of image crops (0: whole image only).")
    crop_nms_thresh: float = Field(default=0.7, ge=0.0, le=1.0, description="Box IoU for NMS across crops.")
    crop_overlap_ratio: float = Field(default=512 / 1500, ge=0.0, lt=1.0, description="Overlap of neighbouring crops.")
    crop_n_points_downscale_factor: int = Field(
        default=1, ge=1, description="Points per side in crop layer n are divided by this**n."
    )
    min_mask_region_area: int = Field(
        default=0, ge=0, description="Remove islands and fill holes smaller than this many pixels (0: off)."
    )
    multimask_output: bool = Field(default=True, description="Decode 3 candidate masks per grid point.")
