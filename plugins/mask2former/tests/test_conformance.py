"""The core's Segmenter contract, on the tiny checkpoint: panoptic (the default) and semantic.

Instance output goes through the same stages; its parity test covers it.
"""

from __future__ import annotations

import pytest
import segmentkit as sk
from segmentkit.testing.conformance import SegmenterContract


@pytest.fixture(scope="module")
def loaded(checkpoint):
    return sk.load("mask2former-swin-tiny-coco-panoptic", weights=checkpoint)


class TestPanopticContract(SegmenterContract):
    level = "geometry"  # random weights
    task = None  # the card's first: panoptic

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, loaded):
        return loaded


class TestSemanticContract(SegmenterContract):
    level = "geometry"
    task = "semantic"
    extreme_sizes = ((2000, 10),)

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, loaded):
        return loaded
