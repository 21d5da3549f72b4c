"""SegFormer model cards and options (cheap: pydantic only, no torch)."""

from __future__ import annotations

from pydantic import Field
from segmentkit import ModelCard, ModelOptions, ModelSpec, WeightsSource
from segmentkit.label_sets import ADE20K, CITYSCAPES

LOADER = "segmentkit_segformer.model:SegformerSegmenter"
_UNPINNED = "main"  # no commit hash of this repository could be found offline; pin one when known
# The commit each hub repository is pinned to (`segmentkit pull --revision` chooses another).
REVISIONS = {
    "nvidia/segformer-b0-finetuned-ade-512-512": "489d5cd81a0b59fab9b7ea758d3548ebe99677da",
    "nvidia/segformer-b1-finetuned-ade-512-512": _UNPINNED,
    "nvidia/segformer-b2-finetuned-ade-512-512": _UNPINNED,
    "nvidia/segformer-b3-finetuned-ade-512-512": "a820c29fc1e53723079d94ca0e09a14d2657fae6",
    "nvidia/segformer-b4-finetuned-ade-512-512": _UNPINNED,
    "nvidia/segformer-b5-finetuned-ade-640-640": "739f5d4692954e4a185eac280dec1ba5a7d52f1d",
    "nvidia/segformer-b0-finetuned-cityscapes-1024-1024": "21b3847fae21ddee674abd31129307b6a1235bd9",
    "nvidia/segformer-b1-finetuned-cityscapes-1024-1024": "ec86afeba68e656629ccf47e0c8d2902f964917b",
    "nvidia/segformer-b2-finetuned-cityscapes-1024-1024": "d633b2072669ca68d8f8e309de9b52bfdbf6bf72",
    "nvidia/segformer-b3-finetuned-cityscapes-1024-1024": _UNPINNED,
    "nvidia/segformer-b4-finetuned-cityscapes-1024-1024": _UNPINNED,
    "nvidia/segformer-b5-finetuned-cityscapes-1024-1024": _UNPINNED,
}
LICENSE = "other (NVIDIA Source Code License for SegFormer, non-commercial)"
HOMEPAGE = "https://arxiv.org/abs/2105.15203"

# Parameters of each encoder size with its all-MLP head (ADE20k head; the paper's Table 1).
_PARAMS = {"b0": 3_800_000, "b1": 13_700_000, "b2": 27_500_000, "b3": 47_300_000, "b4": 64_100_000,
           "b5": 84_700_000}
# SegFormer-B5's ADE20k checkpoint was fine-tuned at 640x640, the others at 512x512.
_ADE_SIZE = {"b5": 640}


class SegformerOptions(ModelOptions):
    """Options of the SegFormer segmenters."""

    sliding_window: bool = Field(
        default=False,
        description="For images larger than the model's input on both sides: shrink the short side to "
                    "one window and slide windows over it, instead of squashing the image into one window.",
    )
    window_overlap: float = Field(
        default=1 / 3, ge=0.0, lt=1.0, description="Overlap of neighbouring windows, as a fraction of a window."
    )
    window_batch: int = Field(default=4, ge=1, le=64, description="Windows run through the model at once.")
    onnx_opset: int = Field(default=17, ge=14, le=21, description="ONNX opset of the exported model.")
    ort_threads: int | None = Field(
        default=None, ge=1,
        description="ONNX Runtime intra-op threads with runtime='onnxruntime' (None: ONNX Runtime's default, "
                    "the physical cores).",
    )
    onnx_cache: str | None = Field(
        default=None,
        description="Folder for exported ONNX models (default $SEGMENTKIT_CACHE/onnx or ~/.cache/segmentkit/onnx).",
    )


def _card(size: str, dataset: str) -> ModelCard:
    if dataset == "ade":
        side = _ADE_SIZE.get(size, 512)
        repo = f"nvidia/segformer-{size}-finetuned-ade-{side}-{side}"
        labels, what = ADE20K, "ADE20k (150 classes, scenes)"
    else:
        side = 1024
        repo = f"nvidia/segformer-{size}-finetuned-cityscapes-1024-1024"
        labels, what = CITYSCAPES, "Cityscapes (19 classes, street scenes)"
    return ModelCard(
        id=f"segformer-{size}-{dataset}",
        family="segformer",
        roles=("segmenter",),
        tasks=("semantic",),
        labels=labels,
        description=f"SegFormer-{size.upper()} semantic segmentation fine-tuned on {what}.",
        params=_PARAMS[size],
        license=LICENSE,
        weights=WeightsSource(repo_id=repo, revision=REVISIONS[repo],
                              files=("config.json", "preprocessor_config.json", "*.safetensors", "pytorch_model.bin")),
        input_size=side,
        runtimes=("torch", "onnxruntime"),
        precisions=("fp32",),
        homepage=HOMEPAGE,
    )


CARDS: tuple[ModelCard, ...] = tuple(
    _card(size, dataset) for dataset in ("ade", "cityscapes") for size in _PARAMS
)


def specs() -> list[ModelSpec]:
    """One segmenter spec per card."""
    return [ModelSpec(card=card, role="segmenter", loader=LOADER, options=SegformerOptions) for card in CARDS]
