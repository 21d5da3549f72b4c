"""Pinned weights: every card names a hub commit, `pull --revision` fetches another, and a
gated repository's error says how to get access."""

import json
import re
from pathlib import Path

import pytest
from huggingface_hub.errors import GatedRepoError
from segmentkit import ModelCard, WeightsSource
from segmentkit.cli.app import load_commands
from segmentkit.cli.common import run_app
from segmentkit.errors import WeightsUnavailableError
from segmentkit.weights import pull

COMMIT = re.compile(r"^[0-9a-f]{40}$")
# Repositories no commit hash could be found for (offline); each stays on "main" with a
# comment in its plugin. Pinning one means deleting it here; a new unpinned repo fails.
UNPINNED = {
    "facebook/sam2-hiera-small", "facebook/sam2-hiera-base-plus",
    *(f"nvidia/segformer-{b}-finetuned-ade-512-512" for b in ("b1", "b2", "b4")),
    *(f"nvidia/segformer-{b}-finetuned-cityscapes-1024-1024" for b in ("b3", "b4", "b5")),
    *(f"facebook/mask2former-swin-{name}" for name in (
        "small-coco-panoptic", "tiny-coco-instance", "small-coco-instance",
        "large-coco-instance", "tiny-ade-semantic", "small-ade-semantic", "base-IN21k-ade-semantic",
        "large-ade-semantic", "small-cityscapes-semantic", "base-IN21k-cityscapes-semantic",
        "large-cityscapes-semantic", "tiny-cityscapes-panoptic", "small-cityscapes-panoptic",
        "large-cityscapes-panoptic")),
    *(f"tue-mps/{name}" for name in (  # EoMT: every published checkpoint
        "coco_panoptic_eomt_small_640_2x", "coco_panoptic_eomt_base_640_2x", "coco_panoptic_eomt_large_640",
        "coco_panoptic_eomt_large_1280", "coco_panoptic_eomt_giant_640", "coco_panoptic_eomt_giant_1280",
        "ade20k_panoptic_eomt_large_640", "ade20k_panoptic_eomt_large_1280", "ade20k_panoptic_eomt_giant_640",
        "ade20k_panoptic_eomt_giant_1280", "coco_instance_eomt_large_640", "coco_instance_eomt_large_1280",
        "ade20k_semantic_eomt_large_512", "cityscapes_semantic_eomt_large_1024")),
}


def test_models_json_shows_commit_revisions(capsys):
    assert run_app(load_commands(), ["models", "--json"]) == 0
    cards = [r["card"] for r in json.loads(capsys.readouterr().out)]
    weights = {c["id"]: c["weights"] for c in cards if c["weights"]}
    assert {"sam2.1-hiera-tiny", "segformer-b0-ade", "grounding-dino-tiny"} <= set(weights)
    for model_id, source in weights.items():
        if source["repo_id"] in UNPINNED:
            assert source["revision"] == "main", f"{model_id} is pinned now: drop it from UNPINNED"
        else:
            assert COMMIT.match(source["revision"]), f"{model_id}: {source['revision']!r} is not a commit hash"


def _card() -> ModelCard:
    return ModelCard(id="gated-net", family="toy", roles=("segmenter",), tasks=("semantic",), license="other",
                     weights=WeightsSource(repo_id="someone/gated-net", revision="1" * 40))


def _fake_hub(monkeypatch, tmp_path, fail: BaseException | None = None) -> list[str]:
    """snapshot_download that misses the cache, then 'downloads' (or raises ``fail``)."""
    asked: list[str] = []

    def snapshot_download(repo_id, *, revision, allow_patterns=None, local_files_only=False):
        if local_files_only:
            raise FileNotFoundError("not cached")
        asked.append(revision)
        if fail is not None:
            raise fail
        return str(tmp_path / revision)

    monkeypatch.setattr("huggingface_hub.snapshot_download", snapshot_download)
    monkeypatch.delenv("SEGMENTKIT_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return asked


def test_pull_fetches_the_pinned_or_the_chosen_revision(monkeypatch, tmp_path):
    asked = _fake_hub(monkeypatch, tmp_path)
    assert pull(_card()) == tmp_path / ("1" * 40)
    assert pull(_card(), revision="v2.0") == tmp_path / "v2.0"
    assert asked == ["1" * 40, "v2.0"]


def test_gated_repo_says_accept_the_licence_and_log_in(monkeypatch, tmp_path):
    gated = GatedRepoError.__new__(GatedRepoError)  # the hub's 403 for a licence not yet accepted
    Exception.__init__(gated, "403 Client Error: access to model someone/gated-net is restricted")
    _fake_hub(monkeypatch, tmp_path, fail=gated)
    with pytest.raises(WeightsUnavailableError) as info:
        pull(_card())
    message = str(info.value)
    for needle in ("gated", "https://huggingface.co/someone/gated-net", "accept its licence", "hf auth login"):
        assert needle in message


def test_cli_pull_revision_option(monkeypatch, tmp_path, capsys):
    asked = _fake_hub(monkeypatch, tmp_path)
    assert run_app(load_commands(), ["pull", "segformer-b0-ade", "--revision", "abc123"]) == 0
    assert asked == ["abc123"]
    assert Path(capsys.readouterr().out.strip()) == tmp_path / "abc123"
