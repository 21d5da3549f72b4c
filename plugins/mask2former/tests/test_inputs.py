"""Tasks per card, bad and unusual inputs, options."""

from __future__ import annotations

import numpy as np
import pytest
import segmentkit as sk
from PIL import Image
from segmentkit.errors import OptionsError, TaskError, WeightsUnavailableError


@pytest.mark.parametrize(("model_id", "allowed", "refused"), [
    ("mask2former-swin-tiny-ade-semantic", "semantic", ["panoptic", "instance"]),
    ("mask2former-swin-tiny-coco-instance", "instance", ["panoptic", "semantic"]),
    ("mask2former-swin-tiny-coco-panoptic", "panoptic", ["automatic"]),
])
def test_tasks_follow_the_training_dataset(checkpoint, make_image, model_id, allowed, refused):
    # The same tiny weights under each card: which tasks are offered is the card's decision.
    model = sk.load(model_id, weights=checkpoint)
    image = make_image(64, 80, seed=0)
    assert model.segment(image, task=allowed).kind == allowed
    for task in refused:
        with pytest.raises(TaskError, match=f"does not do '{task}'"):
            model.segment(image, task=task)


def test_default_task_is_the_cards_first(segmenter, make_image):
    assert segmenter.card.tasks[0] == "panoptic"
    assert segmenter.segment(make_image(64, 64, seed=1)).kind == "panoptic"


def test_grayscale_and_rgba(segmenter, make_image, tmp_path):
    gray = make_image(150, 200, seed=2)[..., 0]
    as_rgb = segmenter.segment(np.stack([gray] * 3, axis=-1), task="panoptic")
    assert np.array_equal(segmenter.segment(gray, task="panoptic").label_map, as_rgb.label_map)
    rgb = make_image(150, 200, seed=3)
    rgba = np.dstack([rgb, np.full((150, 200), 255, np.uint8)])
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(path)
    assert np.array_equal(segmenter.segment(path).label_map, segmenter.segment(rgb).label_map)


def test_huge_image(segmenter, make_image):
    image = make_image(1600, 2400, seed=4)
    result = segmenter.segment(image, task="panoptic")
    assert result.label_map.shape == (1600, 2400)
    assert len(result.masks) >= 1 and result.masks.image_size == (1600, 2400)
    instances = segmenter.segment(image, task="instance", threshold=0.3)
    assert instances.masks.masks.shape[1:] == (1600, 2400)


def test_per_call_thresholds_are_validated(segmenter, make_image):
    image = make_image(64, 64, seed=5)
    with pytest.raises(OptionsError, match="treshold"):
        segmenter.segment(image, treshold=0.3)
    with pytest.raises(OptionsError, match="threshold"):
        segmenter.segment(image, threshold=1.5)
    many = segmenter.segment(image, task="instance", threshold=0.2)
    few = segmenter.segment(image, task="instance", threshold=0.45)
    assert len(few.masks) < len(many.masks)


def test_bad_weights_folder(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="config.json"):
        sk.load("mask2former-swin-tiny-coco-panoptic", weights=tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "segformer"}')
    with pytest.raises(WeightsUnavailableError, match="not a Mask2Former"):
        sk.load("mask2former-swin-tiny-coco-panoptic", weights=tmp_path)
