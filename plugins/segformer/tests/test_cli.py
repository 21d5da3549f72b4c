"""`segmentkit segment --model segformer-b0-ade --weights DIR` end to end, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import segmentkit as sk
from PIL import Image


def test_cli_segment(checkpoint, make_image, tmp_path):
    image = make_image(120, 160, seed=11)
    path = tmp_path / "street.png"
    Image.fromarray(image).save(path)
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", "from segmentkit.cli import main; main()", "segment", str(path),
           "--model", "segformer-b0-ade", "--weights", str(checkpoint), "--out", str(out), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["kind"] == "semantic" and document["model"]["id"] == "segformer-b0-ade"
    expected = sk.load("segformer-b0-ade", weights=checkpoint).segment(image)
    assert {m["label"] for m in document["masks"]} == set(expected.labels_present)
    assert sum(m["area"] for m in document["masks"]) == 120 * 160
    assert any(out.iterdir())

    refused = subprocess.run(cmd[:-3] + ["--task", "panoptic"], capture_output=True, text=True, timeout=300,
                             check=False)
    assert refused.returncode == 2 and "does not do 'panoptic'" in refused.stderr
