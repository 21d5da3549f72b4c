"""ONNX Runtime path: parity with torch, export once and reuse, rebuild a corrupt export."""

from __future__ import annotations

import numpy as np
import pytest
import segmentkit as sk
from segmentkit_segformer import model as model_module


@pytest.fixture
def count_exports(monkeypatch):
    calls = []
    original = model_module.SegformerSegmenter._export

    def spy(self, target):
        calls.append(target)
        return original(self, target)

    monkeypatch.setattr(model_module.SegformerSegmenter, "_export", spy)
    return calls


def _load(checkpoint, cache, **options):
    return sk.load("segformer-b0-ade", weights=checkpoint, runtime="onnxruntime", onnx_cache=str(cache), **options)


def test_onnx_matches_torch(checkpoint, segmenter, make_image, tmp_path, count_exports):
    onnx = _load(checkpoint, tmp_path)
    assert len(count_exports) == 1
    for seed, (height, width) in enumerate([(180, 240), (300, 420)]):
        image = make_image(height, width, seed=seed)
        assert np.mean(onnx.segment(image).label_map == segmenter.segment(image).label_map) >= 0.999
    # sliding windows go through the batch axis of the exported graph
    wide = make_image(300, 700, seed=9)
    ours = onnx.segment(wide, sliding_window=True).label_map
    assert np.mean(ours == segmenter.segment(wide, sliding_window=True).label_map) >= 0.999


def test_export_is_reused_and_keyed_by_weights(checkpoint, tmp_path, count_exports):
    _load(checkpoint, tmp_path)
    _load(checkpoint, tmp_path)
    assert len(count_exports) == 1
    exported = list(tmp_path.glob("segformer-b0-ade/*/model.onnx"))
    assert len(exported) == 1 and (exported[0].parent / "manifest.json").is_file()
    assert [p.name for p in tmp_path.glob("segformer-b0-ade/*")] == [exported[0].parent.name]  # no staging left
    _load(checkpoint, tmp_path, onnx_opset=18)  # another opset is another export
    assert len(count_exports) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_export_is_rebuilt(checkpoint, segmenter, make_image, tmp_path, count_exports, damage):
    _load(checkpoint, tmp_path)
    (path,) = tmp_path.glob("segformer-b0-ade/*/model.onnx")
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        del data[len(data) // 2:]
    else:
        data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    rebuilt = _load(checkpoint, tmp_path)

    assert len(count_exports) == 2
    image = make_image(100, 140, seed=4)
    assert np.mean(rebuilt.segment(image).label_map == segmenter.segment(image).label_map) >= 0.999


def test_runtime_per_call(checkpoint, segmenter, make_image, tmp_path, count_exports):
    torch_first = sk.load("segformer-b0-ade", weights=checkpoint, onnx_cache=str(tmp_path))
    image = make_image(90, 120, seed=5)
    by_onnx = torch_first.segment(image, runtime="onnxruntime").label_map
    assert len(count_exports) == 1
    assert np.mean(by_onnx == segmenter.segment(image).label_map) >= 0.999


def test_ort_threads_option(checkpoint, tmp_path):
    assert _load(checkpoint, tmp_path, ort_threads=1).raw._session.get_session_options().intra_op_num_threads == 1
