"""Loading SAM 2 checkpoints: hub layout (sam2_video config), registry, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import segmentkit
from safetensors.torch import load_file, save_file
from segmentkit.errors import OptionsError, WeightsUnavailableError
from segmentkit_sam2 import cards
from segmentkit_sam2.automatic import Sam2AutomaticSegmenter
from segmentkit_sam2.prompter import Sam2Prompter
from tiny import build_tiny_checkpoint

MODEL_ID = "sam2.1-hiera-tiny"


def test_cards_cover_both_generations_edgetam_and_every_role() -> None:
    ids = [c.id for c in cards()]
    sam2 = [f"sam{v}-hiera-{s}" for v in ("2.1", "2") for s in ("tiny", "small", "base-plus", "large")]
    assert ids == [*sam2, "edgetam"]
    for card in cards():
        assert card.roles == ("prompter", "segmenter", "tracker")
        assert set(card.prompt_kinds) == {"point", "box", "mask"}
        assert card.weights.repo_id == (f"facebook/{card.id}" if card.id in sam2 else "yonigozlan/EdgeTAM-hf")
    assert cards()[0] is cards()[0]  # one card object per model, shared by every role's spec


def test_registry_lists_the_roles() -> None:
    registry = segmentkit.Registry()
    info = {m.card.id: m for m in registry.models()}[MODEL_ID]
    assert {"prompter", "segmenter"} <= set(info.roles)
    assert registry.resolve(MODEL_ID, "prompter").spec.card is registry.resolve(MODEL_ID, "segmenter").spec.card


def test_hub_layout_loads_through_the_registry(sam2_weights: Path) -> None:
    assert json.loads((sam2_weights / "config.json").read_text())["model_type"] == "sam2_video"
    registry = segmentkit.Registry()
    prompter = registry.load(MODEL_ID, weights=sam2_weights)
    segmenter = registry.load(MODEL_ID, role="segmenter", weights=sam2_weights, points_per_side=4)
    assert isinstance(prompter.raw, Sam2Prompter) and isinstance(segmenter.raw, Sam2AutomaticSegmenter)
    assert prompter.options.weights == sam2_weights and segmenter.options.points_per_side == 4
    with pytest.raises(OptionsError):
        registry.load(MODEL_ID, weights=sam2_weights, points_per_side=4)  # an automatic option, not a prompter one
    with pytest.raises(OptionsError):
        registry.load(MODEL_ID, weights=sam2_weights, precision="int8")


def test_hub_weights_offline_give_a_clear_error(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEGMENTKIT_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(WeightsUnavailableError, match="segmentkit pull sam2.1-hiera-tiny"):
        segmentkit.Registry().load(MODEL_ID)


def _damaged(src: Path, dst: Path, how: str, tmp: Path) -> Path:
    shutil.copytree(src, dst)
    weights = dst / "model.safetensors"
    if how == "empty-dir":
        for f in dst.iterdir():
            f.unlink()
    elif how == "config-not-json":
        (dst / "config.json").write_text("{ not json")
    elif how == "config-wrong-model":
        config = json.loads((dst / "config.json").read_text())
        config["model_type"] = "segformer"
        (dst / "config.json").write_text(json.dumps(config))
    elif how == "config-without-parts":
        (dst / "config.json").write_text(json.dumps({"model_type": "sam2_video"}))
    elif how == "no-weights-file":
        weights.unlink()
    elif how == "truncated-weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    elif how == "missing-tensors":
        tensors = {k: v for k, v in load_file(weights).items() if not k.startswith("mask_decoder.")}
        save_file(tensors, weights, metadata={"format": "pt"})
    elif how == "other-architecture":
        other = build_tiny_checkpoint(tmp / "other", image_size=256, hidden=16)
        shutil.copy(other / "model.safetensors", weights)
    return dst


@pytest.mark.parametrize("how", [
    "empty-dir", "config-not-json", "config-wrong-model", "config-without-parts", "no-weights-file",
    "truncated-weights", "missing-tensors", "other-architecture",
])
def test_corrupt_weights_dir_is_a_clear_error(sam2_weights: Path, tmp_path: Path, how: str) -> None:
    bad = _damaged(sam2_weights, tmp_path / "ckpt", how, tmp_path)
    with pytest.raises(WeightsUnavailableError) as info:
        segmentkit.Registry().load(MODEL_ID, weights=bad)
    message = str(info.value)
    assert MODEL_ID in message and str(bad) in message and "\n" not in message


def test_weights_path_that_is_not_a_directory(tmp_path: Path) -> None:
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"x")
    with pytest.raises(WeightsUnavailableError, match="not a directory"):
        segmentkit.Registry().load(MODEL_ID, weights=file)
