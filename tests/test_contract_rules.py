"""The output rules live once, in segmentkit.contract; the conformance suite asserts the same ones."""

from __future__ import annotations

import re

import numpy as np
import pytest
from segmentkit import contract
from segmentkit.roles import Detections
from segmentkit.testing import conformance
from segmentkit.types import Masks, Segmentation

SIZE = (20, 30)


def _masks(boxes: list[list[float]]) -> Masks:
    return Masks(np.zeros((len(boxes), *SIZE), dtype=bool), boxes=np.array(boxes, dtype=np.float32).reshape(-1, 4))


CASES = [
    (_masks([[0, 0, 31, 5]]), "check_masks", (SIZE,), "boxes leave the 30x20 image"),
    (_masks([[-1, 0, 3, 5]]), "check_masks", (SIZE,), "boxes leave the 30x20 image"),
    (Segmentation("semantic", SIZE, _masks([])), "check_segmentation", (SIZE, None),
     "a semantic segmentation needs a label_map"),
    (Detections(np.array([[0, 0, 5, 5]], dtype=np.float32), np.array([1.5], dtype=np.float32), ["a"], SIZE),
     "check_detections", (SIZE,), "detection scores must be in [0, 1]"),
]


@pytest.mark.parametrize("answer, check, args, message", CASES, ids=[c[3] for c in CASES])
def test_runtime_and_conformance_refuse_the_same(answer, check, args, message) -> None:
    with pytest.raises(contract.Violation, match=re.escape(message)):
        getattr(contract, check)(answer, *args)
    with pytest.raises(pytest.fail.Exception, match=re.escape(message)):
        getattr(conformance, check)(answer, *args)
