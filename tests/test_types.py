"""Prompts, Masks, Segmentation: validation and container behaviour."""

import math

import numpy as np
import pytest
from segmentkit.errors import PromptError
from segmentkit.types import Box, FrameMasks, MaskPrompt, Masks, Point, Segmentation, Text, validate_prompts


def test_point_defaults_and_negative():
    assert Point(3, 4).positive is True
    assert Point(3, 4, positive=False).positive is False
    assert Point.model_validate({"x": 1, "y": 2}) == Point(1, 2)


@pytest.mark.parametrize("x", [math.nan, math.inf, -math.inf])
def test_point_rejects_non_finite(x):
    with pytest.raises(PromptError, match="finite"):
        Point(x, 1)


def test_box_rejects_inverted_and_empty():
    with pytest.raises(PromptError, match="x0 < x1"):
        Box(10, 10, 5, 20)
    with pytest.raises(PromptError):
        Box(5, 5, 5, 9)


def test_text_rejects_blank():
    with pytest.raises(PromptError, match="blank"):
        Text("   ")


def test_validate_prompts_bounds():
    size = (100, 200)  # H, W
    assert len(validate_prompts([Point(199.5, 99), Box(0, 0, 200, 100)], size)) == 2
    with pytest.raises(PromptError, match="outside the 200x100 image"):
        validate_prompts([Point(10, 101)], size)
    with pytest.raises(PromptError, match="outside"):
        validate_prompts([Box(-1, 0, 10, 10)], size)
    with pytest.raises(PromptError, match="no prompts"):
        validate_prompts([], size)
    with pytest.raises(PromptError, match="at most one box"):
        validate_prompts([Box(0, 0, 5, 5), Box(1, 1, 6, 6)], size)
    with pytest.raises(PromptError, match="shape"):
        validate_prompts([MaskPrompt(np.zeros((10, 10), bool))], size)
    validate_prompts([MaskPrompt(np.zeros((256, 256), np.float32))], size)  # low-res logits


def test_validate_prompts_rechecks_unvalidated_prompts():
    with pytest.raises(PromptError, match="finite"):
        validate_prompts([Box.model_construct(x0=math.nan, y0=0.0, x1=5.0, y1=5.0)], (10, 10))
    with pytest.raises(PromptError, match="finite"):
        validate_prompts([Point.model_construct(x=1.0, y=math.inf, positive=True)], (10, 10))


def test_mask_prompt_rejects_nan_logits():
    with pytest.raises(PromptError, match="finite"):
        MaskPrompt(np.full((4, 4), np.nan, np.float32))


def _two_masks():
    m = np.zeros((2, 6, 8), bool)
    m[0, 1:3, 2:5] = True
    m[1, 4:6, 0:8] = True
    return m


def test_masks_derives_boxes_areas_and_indexes():
    ms = Masks(_two_masks(), scores=[0.9, 0.4], class_ids=[3, 7], id2label={3: "cat", 7: "mat"},
               data={"iou_pred": np.array([0.8, 0.3])})
    np.testing.assert_array_equal(ms.boxes, [[2, 1, 5, 3], [0, 4, 8, 6]])
    np.testing.assert_array_equal(ms.areas, [6, 16])
    assert ms.labels == ["cat", "mat"]
    one = ms[1]
    assert (one.area, one.label, one.bbox) == (16, "mat", (0.0, 4.0, 8.0, 6.0))
    assert one.extra["iou_pred"] == pytest.approx(0.3)
    kept = ms[ms.scores > 0.5]
    assert len(kept) == 1 and kept.labels == ["cat"] and kept.data["iou_pred"].shape == (1,)
    assert len(ms[::-1]) == 2 and ms[::-1].class_ids.tolist() == [7, 3]


def test_masks_validation_messages():
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        Masks(np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match=r"scores must have shape \(2,\)"):
        Masks(_two_masks(), scores=[1.0])
    with pytest.raises(ValueError, match=r"boxes must have shape \(2, 4\)"):
        Masks(_two_masks(), boxes=np.zeros((2, 3)))


def test_empty_mask_box_is_zero_and_concatenate():
    ms = Masks(np.zeros((1, 3, 3), bool))
    assert ms.boxes.tolist() == [[0, 0, 0, 0]]
    none = Masks.empty((3, 4))
    assert none.areas.shape == (0,) and none.boxes.shape == (0, 4) and none.to_coco_rle() == []
    both = Masks.concatenate([Masks(_two_masks(), class_ids=[1, 2]), Masks(_two_masks()[:1], class_ids=[5])])
    assert len(both) == 3 and both.class_ids.tolist() == [1, 2, 5]


def test_segmentation_from_label_map():
    lm = np.array([[0, 0, 2], [2, 2, 1]])
    seg = Segmentation.from_label_map(lm, {0: "sky", 1: "road", 2: "tree"})
    assert seg.kind == "semantic" and seg.image_size == (2, 3)
    assert seg.labels_present == ["sky", "road", "tree"]
    np.testing.assert_array_equal(seg.masks.masks[2], lm == 2)
    with pytest.raises(ValueError, match="label_map must have shape"):
        Segmentation("semantic", (3, 3), Masks.empty((3, 3)), label_map=np.zeros((2, 2)))


def test_frame_masks_object_ids():
    fm = FrameMasks(4, Masks(_two_masks(), object_ids=[10, 11]))
    assert fm.object_ids == [10, 11]
