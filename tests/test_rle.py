"""COCO RLE: our encoding is pycocotools' format and round-trips both ways."""

import json

import numpy as np
import pytest
from pycocotools import mask as coco
from segmentkit import rle
from segmentkit.types import Masks


def _random_masks(seed: int, n: int = 5, h: int = 37, w: int = 53) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((n, h, w)) > rng.random((n, 1, 1))


def test_encode_matches_hand_computed_column_major_runs():
    # 3x4 mask with ones at (row 1, cols 1-2). Column-major runs: 4 zeros, 1 one, 2 zeros, 1 one, 4 zeros.
    m = np.zeros((3, 4), bool)
    m[1, 1:3] = True
    encoded = rle.encode(m)
    assert encoded["size"] == [3, 4]
    uncompressed = {"size": [3, 4], "counts": [4, 1, 2, 1, 4]}
    assert encoded["counts"] == coco.frPyObjects(uncompressed, 3, 4)["counts"].decode()
    np.testing.assert_array_equal(rle.decode(uncompressed), m)


def _edge_masks() -> list[np.ndarray]:
    """Shapes and patterns the run finder must get right: empty, full, one row or column,
    set first / last pixels, runs across column ends, counts that need many characters."""
    rng = np.random.default_rng(9)
    full = np.ones((4, 6), bool)
    long_runs = np.zeros((1500, 1400), bool)
    long_runs[1:, :700] = True
    corners = np.zeros((5, 5), bool)
    corners[0, 0] = corners[-1, -1] = corners[-1, 0] = corners[0, -1] = True
    masks = [np.zeros((3, 4), bool), full, ~full, rng.random((1, 17)) > 0.5, rng.random((17, 1)) > 0.5,
             long_runs, ~long_runs, corners, ~corners, rng.random((7, 9)) > 0.5]
    masks += [rng.random((h, w)) > rng.random() for h, w in rng.integers(1, 30, (40, 2))]
    return masks


def test_encode_is_pycocotools_string_on_edge_cases():
    for m in _edge_masks():
        expected = coco.encode(np.asfortranarray(m.astype(np.uint8)))["counts"].decode()
        assert rle.encode(m)["counts"] == expected, m.shape
        assert rle.encode(m.astype(np.uint8))["counts"] == expected  # 0 / 1 integers too


@pytest.mark.parametrize("seed", range(3))
def test_roundtrip_with_pycocotools(seed):
    for m in _random_masks(seed):
        ours = rle.encode(m)
        json.dumps(ours)  # JSON-ready
        theirs = coco.encode(np.asfortranarray(m.astype(np.uint8)))
        assert ours["counts"].encode() == theirs["counts"]
        np.testing.assert_array_equal(coco.decode({"size": ours["size"], "counts": ours["counts"].encode()}), m)
        np.testing.assert_array_equal(rle.decode(ours), m)
        assert rle.area(ours) == int(m.sum())


def test_masks_to_coco_rle_and_edge_cases():
    ms = Masks(_random_masks(7, n=3))
    out = ms.to_coco_rle()
    assert [rle.area(r) for r in out] == ms.areas.tolist()
    assert ms[0].to_rle() == out[0]
    full = np.ones((4, 5), bool)
    np.testing.assert_array_equal(rle.decode(rle.encode(full)), full)
    with pytest.raises(ValueError, match="one \\(H, W\\) mask"):
        rle.encode(np.zeros((2, 2, 2), bool))
