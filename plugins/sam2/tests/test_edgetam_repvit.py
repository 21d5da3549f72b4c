"""EdgeTAM without timm: our RepViT and the lean encoder against transformers + timm.

The reference outputs were made by ``fixtures/make_edgetam_fixtures.py`` in an environment
with timm (transformers' ``TimmWrapperModel`` around timm's ``repvit_m1``), on the weights
``edgetam_tiny`` redraws here; these tests never import timm.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from edgetam_tiny import FIXTURES, reference
from segmentkit_sam2.edgetam import image_config_of
from segmentkit_sam2.preprocess import preprocess_image
from segmentkit_sam2.repvit import FusedRepVit, RepVitConfig
from segmentkit_sam2.repvit_encoder import LeanRepVitEncoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def image_model(edgetam_weights):
    from transformers import EdgeTamModel

    config = json.loads((edgetam_weights / "config.json").read_text())
    parts = {k: {kk: v for kk, v in config[k].items() if kk != "model_type"}
             for k in ("vision_config", "prompt_encoder_config", "mask_decoder_config")}
    return EdgeTamModel.from_pretrained(edgetam_weights, config=image_config_of(**parts)).eval()


@pytest.fixture(scope="module")
def pixels():
    return preprocess_image(reference()["frames"][0], 256)


def test_backbone_maps_match_timm(image_model, pixels) -> None:
    ref = reference()
    backbone = image_model.vision_encoder.backbone
    with torch.inference_mode():
        plain = backbone(pixels).last_hidden_state
        fused = FusedRepVit(backbone)(pixels)
    assert len(plain) == len(fused) == 4
    for i in range(4):
        expected = torch.from_numpy(ref[f"backbone_{i}"])[None]
        scale = float(expected.abs().max())
        assert float(expected.std()) > 1e-2 * scale, "a flat reference would prove nothing"
        torch.testing.assert_close(plain[i], expected, rtol=1e-5, atol=1e-5 * scale)
        torch.testing.assert_close(fused[i], expected, rtol=1e-4, atol=1e-5 * scale)


def test_lean_encoder_matches_transformers(image_model, pixels) -> None:
    with torch.inference_mode():
        out = image_model.get_image_features(pixels, return_dict=True)
        maps = list(out.fpn_hidden_states)
        maps[-1] = maps[-1] + image_model.no_memory_embedding
        sizes = image_model.config.vision_config.backbone_feature_sizes
        ref = [m.permute(1, 2, 0).reshape(1, -1, *s) for m, s in zip(maps, sizes)]
        ours = LeanRepVitEncoder(image_model)(pixels)
        ours_bf16 = LeanRepVitEncoder(image_model, bf16=True)(pixels)
    for o, b, r in zip(ours, ours_bf16, (ref[2], ref[0], ref[1])):
        scale = float(r.abs().max())
        torch.testing.assert_close(o, r, rtol=1e-4, atol=1e-5 * scale)
        assert b.dtype == torch.float32 and float((b - r).abs().max()) < 0.1 * scale


def test_checkpoint_loads_completely_without_timm(edgetam_weights) -> None:
    code = (
        "import sys; sys.modules['timm'] = None; sys.modules['torchvision'] = None\n"
        "from segmentkit_sam2.edgetam import EdgeTamVideo\n"
        f"model, info = EdgeTamVideo.from_pretrained({str(edgetam_weights)!r}, output_loading_info=True)\n"
        "assert not any(info.values()), info\n"
        "print(type(model.vision_encoder.backbone).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("RepVitBackbone")


def test_fixture_config_is_the_hub_layout() -> None:
    config = json.loads((FIXTURES / "config.json").read_text())
    assert config["model_type"] == "edgetam_video"
    assert config["vision_config"]["backbone_config"]["model_type"] == "timm_wrapper"


@pytest.mark.parametrize("args, message", [
    ({"architecture": "resnet50"}, "unsupported RepViT architecture"),
    ({"model_args": {"features_only": False}}, "features_only"),
    ({"model_args": {"drop_path_rate": 0.1}}, "drop_path_rate"),
])
def test_unsupported_backbones_are_refused(args, message) -> None:
    with pytest.raises(ValueError, match=message):
        RepVitConfig(**args).layout()


def test_timm_variant_names_are_read() -> None:
    layout = RepVitConfig("repvit_m1.dist_in1k", {"features_only": True, "out_indices": [0, 1, 2, 3]}).layout()
    assert layout["embed_dim"] == (48, 96, 192, 384) and layout["depth"] == (2, 2, 14, 2) and layout["legacy"]
    assert np.array_equal(layout["out_indices"], [0, 1, 2, 3])
