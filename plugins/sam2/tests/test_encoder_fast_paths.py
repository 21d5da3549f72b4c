"""The lean image encoder (``segmentkit_sam2.hiera``) against transformers' own encoder.

fp32: the three feature maps equal ``Sam2Model.get_image_features`` (laid out as the engine
lays them out) up to float rounding, with oneDNN or plain linear layers, whole or in
chunks. bf16: the final masks of the prompter stay at IoU >= 0.99 of the fp32 ones.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from segmentkit import Box, Point
from segmentkit.errors import OptionsError
from segmentkit.runtime.fused_linear import onednn_linear_runs
from segmentkit.testing.pytest_plugin import fast_paths_off
from segmentkit_sam2 import hiera
from segmentkit_sam2.engine import Sam2Engine
from segmentkit_sam2.family import SAM2
from segmentkit_sam2.hiera import IMAGE_BF16_STAGES, LeanImageEncoder, bf16_fp32_blocks
from segmentkit_sam2.options import Sam2Options

MODEL_ID = "sam2.1-hiera-tiny"


def transformers_features(model, pixel_values: torch.Tensor) -> list[torch.Tensor]:
    """(embedding + no-memory embedding, high_res_0, high_res_1) as (1, C, h, w), from transformers."""
    with torch.inference_mode():
        out = model.get_image_features(pixel_values, return_dict=True)
        maps = list(out.fpn_hidden_states)  # (h*w, 1, C), high to low resolution
        maps[-1] = maps[-1] + model.no_memory_embedding
    sizes = model.config.vision_config.backbone_feature_sizes
    feats = [m.permute(1, 2, 0).reshape(1, -1, *s) for m, s in zip(maps, sizes)]
    return [feats[2], feats[0], feats[1]]


@pytest.fixture(scope="module")
def pixel_values(reference_model) -> torch.Tensor:
    size = int(reference_model.config.prompt_encoder_config.image_size)
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "chunked"])
@pytest.mark.parametrize("onednn", [True, False], ids=["onednn", "plain"])
def test_lean_encoder_matches_transformers(reference_model, pixel_values, onednn, chunked, monkeypatch) -> None:
    if chunked:  # small chunks: every window / MLP loop of the first stages runs in several parts
        monkeypatch.setattr(hiera, "_CHUNK_ELEMENTS", 50_000)
    if onednn and not onednn_linear_runs(torch.float32):
        pytest.skip("oneDNN's fused linear does not run here in fp32 (probed)")
    ref = transformers_features(reference_model, pixel_values)
    with torch.inference_mode():
        ours = LeanImageEncoder(reference_model, onednn=onednn)(pixel_values)
    for name, o, r in zip(("embedding", "high_res_0", "high_res_1"), ours, ref):
        assert o.dtype == torch.float32 and o.shape == r.shape and o.is_contiguous(), name
        scale = float(r.abs().max())
        assert scale > 1e-3 and float(r.std()) > 1e-2 * scale, f"{name}: a flat reference would prove nothing"
        torch.testing.assert_close(o, r, rtol=1e-4, atol=1e-5 * scale, msg=name)


@pytest.mark.parametrize("stages", [(0, 1, 2, 3), IMAGE_BF16_STAGES])  # the tracker runs every stage in bf16
def test_bf16_encoder_is_close_and_fp32_out(reference_model, pixel_values, stages) -> None:
    # random tiny weights give near-uniform attention; 8x larger q, k, v make it sharp enough that
    # a wrong softmax scale in the bf16 window attention shows (relative error 0.16 vs 0.004)
    model = copy.deepcopy(reference_model)
    with torch.no_grad():
        for block in model.vision_encoder.backbone.blocks:
            block.attn.qkv.weight.mul_(8.0)
    ref = transformers_features(model, pixel_values)
    with torch.inference_mode():
        ours = LeanImageEncoder(model, torch.bfloat16, fp32_blocks=bf16_fp32_blocks(model, stages))(pixel_values)
    for name, o, r in zip(("embedding", "high_res_0", "high_res_1"), ours, ref):
        assert o.dtype == torch.float32, name
        error = float((o - r).abs().max() / r.abs().max())
        assert 0 < error <= 0.02, f"{name}: relative error {error:.4f}"  # 0: bf16 did not run


def test_bf16_stages(reference_model) -> None:
    backbone = reference_model.vision_encoder.backbone  # tiny: blocks per stage 1, 1, 2, 1
    assert list(backbone.stage_ends) == [0, 1, 3, 4]
    assert bf16_fp32_blocks(reference_model, (0, 1)) == (2, 3, 4)
    assert bf16_fp32_blocks(reference_model, IMAGE_BF16_STAGES) == (2, 3)  # the image predictor: all but stage 2
    engine = Sam2Engine(reference_model, Sam2Options(precision="bf16", device="cpu"), SAM2)
    assert [block.qkv.weight.dtype for block, _ in engine._encoder.blocks] == [torch.bfloat16] * 2 + \
        [torch.float32] * 2 + [torch.bfloat16]
    encoder = LeanImageEncoder(reference_model, torch.bfloat16, fp32_blocks=(2, 3, 4))
    assert [block.qkv.weight.dtype for block, _ in encoder.blocks] == [torch.bfloat16] * 2 + [torch.float32] * 3


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def test_bf16_prompter_masks_match_fp32(prompter, sam2_weights, photo, native_bf16) -> None:
    """Final masks at the real input size (1024) through the whole prompter."""
    import segmentkit

    bf16 = segmentkit.Registry().load(MODEL_ID, role="prompter", weights=sam2_weights, precision="bf16")
    sets = [[Point(200, 150)], [Point(60, 40)], [Box(100, 80, 300, 220)],
            [Point(330, 260), Point(20, 20, positive=False)]]
    ours = bf16.predict_batch(bf16.embed(photo), sets, multimask=True)
    ref = prompter.predict_batch(prompter.embed(photo), sets, multimask=True)
    for o, r in zip(ours, ref):
        assert 0.01 < r.masks.mean() < 0.99
        for k in range(len(r)):
            assert iou(o.masks[k], r.masks[k]) >= 0.99
        np.testing.assert_allclose(o.scores, r.scores, rtol=0, atol=5e-3)


def test_without_fast_paths(reference_model, pixel_values, sam2_weights, prompter, photo) -> None:
    """On a CPU without bf16 or oneDNN's fused linear: the encoder's public-op path equals
    transformers' features, a loaded prompter is fp32 under 'auto' and gives the probed path's
    masks, and precision='bf16' is refused with the reason."""
    import segmentkit

    ref_features = transformers_features(reference_model, pixel_values)
    sets = [[Point(200, 150)], [Box(100, 80, 300, 220)], [Point(330, 260), Point(20, 20, positive=False)]]
    ref = prompter.predict_batch(prompter.embed(photo), sets, multimask=True)
    with fast_paths_off(), torch.inference_mode():
        features = LeanImageEncoder(reference_model)(pixel_values)
        for name, o, r in zip(("embedding", "high_res_0", "high_res_1"), features, ref_features):
            torch.testing.assert_close(o, r, rtol=1e-4, atol=1e-5 * float(r.abs().max()), msg=name)
        plain = segmentkit.Registry().load(MODEL_ID, weights=sam2_weights)
        assert plain.options.precision == "fp32"
        ours = plain.predict_batch(plain.embed(photo), sets, multimask=True)
        with pytest.raises(OptionsError, match="native bf16"):
            segmentkit.Registry().load(MODEL_ID, weights=sam2_weights, precision="bf16")
    for got, want in zip(ours, ref):
        assert 0.01 < want.masks.mean() < 0.99, "a trivial reference proves nothing"
        assert min(iou(a, b) for a, b in zip(got.masks, want.masks)) >= 0.99
