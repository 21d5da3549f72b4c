"""Shared fixtures: tiny SAM 2 checkpoints (hub layout, built once per session) and models."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tiny.py / reference.py, with --import-mode=importlib

from tiny import build_tiny_checkpoint

MODEL_ID = "sam2.1-hiera-tiny"


@pytest.fixture(scope="session")
def sam2_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SAM 2 checkpoint at the real input size (1024, low-res masks 256x256)."""
    return build_tiny_checkpoint(tmp_path_factory.mktemp("sam2-tiny-1024"), image_size=1024)


@pytest.fixture(scope="session")
def edgetam_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny EdgeTAM checkpoint whose transformers + timm outputs fixtures/ stores."""
    from edgetam_tiny import build_checkpoint

    return build_checkpoint(tmp_path_factory.mktemp("edgetam-tiny"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module whose parity sides both run in this process: on a busy
    2-core machine OpenMP spin-waits make two threads far slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def sam2_weights_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same architecture at input size 256: for behaviour tests and many decoder calls."""
    return build_tiny_checkpoint(tmp_path_factory.mktemp("sam2-tiny-256"), image_size=256, seed=1)


@pytest.fixture(scope="session")
def prompter(sam2_weights: Path):
    """The prompter on the 1024 checkpoint (parity with transformers)."""
    import segmentkit

    return segmentkit.Registry().load(MODEL_ID, role="prompter", weights=sam2_weights)


@pytest.fixture(scope="session")
def small_prompter(sam2_weights_small: Path):
    """The prompter on the 256 checkpoint (behaviour tests)."""
    import segmentkit

    return segmentkit.Registry().load(MODEL_ID, role="prompter", weights=sam2_weights_small)


@pytest.fixture(scope="session")
def reference_model(sam2_weights: Path):
    """transformers' own ``Sam2Model`` loaded from the same directory, the way its docs do."""
    from transformers import Sam2Model

    return Sam2Model.from_pretrained(sam2_weights).eval()


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A non-square synthetic photo: textured background and a few shapes (seeded)."""
    from segmentkit.testing.scenes import synthetic_scene

    return synthetic_scene((300, 400), seed=3).image
