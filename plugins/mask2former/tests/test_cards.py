"""Cards, registration and the cheap plugin import."""

from __future__ import annotations

import subprocess
import sys

import segmentkit as sk


def test_cards():
    cards = {m.card.id: m.card for m in sk.models(role="segmenter") if m.card.family == "mask2former"}
    pan = cards["mask2former-swin-tiny-coco-panoptic"]
    assert pan.weights.repo_id == "facebook/mask2former-swin-tiny-coco-panoptic"
    assert pan.tasks == ("panoptic", "instance", "semantic") and len(pan.labels) == 133
    assert cards["mask2former-swin-tiny-coco-instance"].tasks == ("instance",)
    assert len(cards["mask2former-swin-tiny-coco-instance"].labels) == 80
    assert cards["mask2former-swin-large-ade-semantic"].tasks == ("semantic",)
    assert cards["mask2former-swin-base-in21k-cityscapes-semantic"].weights.repo_id == (
        "facebook/mask2former-swin-base-IN21k-cityscapes-semantic"
    )
    assert len(cards["mask2former-swin-tiny-cityscapes-panoptic"].labels) == 19
    assert sk.models(task="panoptic", role="segmenter")


def test_plugin_import_is_cheap():
    code = (
        "import sys, segmentkit as sk, segmentkit_mask2former; sk.models();"
        "print(sorted({'torch', 'transformers', 'scipy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
