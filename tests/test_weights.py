"""Weights resolution: local directories, offline cache misses, and the error people see."""

import hashlib

import pytest
from segmentkit import ModelCard, WeightsSource
from segmentkit.errors import WeightsUnavailableError
from segmentkit.weights import derived_cache_root, file_sha256, pull, resolve_weights, weights_identity


def make_card(weights=True):
    return ModelCard(
        id="toy-net", family="toy", roles=("segmenter",), tasks=("semantic",), license="MIT",
        weights=WeightsSource(repo_id="segmentkit-tests/does-not-exist", revision="0" * 40) if weights else None,
    )


def test_local_directory_wins(tmp_path):
    assert resolve_weights(make_card(), tmp_path) == tmp_path
    with pytest.raises(WeightsUnavailableError, match="is not a directory"):
        resolve_weights(make_card(), tmp_path / "nope")


def test_offline_cache_miss_names_model_repo_pull_and_local_option(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("SEGMENTKIT_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as info:
        resolve_weights(make_card())
    message = str(info.value)
    for needle in ("'toy-net'", "segmentkit-tests/does-not-exist", "segmentkit pull toy-net", "--weights DIR",
                   "offline"):
        assert needle in message


def test_cached_snapshot_is_found_offline(tmp_path, monkeypatch):
    # Lay out a hub cache by hand, exactly as huggingface_hub stores snapshots.
    cache = tmp_path / "hub"
    repo = cache / "models--segmentkit-tests--does-not-exist"
    snap = repo / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_weights(make_card()) == snap


def test_weightless_models():
    with pytest.raises(WeightsUnavailableError, match="no hub weights"):
        resolve_weights(make_card(weights=False))
    with pytest.raises(WeightsUnavailableError, match="needs no weights"):
        pull(make_card(weights=False))


def test_weights_identity_and_derived_cache(tmp_path, monkeypatch):
    snapshot = tmp_path / "models--x--y" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    assert weights_identity(snapshot) == "rev-" + "a" * 40
    local = tmp_path / "ckpt"
    local.mkdir()
    (local / "config.json").write_text("{}")
    (local / "model.safetensors").write_bytes(b"\x00" * 10)
    (local / "notes.txt").write_text("not part of the checkpoint")
    first = weights_identity(local)
    (local / "notes.txt").write_text("changed")
    assert weights_identity(local) == first  # only checkpoint files count
    (local / "model.safetensors.index.json").write_text("{}")
    assert weights_identity(local) != first  # the shard index does
    assert file_sha256(local / "config.json") == hashlib.sha256(b"{}").hexdigest()
    monkeypatch.setenv("SEGMENTKIT_CACHE", str(tmp_path / "cache"))
    assert derived_cache_root("onnx") == tmp_path / "cache" / "onnx"
