"""Automatic masks from Felzenszwalb regions."""

import numpy as np
import pytest
import segmentkit as sk
from segmentkit.errors import TaskError
from segmentkit.testing import best_iou, synthetic_scene


@pytest.fixture(scope="module")
def segmenter():
    return sk.load("classic", role="segmenter")


@pytest.mark.parametrize("kw", [
    dict(size=(96, 160), center=(100, 40)),
    dict(size=(96, 160), shape="rectangle", center=(60, 52)),
    dict(size=(80, 120), background="plain", noise=12),
    dict(size=(600, 1000), center=(620, 280)),  # runs downscaled
], ids=["ellipse", "rectangle", "plain", "large"])
def test_finds_the_object(segmenter, kw):
    scene = synthetic_scene(**kw, seed=3)
    seg = segmenter.segment(scene.image)
    assert seg.kind == "automatic" and seg.image_size == scene.size
    assert best_iou(seg.masks.masks, scene.mask) >= 0.9


def test_masks_label_map_areas_and_scores_agree(segmenter):
    scene = synthetic_scene((96, 160), distractor=True, seed=3)
    seg = segmenter.segment(scene.image)
    n = len(seg.masks)
    assert n >= 3  # object, look-alike and background pieces
    areas = seg.masks.areas
    assert np.all(np.diff(areas) <= 0), "masks must be sorted by area, largest first"
    assert np.all(areas >= segmenter.options.min_region * scene.mask.size)
    assert np.all((seg.masks.scores >= 0) & (seg.masks.scores <= 1))
    for i in range(n):
        assert np.array_equal(seg.label_map == i + 1, seg.masks.masks[i])
    assert not (seg.masks.masks.sum(axis=0) > 1).any(), "regions must not overlap"
    # The object stands out from its surroundings more than a background stripe does.
    obj = int(np.argmax([np.logical_and(m, scene.mask).sum() / np.logical_or(m, scene.mask).sum()
                         for m in seg.masks.masks]))
    assert seg.masks.scores[obj] > np.median(seg.masks.scores)


def test_region_options():
    scene = synthetic_scene((96, 160), seed=3)
    default = sk.load("classic", role="segmenter").segment(scene.image)
    few = sk.load("classic", role="segmenter", max_regions=2).segment(scene.image)
    assert len(few.masks) == 2 < len(default.masks)
    assert (few.label_map == 0).any()  # regions left out are 0 in the label map
    coarse = sk.load("classic", role="segmenter", min_region=0.2).segment(scene.image)
    assert 1 <= len(coarse.masks) < len(default.masks)
    assert np.all(coarse.masks.areas >= 0.2 * scene.mask.size)


def test_other_tasks_are_refused(segmenter):
    image = synthetic_scene((32, 32)).image
    for task in ("semantic", "panoptic", "everything"):
        with pytest.raises(TaskError, match="automatic"):
            segmenter.segment(image, task=task)
