"""Sanity on a real photo (no ground truth: the output must just be sensible)."""

from pathlib import Path

import numpy as np
import pytest
import segmentkit as sk

SAMPLE = Path(sk.__file__).parent / "samples" / "chelsea.png"


@pytest.fixture(scope="module")
def photo():
    if SAMPLE.exists():
        return sk.io.load_image(SAMPLE)
    from skimage import data

    return data.chelsea()


def test_point_on_the_cat(classic, photo):
    h, w = photo.shape[:2]
    click = (0.5 * w, 0.75 * h)  # the cat's nose and muzzle
    masks = classic.predict(classic.embed(photo), [sk.Point(*click)], multimask=True)
    assert masks.masks.shape == (3, h, w)
    for mask in masks.masks:
        assert mask[int(click[1]), int(click[0])]
        assert 0.001 < mask.mean() < 0.9
    assert len({m.tobytes() for m in masks.masks}) > 1, "the candidates should differ on a photo"
    single = classic.predict(classic.embed(photo), [sk.Point(*click)])
    assert np.array_equal(single.masks[0], masks.masks[int(np.argmax(masks.scores))])


def test_box_stays_inside_the_box(classic, photo):
    h, w = photo.shape[:2]
    box = sk.Box(0.15 * w, 0.05 * h, 0.9 * w, h)
    mask = classic.predict(classic.embed(photo), [box]).masks[0]
    inside = np.zeros_like(mask)
    inside[int(box.y0):int(np.ceil(box.y1)), int(box.x0):int(np.ceil(box.x1))] = True
    assert mask.mean() > 0.05 and not (mask & ~inside).any()


def test_automatic_regions(photo):
    seg = sk.load("classic", role="segmenter").segment(photo)
    assert 5 <= len(seg.masks) <= 64
    assert seg.masks.masks.shape[1:] == photo.shape[:2]
    assert (seg.label_map > 0).mean() > 0.8  # most of the photo is in some kept region
