"""Session fixtures: random-weight Mask2Former checkpoints (Swin backbone) saved to disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

CLASS_SCALE = 60.0  # random class heads are flat (~1/134); scaled up, some queries become confident


def build_checkpoint(folder: Path, labels: tuple[str, ...], seed: int = 0) -> Path:
    """A seeded Mask2FormerForUniversalSegmentation: Mask2Former's layout with a small Swin.

    Fewer and narrower layers than swin-tiny (one block per stage, 32-wide decoder, 50 queries)
    keep the suite fast; the processor config is the hub's but for 256x256 instead of 384x384.
    """
    import torch
    from transformers import (
        Mask2FormerConfig,
        Mask2FormerForUniversalSegmentation,
        Mask2FormerImageProcessorPil,
        SwinConfig,
    )

    torch.manual_seed(seed)
    backbone = SwinConfig(embed_dim=24, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=12,
                          out_features=["stage1", "stage2", "stage3", "stage4"])
    config = Mask2FormerConfig(
        backbone_config=backbone, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)}, feature_size=32, mask_feature_size=32, hidden_dim=32,
        encoder_feedforward_dim=64, dim_feedforward=64, encoder_layers=1, decoder_layers=3,
        num_attention_heads=2, num_queries=50,
    )
    model = Mask2FormerForUniversalSegmentation(config).eval()
    with torch.no_grad():
        model.class_predictor.weight.mul_(CLASS_SCALE)
    model.save_pretrained(folder)
    Mask2FormerImageProcessorPil(size={"height": 256, "width": 256}, size_divisor=32).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from segmentkit_mask2former.labels import COCO_PANOPTIC

    return build_checkpoint(tmp_path_factory.mktemp("m2f-coco-panoptic"), COCO_PANOPTIC)


@pytest.fixture(scope="session")
def segmenter(checkpoint: Path) -> object:
    import segmentkit as sk

    return sk.load("mask2former-swin-tiny-coco-panoptic", weights=checkpoint)


def smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """A photo-like (smooth, all grey levels) random RGB image."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 12 + 2, width // 12 + 2, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)).copy()


@pytest.fixture(scope="session")
def make_image() -> Callable[[int, int, int], np.ndarray]:
    return smooth_image


class Reference:
    """transformers' processor, model and ``post_process_*_segmentation`` on the same weights.

    torchvision is not installed here, so ``AutoImageProcessor`` gives the PIL backend
    (``Mask2FormerImageProcessorPil``); its Pillow resize equals torch's uint8 antialiased
    kernel (the torchvision backend's and the plugin's) bit for bit when an image is enlarged.
    """

    def __init__(self, folder: Path):
        from transformers import AutoImageProcessor, Mask2FormerForUniversalSegmentation

        self.processor = AutoImageProcessor.from_pretrained(folder)
        self.model = Mask2FormerForUniversalSegmentation.from_pretrained(folder).eval()

    def outputs(self, image: np.ndarray) -> tuple[np.ndarray, object]:
        import torch

        inputs = self.processor(images=image, return_tensors="pt")
        with torch.no_grad():
            return inputs["pixel_values"].numpy(), self.model(**inputs)

    def post_process(self, task: str, outputs: object, size: tuple[int, int], **kwargs: object) -> object:
        return getattr(self.processor, f"post_process_{task}_segmentation")(outputs, target_sizes=[size], **kwargs)[0]

    @staticmethod
    def raw(class_logits: object, mask_logits: object) -> object:
        """Model-output stand-in for synthetic logits (one image)."""
        return SimpleNamespace(class_queries_logits=class_logits[None], masks_queries_logits=mask_logits[None])


@pytest.fixture(scope="session")
def reference(checkpoint: Path) -> Reference:
    return Reference(checkpoint)
