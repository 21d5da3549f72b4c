import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # sam3_reference.py, with --import-mode=importlib

from segmentkit_sam3.testing import build_tiny_checkpoint


@pytest.fixture(scope="session")
def sam3_dir(tmp_path_factory):
    """The tiny random-weight SAM 3 checkpoint (seed 0) the parity references were made from."""
    return build_tiny_checkpoint(tmp_path_factory.mktemp("sam3-tiny"))


@pytest.fixture(scope="session")
def prompter(sam3_dir):
    import segmentkit as sk

    return sk.load("sam3", role="prompter", weights=sam3_dir)


@pytest.fixture(scope="session")
def tracker(sam3_dir):
    import segmentkit as sk

    return sk.load("sam3", role="tracker", weights=sam3_dir)
