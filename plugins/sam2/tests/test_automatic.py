"""Automatic mask generation against a straightforward reference built on transformers.

The reference decodes the grid with transformers' ``Sam2Model`` and filters with
transformers' own mask-generation helpers (``filter_masks``: predicted IoU, stability,
boxes, crop edges, RLE), then runs a one-box-at-a-time NMS and a one-mask-at-a-time
small-region cleanup (sam2's algorithm). Thresholds are lowered: on random weights the
defaults keep nothing (TESTING.md).
"""

from __future__ import annotations

import numpy as np
import pytest
import segmentkit
import torch
from reference import greedy_nms, normalize_coordinates, post_process, processor_functions
from scipy import ndimage
from segmentkit.testing.conformance import SegmenterContract
from segmentkit_sam2 import automatic
from segmentkit_sam2.boxes import masks_to_boxes_inclusive, nms
from segmentkit_sam2.options import Sam2AutomaticOptions
from segmentkit_sam2.postprocess import stability_score
from segmentkit_sam2.preprocess import preprocess_image
from segmentkit_sam2.regions import remove_small_regions

MODEL_ID = "sam2.1-hiera-tiny"
SIZE = 256


@pytest.fixture(scope="module")
def small_reference(sam2_weights_small):
    from transformers import Sam2Model

    return Sam2Model.from_pretrained(sam2_weights_small).eval()


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    from segmentkit.testing.scenes import synthetic_scene

    return synthetic_scene((240, 320), seed=5).image


def _reference_small_regions(mask: np.ndarray, min_area: int, mode: str) -> tuple[np.ndarray, bool]:
    """sam2's ``remove_small_regions`` for one mask (8-connectivity)."""
    holes = mode == "holes"
    labels, n = ndimage.label(holes ^ mask, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    small = [i + 1 for i, s in enumerate(sizes) if s < min_area]
    if not small:
        return mask, False
    fill = [0] + small
    if not holes:
        fill = [i for i in range(n + 1) if i not in fill] or [int(np.argmax(sizes)) + 1]
    return np.isin(labels, fill), True


def reference_generate(model, image: np.ndarray, o: Sam2AutomaticOptions) -> dict[str, np.ndarray]:
    f = processor_functions()
    h, w = image.shape[:2]
    crops, layers = f._generate_per_layer_crops(o.crop_n_layers, o.crop_overlap_ratio, (h, w))
    grids = [f._build_point_grid(int(o.points_per_side / o.crop_n_points_downscale_factor**i))
             for i in range(o.crop_n_layers + 1)]
    masks, scores, boxes, crop_of = [], [], [], []
    for crop, layer in zip(crops, layers):
        x0, y0, x1, y1 = crop
        sub = image[y0:y1, x0:x1]
        ch, cw = sub.shape[:2]
        with torch.inference_mode():
            emb = model.get_image_embeddings(preprocess_image(sub, SIZE))
        points = normalize_coordinates(grids[layer] * torch.tensor([cw, ch]), (ch, cw), SIZE)
        c_masks, c_scores, c_boxes = [], [], []
        for s in range(0, len(points), o.points_per_batch):
            batch = points[s:s + o.points_per_batch]
            with torch.inference_mode():
                out = model(image_embeddings=emb, input_points=batch[None, :, None, :],
                            input_labels=torch.ones(1, len(batch), 1, dtype=torch.long), multimask_output=True)
            logits = post_process(out.pred_masks[0], (ch, cw))
            rles, sc, bx = f.filter_masks(None, logits, out.iou_scores[0], (h, w), list(crop), o.pred_iou_thresh,
                                          o.stability_score_thresh, o.mask_threshold, o.stability_score_offset)
            c_masks += [f._rle_to_mask(r).numpy() for r in rles]
            c_scores += sc.tolist()
            c_boxes += bx.tolist()
        for i in greedy_nms(torch.tensor(c_boxes).reshape(-1, 4), torch.tensor(c_scores), o.box_nms_thresh):
            masks.append(c_masks[i]), scores.append(c_scores[i]), boxes.append(c_boxes[i]), crop_of.append(crop)
    if len(crops) > 1:
        area = torch.tensor([(c[2] - c[0]) * (c[3] - c[1]) for c in crop_of], dtype=torch.float32)
        keep = greedy_nms(torch.tensor(boxes).reshape(-1, 4), 1.0 / area, o.crop_nms_thresh)
        masks, scores, boxes = [masks[i] for i in keep], [scores[i] for i in keep], [boxes[i] for i in keep]
    if o.min_mask_region_area > 0 and masks:
        cleaned, unchanged = [], []
        for m in masks:
            m, a = _reference_small_regions(m, o.min_mask_region_area, "holes")
            m, b = _reference_small_regions(m, o.min_mask_region_area, "islands")
            cleaned.append(m), unchanged.append(float(not (a or b)))
        new_boxes = f._batched_mask_to_box(torch.from_numpy(np.stack(cleaned))).float()
        keep = greedy_nms(new_boxes, torch.tensor(unchanged), max(o.box_nms_thresh, o.crop_nms_thresh))
        masks = [cleaned[i] for i in keep]
        scores = [scores[i] for i in keep]
        boxes = [new_boxes[i].tolist() if unchanged[i] == 0.0 else boxes[i] for i in keep]
    return {"masks": np.array(masks, dtype=bool).reshape(-1, h, w), "scores": np.array(scores, np.float32),
            "boxes": np.array(boxes, np.float32).reshape(-1, 4)}


SETTINGS = {
    "no-nms": dict(points_per_side=8, points_per_batch=24, pred_iou_thresh=0.5, stability_score_thresh=0.4,
                   box_nms_thresh=1.0),
    "crops-and-cleanup": dict(points_per_side=4, points_per_batch=64, pred_iou_thresh=0.45,
                              stability_score_thresh=0.3, crop_n_layers=1, crop_nms_thresh=1.0,
                              box_nms_thresh=1.0, min_mask_region_area=40),
    "cleanup-then-nms": dict(points_per_side=8, points_per_batch=64, pred_iou_thresh=0.5,
                             stability_score_thresh=0.4, box_nms_thresh=0.7, min_mask_region_area=300),
    "defaults": dict(points_per_side=6),
}


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_matches_reference(sam2_weights_small, small_reference, image, setting) -> None:
    options = dict(SETTINGS[setting], weights=sam2_weights_small)
    segmenter = segmentkit.Registry().load(MODEL_ID, role="segmenter", **options)
    seg = segmenter.segment(image)
    ref = reference_generate(small_reference, image, segmenter.options)
    got = seg.masks
    assert seg.kind == "automatic" and seg.image_size == image.shape[:2]
    assert len(got) == len(ref["masks"]), f"{len(got)} masks, reference {len(ref['masks'])}"
    if setting == "no-nms":
        assert 10 <= len(got) < 8 * 8 * 3, "filters kept all or almost nothing: the test would prove little"
    for k in range(len(got)):
        union = np.logical_or(got.masks[k], ref["masks"][k]).sum()
        assert union == 0 or np.logical_and(got.masks[k], ref["masks"][k]).sum() / union >= 0.99
    np.testing.assert_allclose(got.scores, ref["scores"], atol=1e-3)
    inclusive = got.boxes.copy()
    inclusive[:, 2:] -= 1  # ours: last pixel exclusive; transformers / sam2: inclusive
    np.testing.assert_array_equal(inclusive, ref["boxes"])
    np.testing.assert_array_equal(got.data["area"], got.masks.sum(axis=(1, 2)))
    assert all(r["size"] == list(image.shape[:2]) for r in got.to_coco_rle())


def test_chunked_processing_gives_the_same_masks(sam2_weights_small, image, monkeypatch) -> None:
    options = dict(SETTINGS["crops-and-cleanup"], weights=sam2_weights_small)
    segmenter = segmentkit.Registry().load(MODEL_ID, role="segmenter", **options)
    whole = segmenter.segment(image)
    monkeypatch.setattr(automatic, "_CHUNK_BYTES", 1)  # one mask at a time everywhere
    chunked = segmenter.segment(image)
    assert np.array_equal(whole.masks.masks, chunked.masks.masks)
    assert np.array_equal(whole.masks.scores, chunked.masks.scores)


def test_nms_equals_greedy_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    for trial in range(20):
        n = int(torch.randint(1, 120, (1,), generator=gen))
        xy = torch.rand(n, 2, generator=gen) * 50
        wh = torch.rand(n, 2, generator=gen) * 40 + 1
        boxes = torch.cat([xy, xy + wh], 1).round()
        scores = torch.randint(0, 5, (n,), generator=gen).float() if trial % 2 else torch.rand(n, generator=gen)
        for threshold in (0.0, 0.3, 0.7):
            assert nms(boxes, scores, threshold, block=7).tolist() == greedy_nms(boxes, scores, threshold)
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []


def test_boxes_and_stability_equal_transformers_helpers() -> None:
    f = processor_functions()
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 30, 40, generator=gen) * 3
    logits[2] = -10  # an empty mask
    masks = logits > 0
    assert torch.equal(masks_to_boxes_inclusive(masks), f._batched_mask_to_box(masks).float())
    ours = stability_score(logits, 0.0, 1.0)
    theirs = f._compute_stability_score(logits, 0.0, 1)
    ok = ~torch.isnan(theirs)
    assert torch.allclose(ours[ok], theirs[ok]) and torch.all(ours[~ok] == 0)


@pytest.mark.parametrize("mode", ["holes", "islands"])
def test_small_regions_equal_per_mask_reference(mode) -> None:
    rng = np.random.default_rng(0)
    masks = rng.random((8, 40, 50)) < np.linspace(0.1, 0.9, 8)[:, None, None]
    masks[3] = False
    for area in (2, 9, 300):
        out, changed = remove_small_regions(masks, area, mode)
        for k in range(len(masks)):
            ref, ref_changed = _reference_small_regions(masks[k], area, mode)
            assert np.array_equal(out[k], ref) and changed[k] == ref_changed


class TestSam2Automatic(SegmenterContract):
    level = "geometry"  # random weights
    task = "automatic"

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, sam2_weights_small):
        return segmentkit.Registry().load(MODEL_ID, role="segmenter", weights=sam2_weights_small,
                                          points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)


def test_crop_masks_are_placed_in_the_image() -> None:
    rng = np.random.default_rng(0)
    crop_masks = torch.from_numpy(rng.random((3, 20, 30)) < 0.4)
    crop = (7, 5, 37, 25)  # x0, y0, x1, y1 inside a 40 x 50 image
    decoded = automatic._decode(automatic._encode(crop_masks, crop, (40, 50)))
    expected = np.zeros((3, 40, 50), dtype=bool)
    expected[:, 5:25, 7:37] = crop_masks.numpy()
    assert np.array_equal(decoded, expected)
