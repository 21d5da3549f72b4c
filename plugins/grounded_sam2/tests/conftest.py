import pytest
from segmentkit_grounded_sam2.testing import build_grounding_dino


@pytest.fixture(scope="session")
def dino_dir(tmp_path_factory):
    return build_grounding_dino(tmp_path_factory.mktemp("grounding-dino-tiny"))


@pytest.fixture(scope="session")
def sam2_dir(tmp_path_factory):
    """A tiny random-weight SAM 2 checkpoint in the hub layout (sam2_video), if the plugin is installed."""
    testing = pytest.importorskip("segmentkit_sam2.video_testing")
    return testing.build_tiny_video_checkpoint(tmp_path_factory.mktemp("sam2-tiny"), image_size=128)
