import pytest
import segmentkit


@pytest.fixture(scope="session")
def classic():
    """The ``classic`` model through the registry, as users load it."""
    return segmentkit.load("classic", role="prompter")
