"""``device="auto"``: one core function picks CUDA, then MPS, then the CPU, for every load."""

import numpy as np
import pytest
import torch
from segmentkit import ModelCard, ModelOptions, ModelSpec, Segmentation, hookimpl, pipeline
from segmentkit.cards import WeightsSource
from segmentkit.devices import resolve_device
from segmentkit.registry import Registry
from segmentkit.results import model_info

BUILT_WITH: list[str] = []  # the device each RecordingModel was built with


class RecordingModel:
    def __init__(self, card, options):
        BUILT_WITH.append(options.device)

    def segment(self, image, *, task=None):  # numpy only: nothing runs on the device
        return Segmentation.from_label_map((image[..., 0] > 127).astype(np.int32), {0: "dark", 1: "bright"})


def _registry(runtimes, weights=None):
    card = ModelCard(id="toy-dev", family="toy", roles=("segmenter",), tasks=("semantic",), license="MIT",
                     runtimes=runtimes, weights=weights)
    spec = ModelSpec(card=card, role="segmenter", loader=f"{__name__}:RecordingModel")

    class Plugin:
        @staticmethod
        @hookimpl
        def segmentkit_segmenters():
            return [spec]

    registry = Registry(entry_points=False)
    registry.register(Plugin, name="toy")
    return registry


@pytest.fixture
def gpu(monkeypatch):
    """torch sees a CUDA device (and no MPS)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_auto_is_the_default_and_picks_cuda_when_torch_sees_one(gpu):
    assert ModelOptions().device == "auto"
    assert resolve_device("auto") == "cuda"
    assert resolve_device("auto", "onnxruntime") == "cuda"
    assert resolve_device("cpu") == "cpu" and resolve_device("cuda:1") == "cuda:1"  # explicit choices stand


def test_auto_falls_back_to_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"


def test_numpy_models_stay_on_the_cpu(gpu):
    assert resolve_device("auto", "numpy") == "cpu"


def test_load_hands_the_plugin_the_resolved_device(gpu):
    BUILT_WITH.clear()
    registry = _registry(("torch",))
    registry.load("toy-dev")
    registry.load("toy-dev", device="cpu")
    _registry(("numpy",)).load("toy-dev")
    assert BUILT_WITH == ["cuda", "cpu", "cpu"]


def test_the_result_document_records_the_resolved_device(gpu):
    image = np.zeros((6, 8, 3), np.uint8)
    image[:, 4:] = 255
    _, document = pipeline.segment(_registry(("torch",)).load("toy-dev"), image)
    assert document.dump()["model"] == {"id": "toy-dev", "revision": None, "device": "cuda", "runtime": "torch",
                                        "precision": "fp32"}
    _, document = pipeline.segment(_registry(("torch",)).load("toy-dev", device="cpu"), image)
    assert document.model.device == "cpu"


def test_the_model_block_names_the_pinned_revision_of_hub_weights(tmp_path):
    registry = _registry(("torch",), WeightsSource(repo_id="org/toy", revision="0123abcd" * 5))
    assert model_info(registry.load("toy-dev", device="cpu", precision="fp32")).revision == "0123abcd" * 5
    assert model_info(registry.load("toy-dev", device="cpu", weights=tmp_path)).revision is None  # a local folder
