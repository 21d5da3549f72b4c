"""Mask2Former results against transformers (processor + model + post_process_*), same weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from segmentkit_mask2former import postprocess
from segmentkit_mask2former.processing import preprocess

# Enlarged to the 256x256 input: Pillow's resize (the reference here) and torch's agree exactly.
SIZES = [(200, 240), (150, 190), (256, 220)]


def _reference_segments(result: dict) -> list[tuple[int, int, int]]:
    """(segment id, class id, area) of transformers' panoptic output, one row per segment id."""
    seen: dict[int, tuple[int, int, int]] = {}
    for info in result["segments_info"]:
        area = int((result["segmentation"] == info["id"]).sum())
        seen.setdefault(info["id"], (info["id"], info["label_id"], area))
    return list(seen.values())


def _our_segments(seg) -> list[tuple[int, int, int]]:
    return [(i + 1, int(c), int(m.sum())) for i, (c, m) in enumerate(zip(seg.masks.class_ids, seg.masks.masks))]


def _assert_same_segments(ours, expected, total):
    assert [s[:2] for s in ours] == [s[:2] for s in expected]  # same ids, same classes, same order
    for (_, _, a), (_, _, b) in zip(ours, expected):
        assert abs(a - b) <= 0.001 * max(b, 1) + 0.0005 * total  # areas within 0.1 %


def test_forward_answers_the_universal_segmentation_logits(segmenter, reference, make_image):
    # the lean forward (no auxiliary hidden states, no intermediate class logits) against the full model
    pixels, outputs = reference.outputs(make_image(200, 240, seed=3))
    class_logits, mask_logits = segmenter.raw._forward(torch.from_numpy(pixels))
    torch.testing.assert_close(class_logits, outputs.class_queries_logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(mask_logits, outputs.masks_queries_logits, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("height", "width"), SIZES)
def test_panoptic_matches_transformers(segmenter, reference, make_image, height, width):
    image = make_image(height, width, seed=height)
    pixels, outputs = reference.outputs(image)
    np.testing.assert_allclose(preprocess(image, segmenter.raw.preprocessing).numpy(), pixels, atol=1e-5)
    expected = reference.post_process("panoptic", outputs, (height, width), label_ids_to_fuse=set())

    result = segmenter.segment(image, task="panoptic", label_ids_to_fuse=())

    assert result.kind == "panoptic" and result.label_map.shape == (height, width)
    assert len(expected["segments_info"]) >= 1  # the scaled class head makes confident queries
    _assert_same_segments(_our_segments(result), _reference_segments(expected), height * width)
    assert np.mean(result.label_map == expected["segmentation"].numpy()) >= 0.999
    for i, mask in enumerate(result.masks.masks, start=1):  # segment i is masks[i - 1]
        assert np.array_equal(mask, result.label_map == i)
    assert result.id2label[0] == "person" and result.id2label[132] == "rug-merged"


def test_panoptic_fuses_requested_classes_like_transformers(segmenter, reference, make_image):
    for seed in range(10):  # the first image where some class has several segments to fuse
        image = make_image(200, 240, seed=seed)
        _, outputs = reference.outputs(image)
        plain = reference.post_process("panoptic", outputs, image.shape[:2], label_ids_to_fuse=set())
        labels = [i["label_id"] for i in plain["segments_info"]]
        repeated = {c for c in labels if labels.count(c) > 1}
        if repeated:
            break
    assert repeated
    expected = reference.post_process("panoptic", outputs, image.shape[:2], label_ids_to_fuse=repeated)

    result = segmenter.segment(image, task="panoptic", label_ids_to_fuse=tuple(repeated))

    _assert_same_segments(_our_segments(result), _reference_segments(expected), image.size // 3)
    assert result.masks.data["fused"].tolist() == [int(c) in repeated for c in result.masks.class_ids]


def test_instance_matches_transformers(segmenter, reference, make_image):
    image = make_image(150, 190, seed=200)
    _, outputs = reference.outputs(image)
    expected = reference.post_process("instance", outputs, image.shape[:2], threshold=0.3, return_binary_maps=True)
    ref = sorted(zip(expected["segments_info"], expected["segmentation"].numpy().astype(bool)),
                 key=lambda pair: -pair[0]["score"])

    result = segmenter.segment(image, task="instance", threshold=0.3)

    assert result.kind == "instance" and len(result.masks) >= 5
    assert len(result.masks) == len(ref)
    assert np.all(np.diff(result.masks.scores) <= 0)  # highest score first
    unmatched = list(ref)
    for mask, cls, score in zip(result.masks.masks, result.masks.class_ids, result.masks.scores):
        match = next(p for p in unmatched if p[0]["label_id"] == cls and abs(p[0]["score"] - score) < 1e-4)
        unmatched.remove(match)
        assert np.mean(mask == match[1]) >= 0.999
    assert result.masks.data["is_thing"].tolist() == [int(c) < 80 for c in result.masks.class_ids]


def test_semantic_end_to_end_matches_transformers(segmenter, reference, make_image):
    # Random weights make this map one class (class scores sum over near-flat queries); the
    # synthetic test below covers non-trivial maps.
    image = make_image(200, 240, seed=5)
    _, outputs = reference.outputs(image)
    expected = reference.post_process("semantic", outputs, image.shape[:2]).numpy()
    assert np.mean(segmenter.segment(image, task="semantic").label_map == expected) >= 0.999


def test_semantic_post_processing_on_structured_logits(reference, synthetic):
    class_logits, mask_logits = synthetic
    expected = reference.post_process("semantic", reference.raw(class_logits, mask_logits), (250, 333))
    ours = postprocess.semantic(class_logits, mask_logits, (250, 333))
    assert len(torch.unique(expected)) >= 6
    assert torch.mean((ours == expected).float()) >= 0.999


def _fused(segments: list[tuple[int, int, int]], fuse: set[int]) -> list[tuple[int, int, int]]:
    """Merge the segments of the classes in ``fuse`` into their first segment, renumbering ids."""
    merged: list[list[int]] = []
    first: dict[int, int] = {}
    for _, cls, area in segments:
        if cls in fuse and cls in first:
            merged[first[cls]][2] += area
            continue
        if cls in fuse:
            first[cls] = len(merged)
        merged.append([len(merged) + 1, cls, area])
    return [tuple(m) for m in merged]


def test_panoptic_post_processing_on_structured_logits(reference, synthetic):
    class_logits, mask_logits = synthetic
    size = (250, 333)
    expected = reference.post_process("panoptic", reference.raw(class_logits, mask_logits), size,
                                      threshold=0.6, label_ids_to_fuse=set())
    ours = postprocess.panoptic(class_logits, mask_logits, size, threshold=0.6, mask_threshold=0.5,
                                overlap_mask_area_threshold=0.8, label_ids_to_fuse=set())
    assert len(expected["segments_info"]) >= 20
    got = [(i + 1, int(c), int(m.sum())) for i, (c, m) in enumerate(zip(ours.class_ids, ours.masks))]
    _assert_same_segments(got, _reference_segments(expected), size[0] * size[1])


def test_stuff_fusion_on_structured_logits(reference, synthetic):
    # transformers 5.24 reuses a fused segment's id as its running counter, so the next new
    # segment can take an id already in use (two classes under one id). The plugin numbers
    # segments as Mask2Former does; the expectation is transformers' unfused result, merged here.
    class_logits, mask_logits = synthetic
    size = (250, 333)
    stuff = set(range(80, 133))
    plain = reference.post_process("panoptic", reference.raw(class_logits, mask_logits), size,
                                   threshold=0.6, label_ids_to_fuse=set())
    expected = _fused(_reference_segments(plain), stuff)
    ours = postprocess.panoptic(class_logits, mask_logits, size, threshold=0.6, mask_threshold=0.5,
                                overlap_mask_area_threshold=0.8, label_ids_to_fuse=stuff)
    got = [(i + 1, int(c), int(m.sum())) for i, (c, m) in enumerate(zip(ours.class_ids, ours.masks))]
    assert len(expected) < len(_reference_segments(plain))  # something was fused
    _assert_same_segments(got, expected, size[0] * size[1])
    assert ours.fused.tolist() == [c in stuff for c in ours.class_ids.tolist()]


def _full_size_panoptic(class_logits, mask_logits, size, threshold, mask_threshold, overlap):
    """The reference's panoptic steps with every kept query upsampled to the image size: the
    label map (segment ids, no fusion)."""
    num_labels = class_logits.shape[-1] - 1
    probs = torch.nn.functional.interpolate(mask_logits[None], size=postprocess.MASK_SIZE, mode="bilinear",
                                            align_corners=False)[0].sigmoid()
    scores, labels = class_logits.softmax(dim=-1).max(-1)
    keep = labels.ne(num_labels) & (scores > threshold)
    probs = torch.nn.functional.interpolate(probs[keep][None], size=size, mode="bilinear", align_corners=False)[0]
    probs *= scores[keep].view(-1, 1, 1)
    owner = probs.argmax(0)
    label_map = torch.zeros(size, dtype=torch.int32)
    segment = 0
    for k in range(probs.shape[0]):
        mask_k = owner == k
        area, original = mask_k.sum(), (probs[k] >= mask_threshold).sum()
        if area > 0 and original > 0 and (area / original).item() > overlap:
            segment += 1
            label_map[mask_k] = segment
    return label_map


@pytest.mark.parametrize("size", [(250, 333), (700, 500), (96, 128)])
def test_panoptic_without_full_size_maps_equals_full_size_steps(synthetic, size):
    class_logits, mask_logits = synthetic
    expected = _full_size_panoptic(class_logits, mask_logits, size, 0.6, 0.5, 0.8)
    ours = postprocess.panoptic(class_logits, mask_logits, size, threshold=0.6, mask_threshold=0.5,
                                overlap_mask_area_threshold=0.8, label_ids_to_fuse=set())
    assert int(expected.max()) >= 20
    assert torch.equal(ours.label_map, expected)  # bit-exact owner map, areas and validity checks


def test_panoptic_counts_pixels_at_or_above_the_mask_threshold(synthetic):
    # a mask threshold that drops segments by their area ratio: the counts decide which survive
    class_logits, mask_logits = synthetic
    size = (250, 333)
    expected = _full_size_panoptic(class_logits, mask_logits, size, 0.6, 0.1, 0.95)
    ours = postprocess.panoptic(class_logits, mask_logits, size, threshold=0.6, mask_threshold=0.1,
                                overlap_mask_area_threshold=0.95, label_ids_to_fuse=set())
    loose = _full_size_panoptic(class_logits, mask_logits, size, 0.6, 0.1, 0.5)
    assert 0 < int(expected.max()) < int(loose.max())  # the area test removed some segments
    assert torch.equal(ours.label_map, expected)
