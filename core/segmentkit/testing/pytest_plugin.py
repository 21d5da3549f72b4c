"""pytest11 entry point: markers and fixtures for segmentkit and plugin test suites.

Loaded by every pytest run where segmentkit is installed, so it imports nothing heavy
(numpy only; the conformance contracts are imported by the tests that use them).
"""

from __future__ import annotations

import pytest

from .scenes import Scene
from .scenes import synthetic_scene as _synthetic_scene


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "weights: needs real hub weights (skipped offline)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture
def synthetic_scene() -> Scene:
    """A 96x128 striped image with a red ellipse: ``.image``, ``.mask``, ``.box``, ``.inside``."""
    return _synthetic_scene()
