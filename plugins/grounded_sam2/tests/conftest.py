import pytest

from segmentkit_grounded_sam2.testing import build_grounding_dino


@pytest.fixture(scope="session")
def dino_dir(tmp_path_factory):
    return build_grounding_dino(tmp_path_factory.mktemp("grounding-dino-tiny"))
