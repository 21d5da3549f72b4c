"""EoMT results against transformers (EomtImageProcessor + EomtForUniversalSegmentation + post_process_*).

The tiny checkpoints' images are enlarged by the resize, where the reference's Pillow resize and
torch's agree exactly (checked: the pixels are compared first).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from segmentkit_mask2former import eomt_postprocess
from segmentkit_mask2former.eomt_processing import eomt_input
from segmentkit_mask2former.processing import Preprocessing

MODEL = "eomt-large-640-coco-panoptic"
SEMANTIC_MODEL = "eomt-large-512-ade-semantic"


@pytest.fixture(scope="module")
def eomt(eomt_checkpoint):
    import segmentkit as sk

    return sk.load(MODEL, weights=eomt_checkpoint)


def _prep(folder) -> Preprocessing:
    return Preprocessing.from_dir(folder, {}, size_divisor=0, max_size=None)


def _segments(result: dict) -> list[tuple[int, int, int]]:
    """(segment id counted from 1, class id, area) of transformers' panoptic output (ids from 0, -1 = none)."""
    seen: dict[int, tuple[int, int, int]] = {}
    for info in result["segments_info"]:
        area = int((result["segmentation"] == info["id"]).sum())
        seen.setdefault(info["id"], (info["id"] + 1, info["label_id"], area))
    return list(seen.values())


def _ours(found_masks, class_ids) -> list[tuple[int, int, int]]:
    return [(i + 1, int(c), int(m.sum())) for i, (c, m) in enumerate(zip(class_ids, found_masks))]


@pytest.mark.parametrize(("height", "width"), [(60, 80), (90, 70)])
def test_panoptic_matches_transformers(eomt, eomt_checkpoint, eomt_reference, make_image, height, width):
    image = make_image(height, width, seed=height)
    pixels, outputs = eomt_reference.outputs(image)
    np.testing.assert_allclose(eomt_input(image, _prep(eomt_checkpoint), split=False).pixel_values.numpy(), pixels,
                               atol=1e-5)
    # random weights: queries overlap a lot, so only a low overlap threshold keeps segments
    expected = eomt_reference.post_process("panoptic", outputs, (height, width), overlap_mask_area_threshold=0.1)

    result = eomt.segment(image, task="panoptic", label_ids_to_fuse=(), overlap_mask_area_threshold=0.1)

    assert len(expected["segments_info"]) >= 3
    assert _ours(result.masks.masks, result.masks.class_ids) == _segments(expected)
    assert np.array_equal(result.label_map, expected["segmentation"].numpy() + 1)
    assert np.allclose(result.masks.scores, [s["score"] for s in expected["segments_info"]], atol=1e-6)


@pytest.mark.parametrize("fuse", [False, True])
def test_panoptic_post_processing_on_structured_logits(eomt_checkpoint, eomt_reference, synthetic, fuse):
    class_logits, mask_logits = synthetic
    size = (150, 200)
    stuff = set(range(80, 133))
    expected = eomt_reference.post_process("panoptic", eomt_reference.raw(class_logits, mask_logits), size,
                                           threshold=0.6, stuff_classes=sorted(stuff) if fuse else None)
    ours = eomt_postprocess.panoptic(class_logits, mask_logits, _prep(eomt_checkpoint), size, threshold=0.6,
                                     mask_threshold=0.5, overlap_mask_area_threshold=0.8,
                                     label_ids_to_fuse=stuff if fuse else ())
    assert len(expected["segments_info"]) >= 15
    assert _ours(ours.masks, ours.class_ids) == _segments(expected)
    assert torch.equal(ours.label_map, expected["segmentation"].to(torch.int32) + 1)
    assert ours.fused.tolist() == [fuse and c in stuff for c in ours.class_ids.tolist()]


def test_instance_matches_transformers(eomt, eomt_reference, make_image):
    image = make_image(70, 90, seed=3)
    _, outputs = eomt_reference.outputs(image)
    expected = eomt_reference.post_process("instance", outputs, image.shape[:2])  # threshold 0.8, both sides

    result = eomt.segment(image, task="instance")

    assert len(expected["segments_info"]) >= 5
    assert len(result.masks) == len(expected["segments_info"])
    assert np.all(np.diff(result.masks.scores) <= 0)  # highest score first
    # transformers paints the masks in query order into one map; paint ours in that order
    painted = np.full(image.shape[:2], -1)
    for info in expected["segments_info"]:
        k = next(i for i, (c, s) in enumerate(zip(result.masks.class_ids, result.masks.scores))
                 if c == info["label_id"] and abs(s - info["score"]) < 1e-5)
        painted[result.masks.masks[k]] = info["id"]
    assert np.array_equal(painted, expected["segmentation"].numpy())


def test_semantic_windows_match_transformers(eomt_semantic_checkpoint, eomt_semantic_reference, make_image):
    import segmentkit as sk

    reference = eomt_semantic_reference
    model = sk.load(SEMANTIC_MODEL, weights=eomt_semantic_checkpoint)
    for height, width in [(48, 96), (100, 40)]:  # two and three windows, side by side and stacked
        image = make_image(height, width, seed=width)
        inputs = reference.processor(images=image, return_tensors="pt")
        with torch.no_grad():
            outputs = reference.model(**inputs)
        ours = eomt_input(image, _prep(eomt_semantic_checkpoint), split=True).pixel_values
        assert ours.shape[0] >= 2
        np.testing.assert_allclose(ours.numpy(), inputs["pixel_values"].numpy(), atol=1e-5)
        expected = reference.post_process("semantic", outputs, (height, width)).numpy()

        result = model.segment(image)

        assert result.kind == "semantic" and len(np.unique(expected)) >= 5
        assert np.mean(result.label_map == expected) >= 0.999


def test_semantic_of_a_padded_checkpoint_matches_transformers_on_a_square_image(eomt, eomt_reference, make_image):
    # nothing is padded in a square image, so cropping the padding (ours) and not (transformers) agree
    image = make_image(80, 80, seed=7)
    _, outputs = eomt_reference.outputs(image)
    expected = eomt_reference.post_process("semantic", outputs, (80, 80)).numpy()
    result = eomt.segment(image, task="semantic")
    assert len(np.unique(expected)) >= 5
    assert np.mean(result.label_map == expected) >= 0.999
