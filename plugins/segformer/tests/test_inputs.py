"""Bad and unusual inputs: unsupported task, grayscale, RGBA, files, huge images, options."""

from __future__ import annotations

import numpy as np
import pytest
import segmentkit as sk
from PIL import Image
from segmentkit.errors import ImageError, OptionsError, TaskError, WeightsUnavailableError


@pytest.mark.parametrize("task", ["panoptic", "instance", "automatic"])
def test_unsupported_task_is_a_clear_error(segmenter, make_image, task):
    with pytest.raises(TaskError, match=f"does not do '{task}'.*semantic"):
        segmenter.segment(make_image(64, 64, seed=0), task=task)


def test_grayscale_is_segmented_as_its_rgb(segmenter, make_image):
    gray = make_image(120, 160, seed=1)[..., 0]
    result = segmenter.segment(gray)
    assert result.label_map.shape == (120, 160)
    assert np.array_equal(result.label_map, segmenter.segment(np.stack([gray] * 3, axis=-1)).label_map)


def test_rgba_is_composited_on_white(segmenter, make_image, tmp_path):
    rgb = make_image(100, 150, seed=2)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:50, :, 3] = 0  # top half fully transparent -> white
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(path)
    expected = rgb.copy()
    expected[:50] = 255
    from_file = segmenter.segment(path).label_map
    assert np.array_equal(from_file, segmenter.segment(expected).label_map)
    assert np.array_equal(segmenter.segment(rgba).label_map, from_file)


def test_huge_image_with_sliding_windows(segmenter, make_image):
    image = make_image(1200, 3600, seed=3)
    result = segmenter.segment(image, sliding_window=True)
    assert result.label_map.shape == (1200, 3600)
    assert result.label_map.dtype == np.int32
    assert result.label_map.min() >= 0 and result.label_map.max() < 150
    assert len(result.masks) == len(np.unique(result.label_map))


def test_not_an_image_is_an_image_error(segmenter, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ImageError):
        segmenter.segment(bad)


def test_unknown_option_and_missing_weights(checkpoint, tmp_path):
    with pytest.raises(OptionsError, match="sliding_windw"):
        sk.load("segformer-b0-ade", weights=checkpoint, sliding_windw=True)
    with pytest.raises(WeightsUnavailableError, match="config.json"):
        sk.load("segformer-b0-ade", weights=tmp_path)


def test_placeholder_label_names_fall_back_to_the_card(checkpoint, tmp_path):
    import json
    import shutil

    folder = tmp_path / "unnamed"
    shutil.copytree(checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {str(i): f"LABEL_{i}" for i in range(150)}
    config["label2id"] = {f"LABEL_{i}": i for i in range(150)}
    (folder / "config.json").write_text(json.dumps(config))
    model = sk.load("segformer-b0-ade", weights=folder)
    assert model.raw.id2label[2] == "sky" and model.raw.id2label[149] == "flag"
