"""EoMT in the mask2former distribution: cards, the Segmenter contract, options, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import segmentkit as sk
from PIL import Image
from segmentkit.errors import OptionsError, TaskError, WeightsUnavailableError
from segmentkit.testing.conformance import SegmenterContract

MODEL = "eomt-large-640-coco-panoptic"


def test_cards():
    cards = {m.card.id: m.card for m in sk.models(role="segmenter") if m.card.family == "eomt"}
    pan = cards[MODEL]
    assert pan.weights.repo_id == "tue-mps/coco_panoptic_eomt_large_640" and pan.license == "MIT"
    assert pan.tasks == ("panoptic", "instance", "semantic") and len(pan.labels) == 133
    assert cards["eomt-small-640-coco-panoptic"].weights.repo_id == "tue-mps/coco_panoptic_eomt_small_640_2x"
    assert cards["eomt-large-640-coco-instance"].tasks == ("instance",)
    assert cards["eomt-large-512-ade-semantic"].tasks == ("semantic",)
    assert cards["eomt-large-1024-cityscapes-semantic"].weights.repo_id == (
        "tue-mps/cityscapes_semantic_eomt_large_1024")
    assert len(cards["eomt-giant-1280-ade-panoptic"].labels) == 150
    assert "bf16" in pan.precisions


@pytest.fixture(scope="module")
def loaded(eomt_checkpoint):
    return sk.load(MODEL, weights=eomt_checkpoint)


class TestPanopticContract(SegmenterContract):
    level = "geometry"  # random weights
    task = None  # the card's first: panoptic

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, loaded):
        return loaded


class TestSemanticWindowsContract(SegmenterContract):
    level = "geometry"
    task = "semantic"
    extreme_sizes = ((10, 300),)  # 64 x 1920 after the resize: 30 windows

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, eomt_semantic_checkpoint):
        return sk.load("eomt-large-512-ade-semantic", weights=eomt_semantic_checkpoint)


def test_stuff_classes_fuse_by_default_and_things_are_marked(loaded, make_image):
    image = make_image(60, 80, seed=60)
    plain = loaded.segment(image, label_ids_to_fuse=(), overlap_mask_area_threshold=0.1)
    fused = loaded.segment(image, overlap_mask_area_threshold=0.1)  # default: the COCO stuff classes
    assert fused.masks.data["fused"].tolist() == [int(c) >= 80 for c in fused.masks.class_ids]
    assert fused.masks.data["is_thing"].tolist() == [int(c) < 80 for c in fused.masks.class_ids]
    assert len(fused.masks) <= len(plain.masks)


def test_bf16_agrees_with_fp32(eomt_checkpoint, loaded, make_image, native_bf16):
    image = make_image(80, 80, seed=8)
    fast = sk.load(MODEL, weights=eomt_checkpoint, precision="bf16")
    assert np.mean(fast.segment(image, task="semantic").label_map == loaded.segment(image, task="semantic").label_map) \
        >= 0.9


def test_instance_card_refuses_panoptic(eomt_checkpoint, make_image):
    # the tiny weights have COCO panoptic's head; the card decides the tasks
    model = sk.load("eomt-large-640-coco-instance", weights=eomt_checkpoint)
    with pytest.raises(TaskError, match="does not do 'panoptic'"):
        model.segment(make_image(40, 40, seed=0), task="panoptic")


def test_a_mask2former_checkpoint_is_not_an_eomt(checkpoint):
    with pytest.raises(WeightsUnavailableError, match="not a EoMT|not an EoMT"):
        sk.load(MODEL, weights=checkpoint)


def test_cli_segment_panoptic(eomt_checkpoint, make_image, tmp_path):
    image = make_image(60, 80, seed=60)
    path = tmp_path / "street.png"
    Image.fromarray(image).save(path)
    cmd = [sys.executable, "-c", "from segmentkit.cli import main; main()", "segment", str(path), "--model", MODEL,
           "--task", "instance", "--weights", str(eomt_checkpoint), "--out", str(tmp_path / "out"), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    expected = sk.load(MODEL, weights=eomt_checkpoint).segment(image, task="instance")
    assert document["kind"] == "instance" and len(document["masks"]) == len(expected.masks) >= 1
    assert [m["label"] for m in document["masks"]] == expected.masks.labels
    assert [m["area"] for m in document["masks"]] == expected.masks.areas.tolist()


def test_without_bf16_auto_is_fp32_and_bf16_is_refused(eomt_checkpoint, force_capabilities):
    force_capabilities(bf16=False)
    assert sk.load(MODEL, weights=eomt_checkpoint).options.precision == "fp32"
    with pytest.raises(OptionsError, match="native bf16"):
        sk.load(MODEL, weights=eomt_checkpoint, precision="bf16")
    force_capabilities(bf16=True)
    assert sk.load(MODEL, weights=eomt_checkpoint).options.precision == "bf16"  # 'auto' where bf16 is native
