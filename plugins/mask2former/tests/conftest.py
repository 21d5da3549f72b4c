"""Session fixtures: random-weight Mask2Former (Swin backbone) and EoMT checkpoints saved to disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

CLASS_SCALE = 60.0  # random class heads are flat (~1/134); scaled up, some queries become confident
# Random EoMT mask logits are near 0 (std ~0.6) and alike across queries: no panoptic segment
# survives. Scaled up, semantic maps hold ~18 labels and panoptic keeps a few segments.
EOMT_MASK_SCALE = 20.0


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


def build_eomt(folder: Path, labels: tuple[str, ...], processor: dict, image_size: int, seed: int = 0) -> Path:
    """A seeded EomtForUniversalSegmentation: EoMT's layout with a 4-layer, 32-wide ViT (2 query
    blocks, 30 queries) at ``image_size``, class and mask heads scaled; ``processor`` holds the
    EomtImageProcessor fields."""
    import torch
    from transformers import EomtConfig, EomtForUniversalSegmentation, EomtImageProcessorPil

    torch.manual_seed(seed)
    config = EomtConfig(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=2, mlp_ratio=2, image_size=image_size,
        patch_size=16, num_blocks=2, num_queries=30, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
    )
    model = EomtForUniversalSegmentation(config).eval()
    with torch.no_grad():
        model.class_predictor.weight.mul_(CLASS_SCALE)
        model.mask_head.fc3.weight.mul_(EOMT_MASK_SCALE)
        model.mask_head.fc3.bias.mul_(EOMT_MASK_SCALE)
    model.save_pretrained(folder)
    EomtImageProcessorPil(**processor).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def eomt_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """COCO panoptic head, padded 96x96 input (the panoptic checkpoints' processor, smaller)."""
    from segmentkit_mask2former.labels import COCO_PANOPTIC

    return build_eomt(tmp_path_factory.mktemp("eomt-coco-panoptic"), COCO_PANOPTIC,
                      {"size": {"shortest_edge": 96, "longest_edge": 96}, "do_pad": True}, image_size=96)


@pytest.fixture(scope="session")
def eomt_semantic_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ADE20k head, short side 64 split into 64x64 windows (the semantic checkpoints' processor, smaller)."""
    from segmentkit.label_sets import ADE20K

    return build_eomt(tmp_path_factory.mktemp("eomt-ade-semantic"), ADE20K,
                      {"size": {"shortest_edge": 64, "longest_edge": None}, "do_split_image": True}, image_size=64,
                      seed=1)


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

    def __init__(self, folder: Path, model_class: str = "Mask2FormerForUniversalSegmentation"):
        import transformers

        self.processor = transformers.AutoImageProcessor.from_pretrained(folder)
        self.model = getattr(transformers, model_class).from_pretrained(folder).eval()

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


@pytest.fixture(scope="session")
def eomt_reference(eomt_checkpoint: Path) -> Reference:
    return Reference(eomt_checkpoint, "EomtForUniversalSegmentation")


@pytest.fixture(scope="session")
def eomt_semantic_reference(eomt_semantic_checkpoint: Path) -> Reference:
    return Reference(eomt_semantic_checkpoint, "EomtForUniversalSegmentation")


@pytest.fixture(scope="session")
def synthetic() -> tuple[object, object]:
    """Structured logits: 40 queries, each sure of one class (classes repeat: 6 things, 6 stuff and
    "no object") and owning one cell of a Voronoi partition of the mask grid, with noisy edges."""
    import torch

    gen = torch.Generator().manual_seed(1)
    pool = torch.tensor([0, 2, 5, 16, 46, 56, 84, 100, 116, 119, 123, 125, 133])
    chosen = pool[torch.randint(len(pool), (40,), generator=gen)]
    class_logits = torch.randn(40, 134, generator=gen)
    class_logits[torch.arange(40), chosen] += 6 + 3 * torch.rand(40, generator=gen)
    seeds = torch.rand(40, 2, generator=gen) * torch.tensor([96.0, 128.0])
    yy, xx = torch.meshgrid(torch.arange(96.0), torch.arange(128.0), indexing="ij")
    owner = ((yy[None] - seeds[:, 0, None, None]) ** 2 + (xx[None] - seeds[:, 1, None, None]) ** 2).argmin(0)
    mask_logits = torch.where(owner[None] == torch.arange(40)[:, None, None], 4.0, -4.0)
    mask_logits += torch.randn(40, 96, 128, generator=gen)
    return class_logits, mask_logits
