"""classic keeps the segmentkit contracts for both of its roles."""

import pytest
import segmentkit
from segmentkit.testing.conformance import PrompterContract, SegmenterContract


class TestClassicPrompter(PrompterContract):
    level = "quality"

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls):
        return segmentkit.load("classic", role="prompter")


class TestClassicSegmenter(SegmenterContract):
    level = "quality"
    task = "automatic"

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls):
        return segmentkit.load("classic", role="segmenter")
