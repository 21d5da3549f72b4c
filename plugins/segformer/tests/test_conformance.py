"""The core's Segmenter contract, on the tiny checkpoint, for both runtimes."""

from __future__ import annotations

import pytest
import segmentkit as sk
from segmentkit.testing.conformance import SegmenterContract


class TestSegformerContract(SegmenterContract):
    level = "geometry"  # random weights
    task = "semantic"

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, checkpoint):
        return sk.load("segformer-b0-ade", weights=checkpoint)


class TestSegformerSlidingOnnxContract(SegmenterContract):
    level = "geometry"
    image_size = (300, 420)  # larger than the 256x256 input: sliding windows run

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, checkpoint, onnx_dir):
        return sk.load("segformer-b0-ade", weights=checkpoint, runtime="onnxruntime", onnx_cache=str(onnx_dir),
                       sliding_window=True)
