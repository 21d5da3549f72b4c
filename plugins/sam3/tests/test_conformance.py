"""The core conformance contracts, on the tiny SAM 3 checkpoint."""

import pytest
from segmentkit.testing.conformance import PrompterContract, TrackerContract


class TestSam3Prompter(PrompterContract):
    level = "geometry"
    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, prompter):
        return prompter


class TestSam3Tracker(TrackerContract):
    level = "geometry"
    frame_count = 3

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, tracker):
        return tracker
