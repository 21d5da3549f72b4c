"""Pre- and post-processing against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from segmentkit_sam2.preprocess import map_boxes, map_points, mask_input, preprocess_image, upscale_masks

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def _normalised(values: np.ndarray) -> np.ndarray:
    """Hand-written rescale + ImageNet normalisation of uint8 values, per channel."""
    return (values[..., None] / 255.0 - MEAN) / STD


def test_upsampling_is_bilinear_half_pixel_then_normalised() -> None:
    # A 1x2 image -> 4x4: columns sample the input at x = -0.25, 0.25, 0.75, 1.25 (clamped):
    # 0, 0.75*0 + 0.25*200, 0.25*0 + 0.75*200, 200 = 0, 50, 150, 200 (rows are copies).
    image = np.zeros((1, 2, 3), dtype=np.uint8)
    image[0, 1] = 200
    out = preprocess_image(image, size=4)
    assert out.shape == (1, 3, 4, 4) and out.dtype == torch.float32
    expected = _normalised(np.array([0.0, 50.0, 150.0, 200.0]))  # (4, 3)
    for c in range(3):
        for row in range(4):
            np.testing.assert_allclose(out[0, c, row].numpy(), expected[:, c], rtol=0, atol=1e-5)


def test_downsampling_is_antialiased_on_uint8() -> None:
    # 4 -> 2 pixels: an antialiased (triangle of half-width 2) filter centred at x = 0.5 and 2.5
    # weighs the neighbours 0.75, 0.75, 0.25 (normalised over the pixels inside the image):
    # (0*.75 + 70*.75 + 140*.25) / 1.75 = 50 and (70*.25 + 140*.75 + 210*.75) / 1.75 = 160.
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    image[:, :, :] = np.array([0, 70, 140, 210], dtype=np.uint8)[None, :, None]
    out = preprocess_image(image, size=2)
    expected = _normalised(np.array([50.0, 160.0]))
    for c in range(3):
        np.testing.assert_allclose(out[0, c, 0].numpy(), expected[:, c], rtol=0, atol=1e-5)
    # A plain (non-antialiased) bilinear resize would give 35 and 175 instead.
    assert abs(float(out[0, 0, 0, 0]) - _normalised(np.array([35.0]))[0, 0]) > 0.2


def test_resize_result_is_rounded_uint8() -> None:
    # 0 and 255 -> 0.25 / 0.75 mixes are 63.75 and 191.25: the uint8 kernel rounds them to 64, 191.
    image = np.zeros((1, 2, 3), dtype=np.uint8)
    image[0, 1] = 255
    out = preprocess_image(image, size=4)[0, 0, 0].numpy()
    np.testing.assert_allclose(out, _normalised(np.array([0.0, 64.0, 191.0, 255.0]))[:, 0], atol=1e-5)


def test_aspect_is_not_kept_and_size_comes_from_the_argument() -> None:
    image = np.full((10, 1000, 3), 128, dtype=np.uint8)
    out = preprocess_image(image, size=64)
    assert out.shape == (1, 3, 64, 64)
    np.testing.assert_allclose(out[0, 1].numpy(), (128 / 255 - MEAN[1]) / STD[1], atol=1e-5)


def test_rejects_non_rgb_uint8() -> None:
    with pytest.raises(ValueError):
        preprocess_image(np.zeros((4, 4), dtype=np.uint8))


def test_points_and_boxes_scale_each_axis_to_the_input_size() -> None:
    # (H, W) = (200, 400) -> 1024 x 1024: x * 1024 / 400, y * 1024 / 200.
    pts = map_points([[100.0, 50.0], [400.0, 200.0], [0.0, 0.0]], (200, 400), 1024)
    np.testing.assert_allclose(pts.numpy(), [[256.0, 256.0], [1024.0, 1024.0], [0.0, 0.0]])
    box = map_boxes([10.0, 20.0, 30.0, 40.0], (200, 400), 1024)
    np.testing.assert_allclose(box.numpy(), [25.6, 102.4, 76.8, 204.8], rtol=1e-6)
    assert pts.dtype == torch.float32 and box.dtype == torch.float32


def test_upscale_is_one_bilinear_step_to_the_image_size() -> None:
    # A 2x2 logit map -> 2x4: columns at x = -0.25, 0.25, 0.75, 1.25 of the input (half-pixel).
    low = torch.tensor([[[[0.0, 4.0], [8.0, 12.0]]]])
    out = upscale_masks(low, (2, 4))
    np.testing.assert_allclose(out[0, 0].numpy(), [[0, 1, 3, 4], [8, 9, 11, 12]], atol=1e-6)


def test_mask_prompts_become_low_res_logits() -> None:
    logits = np.random.default_rng(0).normal(size=(256, 256)).astype(np.float32)
    np.testing.assert_array_equal(mask_input(logits, (256, 256))[0, 0].numpy(), logits)  # used as is
    full = np.zeros((8, 8), dtype=bool)
    full[:, 4:] = True
    # 8 -> 4 columns, antialiased: column 1 mixes inputs 1..4 (0, 0, 0, 1) with weights
    # .25, .75, .75, .25 -> 0.125 -> logit (2 * 0.125 - 1) * 10 = -7.5; column 2 mirrors it.
    out = mask_input(full, (4, 4))[0, 0].numpy()
    np.testing.assert_allclose(out, np.tile([-10.0, -7.5, 7.5, 10.0], (4, 1)), atol=1e-5)


def test_resize_agrees_with_pillows_fixed_point_resampler() -> None:
    # torch's uint8 antialiased kernel is a port of Pillow's fixed-point resampler (two
    # passes, rounded to uint8 in between); they differ by one grey level on < 1 % of the
    # pixels (pass order). A float resize rounded once disagrees on ~18 % of them.
    from PIL import Image
    from segmentkit_sam2.preprocess import resize_uint8

    image = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    ours = resize_uint8(image, 256)[0].permute(1, 2, 0).numpy().astype(int)
    pil = np.asarray(Image.fromarray(image).resize((256, 256), Image.BILINEAR)).astype(int)
    assert np.abs(ours - pil).max() <= 1
    assert (ours != pil).mean() < 0.02
