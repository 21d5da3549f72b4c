"""`segmentkit segment --model mask2former-swin-tiny-coco-panoptic --task panoptic` end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import segmentkit as sk
from PIL import Image


def test_cli_segment_panoptic(checkpoint, make_image, tmp_path):
    image = make_image(200, 240, seed=0)
    path = tmp_path / "street.png"
    Image.fromarray(image).save(path)
    cmd = [sys.executable, "-c", "from segmentkit.cli import main; main()", "segment", str(path),
           "--model", "mask2former-swin-tiny-coco-panoptic", "--task", "panoptic", "--weights", str(checkpoint),
           "--out", str(tmp_path / "out"), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    expected = sk.load("mask2former-swin-tiny-coco-panoptic", weights=checkpoint).segment(image, task="panoptic")
    assert document["kind"] == "panoptic" and len(document["masks"]) == len(expected.masks) >= 1
    assert [m["label"] for m in document["masks"]] == expected.masks.labels
    assert [m["area"] for m in document["masks"]] == expected.masks.areas.tolist()
