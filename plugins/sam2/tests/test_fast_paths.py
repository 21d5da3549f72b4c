"""Fast paths (ONNX Runtime fp32, torch bf16 encoder) against the torch fp32 path.

Same tiny checkpoint, same inputs: every fast path must give the same masks (IoU >= 0.99)
and close predicted IoUs. Plus the ONNX export cache: reused on the next load, rebuilt
when a cached file is corrupt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from segmentkit import Box, MaskPrompt, Point
from segmentkit.errors import OptionsError

pytest.importorskip("onnxruntime")

from segmentkit.runtime import onnx
from segmentkit_sam2 import onnx_export
from segmentkit_sam2.family import SAM2
from segmentkit_sam2.ort_engine import OrtSam2Engine, load_ort_engine, point_tokens

MODEL_ID = "sam2.1-hiera-tiny"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory):
    """A private SEGMENTKIT_CACHE for this module's exports."""
    root = tmp_path_factory.mktemp("segmentkit-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEGMENTKIT_CACHE", str(root))
        yield root / "onnx"


@pytest.fixture(scope="module")
def ort_prompter(onnx_cache, sam2_weights_small: Path):
    import segmentkit

    return segmentkit.Registry().load(MODEL_ID, role="prompter", weights=sam2_weights_small, runtime="onnxruntime")


@pytest.fixture(scope="module")
def bf16_prompter(sam2_weights_small: Path):
    import segmentkit
    from segmentkit.testing.pytest_plugin import capabilities_forced, require_native_bf16

    require_native_bf16()
    with capabilities_forced(bf16=True):
        return segmentkit.Registry().load(MODEL_ID, role="prompter", weights=sam2_weights_small, precision="bf16")


CASES = {
    "point": [[Point(200, 150)]],
    "points-and-negatives": [[Point(200, 150), Point(60, 40, positive=False), Point(330, 260)]],
    "box": [[Box(100, 80, 300, 220)]],
    "box-and-points": [[Box(100, 80, 300, 220), Point(210, 160), Point(120, 100, positive=False)]],
    "batched": [[Point(200, 150)], [Point(50, 60)], [Box(10, 20, 150, 120)], [Point(300, 200), Point(20, 20)]],
}


def assert_same(ours: list, ref: list, *, score_atol: float) -> None:
    assert len(ours) == len(ref)
    for o, r in zip(ours, ref):
        assert o.masks.shape == r.masks.shape
        assert 0.01 < r.masks.mean() < 0.99, "a trivial reference mask would prove nothing"
        for k in range(len(r)):
            assert iou(o.masks[k], r.masks[k]) >= 0.99, f"candidate {k}: IoU {iou(o.masks[k], r.masks[k]):.4f}"
        np.testing.assert_allclose(o.scores, r.scores, rtol=0, atol=score_atol)


def predict_all(prompter, photo, sets, multimask):
    return prompter.predict_batch(prompter.embed(photo), sets, multimask=multimask)


@pytest.mark.parametrize("multimask", [False, True], ids=["single", "multimask"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_onnxruntime_matches_torch(ort_prompter, small_prompter, photo, case, multimask) -> None:
    assert isinstance(ort_prompter.raw.engine, OrtSam2Engine)
    ours = predict_all(ort_prompter, photo, CASES[case], multimask)
    ref = predict_all(small_prompter, photo, CASES[case], multimask)
    assert_same(ours, ref, score_atol=1e-4)


@pytest.mark.parametrize("case", ["point", "box-and-points", "batched"])
def test_bf16_matches_fp32(bf16_prompter, small_prompter, photo, case) -> None:
    ours = predict_all(bf16_prompter, photo, CASES[case], True)
    ref = predict_all(small_prompter, photo, CASES[case], True)
    assert_same(ours, ref, score_atol=5e-3)


@pytest.mark.parametrize("fast", ["ort_prompter", "bf16_prompter"])
def test_mask_prompt_matches_torch(request, fast, small_prompter, photo) -> None:
    """A previous low-res mask as prompt (alone and with a point), on the mask-batch layout."""
    prompter = request.getfixturevalue(fast)
    first = small_prompter.predict(small_prompter.embed(photo), [Point(200, 150)])
    logits = first.data["low_res_logits"][0]
    sets = [[MaskPrompt(logits)], [MaskPrompt(logits), Point(120, 100)]]
    for s in sets:
        ours = predict_all(prompter, photo, [s], False)
        ref = predict_all(small_prompter, photo, [s], False)
        assert_same(ours, ref, score_atol=5e-3 if fast == "bf16_prompter" else 1e-4)


def test_onnxruntime_automatic_matches_torch(onnx_cache, sam2_weights_small: Path, photo) -> None:
    import segmentkit

    # random weights give big overlapping masks: NMS would keep one, so it is off here
    opts = {"weights": sam2_weights_small, "points_per_side": 8, "pred_iou_thresh": 0.5,
            "stability_score_thresh": 0.4, "box_nms_thresh": 1.0}
    registry = segmentkit.Registry()
    ref = registry.load(MODEL_ID, role="segmenter", **opts).segment(photo).masks
    ours = registry.load(MODEL_ID, role="segmenter", runtime="onnxruntime", **opts).segment(photo).masks
    assert len(ref) > 3, "the reference kept too few masks to compare"
    assert len(ours) == len(ref)
    for i in range(len(ref)):  # each reference mask has its twin, with the same predicted IoU
        j = max(range(len(ours)), key=lambda j: iou(ours.masks[j], ref.masks[i]))
        assert iou(ours.masks[j], ref.masks[i]) >= 0.99
        assert abs(float(ours.scores[j]) - float(ref.scores[i])) <= 1e-4


def test_point_tokens_follow_the_prompt_encoder() -> None:
    """Points, then box corners (labels 2, 3), then one padding token (-1), as transformers builds them."""
    points = torch.tensor([[[[1.0, 2.0]]]])
    labels = torch.tensor([[[0]]])
    boxes = torch.tensor([[[10.0, 20.0, 30.0, 40.0]]])
    coords, tokens = point_tokens(points, labels, boxes, None)
    np.testing.assert_array_equal(coords[0, 0], [[1, 2], [10, 20], [30, 40], [0, 0]])
    np.testing.assert_array_equal(tokens[0, 0], [0, 2, 3, -1])
    coords, tokens = point_tokens(None, None, None, torch.zeros(3, 1, 8, 8))
    assert coords.shape == (3, 1, 2, 2)
    np.testing.assert_array_equal(tokens, -np.ones((3, 1, 2)))


def _export_counter(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = onnx_export.export_all

    def counting(model, folder, opset):
        calls.append(folder)
        real(model, folder, opset)

    monkeypatch.setattr(onnx_export, "export_all", counting)
    return calls


def test_export_cache_is_reused(ort_prompter, onnx_cache, sam2_weights_small: Path, monkeypatch) -> None:
    folders = [p.parent for p in onnx_cache.glob(f"{MODEL_ID}/*/manifest.json")]
    assert len(folders) == 1
    stamps = {p.name: p.stat().st_mtime_ns for p in folders[0].iterdir()}
    calls = _export_counter(monkeypatch)  # the cache was filled when ort_prompter loaded
    again = load_ort_engine(MODEL_ID, sam2_weights_small, _image_model(sam2_weights_small), family=SAM2)
    assert calls == []
    assert {p.name: p.stat().st_mtime_ns for p in folders[0].iterdir()} == stamps
    assert again.token != ort_prompter.raw.engine.token
    assert again.sessions["encoder"].get_session_options().intra_op_num_threads >= 1


def test_corrupt_export_is_rebuilt(ort_prompter, onnx_cache, sam2_weights_small: Path, photo, monkeypatch) -> None:
    folder = next(onnx_cache.glob(f"{MODEL_ID}/*/manifest.json")).parent
    target = folder / "decoder_single.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    target.write_bytes(bytes(data))
    assert not onnx.verify(folder, onnx_export.GRAPHS)
    calls = _export_counter(monkeypatch)
    engine = load_ort_engine(MODEL_ID, sam2_weights_small, _image_model(sam2_weights_small), family=SAM2,
                             intra_op_threads=1)
    assert calls and len(calls) == 1
    assert onnx.verify(folder, onnx_export.GRAPHS)
    assert engine.sessions["decoder_single"].get_session_options().intra_op_num_threads == 1
    emb = ort_prompter.embed(photo)
    ref = ort_prompter.raw.engine.decode(emb.data, torch.tensor([[[[100.0, 80.0]]]]),
                                     torch.ones(1, 1, 1, dtype=torch.int64), None, None, multimask=False)
    out = engine.decode(emb.data, torch.tensor([[[[100.0, 80.0]]]]), torch.ones(1, 1, 1, dtype=torch.int64),
                        None, None, multimask=False)
    torch.testing.assert_close(out.low_res_logits, ref.low_res_logits)


def test_onnxruntime_is_fp32_only(sam2_weights_small: Path) -> None:
    import segmentkit

    with pytest.raises(OptionsError, match="fp32"):
        segmentkit.Registry().load(MODEL_ID, role="prompter", weights=sam2_weights_small, runtime="onnxruntime",
                                   precision="bf16")


def test_tracker_rejects_onnxruntime(sam2_weights_small: Path) -> None:
    import segmentkit

    with pytest.raises(OptionsError, match="torch only"):
        segmentkit.Registry().load(MODEL_ID, role="tracker", weights=sam2_weights_small, runtime="onnxruntime")


def _image_model(weights: Path):
    from segmentkit.cards import ModelOptions
    from segmentkit_sam2.catalog import card
    from segmentkit_sam2.loading import load_image_model

    return load_image_model(card(MODEL_ID), ModelOptions(weights=weights, device="cpu"))
