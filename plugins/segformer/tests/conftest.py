"""Session fixtures: a random-weight SegFormer-B0 (the real B0 config, ADE20k head) saved to disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

INPUT_SIZE = 256  # the checkpoint's processor size; the hub's ADE models use 512


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded random SegformerForSemanticSegmentation with 150 named labels (ADE20k's).

    B0's layout (4 stages, patch sizes 7/3/3/3, strides 4/2/2/2, reduction ratios 8/4/2/1,
    output stride 4) with one block per stage and narrower widths, to keep the suite fast.
    """
    import torch
    from segmentkit.label_sets import ADE20K
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessorPil

    torch.manual_seed(0)
    config = SegformerConfig(  # defaults are nvidia/mit-b0's encoder and head
        depths=[1, 1, 1, 1], hidden_sizes=[16, 32, 64, 128], num_attention_heads=[1, 1, 2, 4],
        decoder_hidden_size=64, num_labels=len(ADE20K), id2label=dict(enumerate(ADE20K)),
        label2id={n: i for i, n in enumerate(ADE20K)},
    )
    folder = tmp_path_factory.mktemp("segformer-b0")
    SegformerForSemanticSegmentation(config).eval().save_pretrained(folder)
    SegformerImageProcessorPil(size={"height": INPUT_SIZE, "width": INPUT_SIZE}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def segmenter(checkpoint: Path) -> object:
    import segmentkit as sk

    return sk.load("segformer-b0-ade", weights=checkpoint)


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
    """transformers' processor + model + ``post_process_semantic_segmentation`` on the same weights.

    torchvision is not installed here, so ``AutoImageProcessor`` gives the PIL backend
    (``SegformerImageProcessorPil``). Pillow's bilinear resize agrees bit for bit with torch's
    uint8 antialiased kernel (the torchvision backend's and the plugin's) when an image is
    enlarged, and is one grey level off in a few per cent of pixels when it is shrunk.
    """

    def __init__(self, folder: Path):
        from transformers import AutoImageProcessor, SegformerForSemanticSegmentation

        self.processor = AutoImageProcessor.from_pretrained(folder)
        self.model = SegformerForSemanticSegmentation.from_pretrained(folder).eval()

    def pixel_values(self, image: np.ndarray, **kwargs: object) -> np.ndarray:
        return self.processor(images=image, return_tensors="pt", **kwargs)["pixel_values"].numpy()

    def logits(self, pixel_values: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.model(pixel_values=torch.from_numpy(pixel_values)).logits.numpy()

    def label_map(self, logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        import torch

        outputs = SimpleNamespace(logits=torch.from_numpy(logits))
        return self.processor.post_process_semantic_segmentation(outputs, target_sizes=[size])[0].numpy()

    def segment(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pixel_values, label map) of an (H, W, 3) uint8 image."""
        pixels = self.pixel_values(image)
        return pixels, self.label_map(self.logits(pixels), image.shape[:2])


@pytest.fixture(scope="session")
def reference(checkpoint: Path) -> Reference:
    return Reference(checkpoint)
