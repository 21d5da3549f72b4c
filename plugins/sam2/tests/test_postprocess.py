"""Post-processing of a click: the numpy comparisons and counts equal torch's own steps bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from segmentkit_sam2.postprocess import above, stability_score, to_masks


def logits(seed: int, shape=(3, 64, 64)) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    values = torch.randn(*shape, generator=gen) * 4
    values.view(-1)[::97] = 1.0  # values exactly on the thresholds below
    values.view(-1)[::89] = -1.0
    values.view(-1)[::83] = 0.1
    return values


@pytest.mark.parametrize("threshold", [0.0, 0.1, 1.0, -1.0, 0.3333])
def test_above_is_torch_greater(threshold) -> None:
    values = logits(0)
    assert torch.equal(above(values, threshold), values > threshold)
    assert torch.equal(above(values[:, ::2].transpose(1, 2), threshold), values[:, ::2].transpose(1, 2) > threshold)


@pytest.mark.parametrize("threshold", [0.0, 0.1])
def test_to_masks_equals_the_torch_steps(threshold) -> None:
    low_res = logits(1)
    iou = torch.tensor([0.9, 0.5, 0.1])
    hw = (150, 217)
    out = to_masks(low_res, iou, hw, threshold=threshold, stability_offset=1.0)
    full = F.interpolate(low_res[None], size=hw, mode="bilinear", align_corners=False)[0]
    np.testing.assert_array_equal(out.masks, (full > threshold).numpy())
    inter = (full > threshold + 1.0).sum(dim=(1, 2))
    union = (full > threshold - 1.0).sum(dim=(1, 2))
    np.testing.assert_array_equal(out.data["stability"], (inter / union).float().numpy())
    assert torch.equal(stability_score(full, threshold, 1.0), (inter / union).float())
