"""The tiny random EdgeTAM checkpoint of the parity fixtures, rebuilt from a seed.

``fixtures/edgetam-tiny/config.json`` is the checkpoint's config (hub layout, ``timm_wrapper``
backbone); its weights are not stored: :func:`fill_weights` draws every tensor from one
seeded generator in name order, so the fixture script (transformers + timm) and the tests
(our timm-free model) get bit-identical weights, which ``reference.npz`` checks with a
checksum. The draws make outputs non-trivial (shared/TESTING.md): weights ~ N(0, 1/fan_in),
biases and embeddings ~ N(0, 0.2), norm scales ~ 1 + N(0, 0.2), batch-norm running
statistics random; the object-score head says "object"; the mask and IoU heads get the
gains the fixture script calibrated (stored in ``reference.npz``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

FIXTURES = Path(__file__).parent / "fixtures" / "edgetam-tiny"
SEED = 0


def fill_weights(model: torch.nn.Module, mask_gain: float = 1.0, iou_gain: float = 1.0) -> None:
    """Overwrite every floating tensor of an ``EdgeTamVideoModel`` (or ``EdgeTamModel``) in place."""
    gen = torch.Generator().manual_seed(SEED)
    state = model.state_dict(keep_vars=True)
    with torch.no_grad():
        for name in sorted(state):
            tensor = state[name]
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                value = torch.rand(tensor.shape, generator=gen) + 0.5
            elif tensor.dim() >= 2:
                value = torch.randn(tensor.shape, generator=gen) / max(1, tensor[0].numel()) ** 0.5
            elif name.endswith("weight"):
                value = 1.0 + 0.2 * torch.randn(tensor.shape, generator=gen)
            else:
                value = 0.2 * torch.randn(tensor.shape, generator=gen)
            tensor.copy_(value)
        decoder = model.mask_decoder
        decoder.pred_obj_score_head.proj_out.bias.fill_(10.0)
        for mlp in decoder.output_hypernetworks_mlps:
            mlp.proj_out.weight.mul_(mask_gain)
            mlp.proj_out.bias.mul_(mask_gain)
        decoder.iou_prediction_head.proj_out.weight.mul_(iou_gain)


def checksum(model: torch.nn.Module) -> float:
    """Sum of |x| over every floating tensor (float64), to check two builds hold the same weights."""
    return float(sum(t.detach().double().abs().sum() for t in model.state_dict().values() if t.is_floating_point()))


def reference() -> dict[str, np.ndarray]:
    """transformers' outputs on the tiny checkpoint (see fixtures/make_edgetam_fixtures.py)."""
    with np.load(FIXTURES / "reference.npz") as data:
        return {k: data[k] for k in data.files}


def build_checkpoint(path: Path) -> Path:
    """Write the tiny checkpoint (fixture config.json + model.safetensors) into ``path`` with our
    timm-free model; raises if its weights differ from the ones the reference was made with."""
    from segmentkit_sam2.edgetam import video_model_from_config

    ref = reference()
    config = json.loads((FIXTURES / "config.json").read_text(encoding="utf-8"))
    model = video_model_from_config(config)
    fill_weights(model, float(ref["mask_gain"]), float(ref["iou_gain"]))
    assert abs(checksum(model) - float(ref["checksum"])) <= 1e-9 * float(ref["checksum"]), "weights differ"
    path = Path(path)
    model.save_pretrained(path)
    shutil.copy(FIXTURES / "config.json", path / "config.json")  # the hub layout: timm_wrapper backbone
    return path
