"""Weights resolution: local directories, offline cache misses, and the error people see."""

import pytest

from segmentkit import ModelCard, WeightsSource
from segmentkit.errors import WeightsUnavailableError
from segmentkit.weights import pull, resolve_weights


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
    for needle in ("'toy-net'", "segmentkit-tests/does-not-exist", "segmentkit pull toy-net", "--weights DIR", "offline"):
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
