"""Cards, registration and the cheap plugin import."""

from __future__ import annotations

import subprocess
import sys

import segmentkit as sk


def test_cards_are_registered():
    cards = {m.card.id: m.card for m in sk.models(role="segmenter") if m.card.family == "segformer"}
    assert {f"segformer-b{i}-{d}" for i in range(6) for d in ("ade", "cityscapes")} <= set(cards)
    ade, city = cards["segformer-b0-ade"], cards["segformer-b5-cityscapes"]
    assert ade.weights.repo_id == "nvidia/segformer-b0-finetuned-ade-512-512" and ade.input_size == 512
    assert cards["segformer-b5-ade"].weights.repo_id == "nvidia/segformer-b5-finetuned-ade-640-640"
    assert city.weights.repo_id == "nvidia/segformer-b5-finetuned-cityscapes-1024-1024"
    assert len(ade.labels) == 150 and ade.labels[:3] == ("wall", "building", "sky")
    assert len(city.labels) == 19 and city.labels[-1] == "bicycle"
    assert ade.tasks == ("semantic",) and ade.runtimes == ("torch", "onnxruntime")


def test_plugin_import_is_cheap():
    code = (
        "import sys, segmentkit as sk, segmentkit_segformer; sk.models();"
        "heavy = {'torch', 'transformers', 'onnxruntime', 'onnx'} & set(sys.modules); print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
