"""render.py and export.py: overlays, cut-outs, label maps, JSON / COCO against pycocotools."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from segmentkit import export, formats, render
from segmentkit.types import FrameMasks, Masks, Segmentation

H, W = 48, 64


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.fixture
def masks() -> Masks:
    rng = np.random.default_rng(1)
    m = np.zeros((3, H, W), bool)
    m[0, 5:20, 10:30] = True
    m[1, 25:40, 35:60] = True
    m[1, 30:33, 40:45] = False  # a hole
    m[2] = rng.random((H, W)) > 0.7  # ragged
    return Masks(
        m, scores=[0.9, 0.8, 0.25], class_ids=[3, 7, 3], object_ids=[11, 12, 13],
        id2label={3: "cat", 7: "dog"},
        data={"iou_pred": np.array([0.91, 0.5, np.nan]), "stability": np.array([0.97, 0.96, 0.1]),
              "low_res_logits": np.zeros((3, 8, 8), np.float32)},
    )


def coco_decode(rle: dict) -> np.ndarray:
    return coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)


# --------------------------------------------------------------------------- JSON


def test_json_rle_round_trips_through_pycocotools(masks: Masks) -> None:
    doc = json.loads(json.dumps(export.to_json(masks, {"path": "x.png"})))
    assert doc["image"] == {"path": "x.png", "width": W, "height": H}
    assert doc["kind"] == "masks"
    assert len(doc["masks"]) == 3
    for i, entry in enumerate(doc["masks"]):
        assert isinstance(entry["rle"]["counts"], str)
        np.testing.assert_array_equal(coco_decode(entry["rle"]), masks.masks[i])
        compressed = {"size": entry["rle"]["size"], "counts": entry["rle"]["counts"].encode()}
        assert entry["area"] == int(coco_mask.area(compressed)) == int(masks.masks[i].sum())
        x, y, w, h = coco_mask.toBbox(compressed)
        assert entry["bbox"] == [x, y, x + w, y + h]  # XYXY, x1/y1 exclusive
    assert [e["label"] for e in doc["masks"]] == ["cat", "dog", "cat"]
    assert [e["class_id"] for e in doc["masks"]] == [3, 7, 3]
    assert [e["object_id"] for e in doc["masks"]] == [11, 12, 13]
    assert doc["masks"][2]["score"] == pytest.approx(0.25)
    assert doc["labels"] == {"3": "cat", "7": "dog"}


def test_json_keeps_every_quality_field(masks: Masks) -> None:
    doc = export.to_json(masks)
    q = [e["quality"] for e in doc["masks"]]
    assert q[0] == {"iou_pred": pytest.approx(0.91), "stability": pytest.approx(0.97)}
    assert all(type(v) is float for v in q[0].values())
    assert q[2]["iou_pred"] is None  # NaN is not JSON; null, never dropped
    assert doc["arrays"] == {"low_res_logits": [3, 8, 8]}  # per-mask arrays listed with shape
    json.dumps(doc, allow_nan=False)


def test_json_of_mask_list_keeps_extra_fields(masks: Masks) -> None:
    doc = export.to_json(list(masks))
    assert [e["quality"]["stability"] for e in doc["masks"]] == pytest.approx([0.97, 0.96, 0.1])
    assert [e["label"] for e in doc["masks"]] == ["cat", "dog", "cat"]


def test_json_semantic_panoptic_and_track(masks: Masks) -> None:
    label_map = np.zeros((H, W), np.int32)
    label_map[:, W // 2:] = 2
    sem = Segmentation.from_label_map(label_map, {0: "sky", 2: "road"})
    doc = export.to_json(sem, model={"id": "m", "device": "cpu"})
    assert doc["kind"] == "semantic"
    assert doc["model"] == {"id": "m", "revision": None, "device": "cpu", "runtime": None, "precision": None}
    assert [e["label"] for e in doc["masks"]] == ["sky", "road"]
    np.testing.assert_array_equal(coco_decode(doc["masks"][1]["rle"]), label_map == 2)

    track = export.to_json(FrameMasks(5, masks[:2]))
    assert track["kind"] == "track" and track["frame_index"] == 5
    assert [e["object_id"] for e in track["masks"]] == [11, 12]

    with pytest.raises(ValueError, match="width"):
        export.to_json(masks, {"width": W + 1})


def test_coco_export_loads_in_pycocotools(masks: Masks) -> None:
    doc = json.loads(json.dumps(export.to_coco(masks, {"file_name": "a.png"}, image_id=7)))
    coco = COCO()
    coco.dataset = doc
    coco.createIndex()
    assert coco.getImgIds() == [7]
    assert {c["id"]: c["name"] for c in doc["categories"]} == {3: "cat", 7: "dog"}
    for i, ann_id in enumerate(coco.getAnnIds(imgIds=[7])):
        ann = coco.loadAnns([ann_id])[0]
        np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), masks.masks[i])
        rle = {"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"].encode()}
        np.testing.assert_allclose(ann["bbox"], coco_mask.toBbox(rle))  # XYWH here only
        assert ann["area"] == int(masks.masks[i].sum())
        assert ann["object_id"] == masks.object_ids[i]
        assert ann["stability"] == pytest.approx(masks.data["stability"][i])
    plain = export.to_coco(Masks(masks.masks[:1]))
    assert plain["categories"] == [{"id": 1, "name": "object"}]
    assert plain["annotations"][0]["category_id"] == 1


# --------------------------------------------------------------------------- render


def test_overlay_changes_only_masked_pixels(image: np.ndarray, masks: Masks) -> None:
    for outlines in (True, False):
        out = np.asarray(render.overlay(image, masks, alpha=0.4, outlines=outlines))
        assert out.shape == image.shape
        changed = (out != image).any(axis=2)
        assert not (changed & ~masks.masks.any(axis=0)).any()


def test_overlay_blends_the_mask_colour(image: np.ndarray) -> None:
    m = np.zeros((1, H, W), bool)
    m[0, 10:30, 10:40] = True
    out = np.asarray(render.overlay(image, Masks(m), alpha=0.25, outlines=True)).astype(float)
    interior = np.zeros((H, W), bool)
    interior[11:29, 11:39] = True  # inside the 1-pixel outline
    expected = image.astype(float) * 0.75 + np.asarray(render.color(0), float) * 0.25
    np.testing.assert_allclose(out[interior], np.rint(expected[interior]), atol=0.5)
    edge = m[0] & ~interior
    assert (out[edge] == render.color(0)).all()


def test_overlay_colours_are_distinct_and_stable() -> None:
    colours = [render.color(i) for i in range(200)]
    assert len(set(colours[:20])) == 20
    assert len(set(colours)) > 150
    assert render.color(5) == colours[5]


def test_overlay_legend_for_fixed_labels(image: np.ndarray) -> None:
    seg_masks = np.zeros((2, H, W), bool)
    seg_masks[0, 30:, :] = True
    seg_masks[1, 20:30, 40:] = True
    label_map = np.zeros((H, W), np.int32)
    label_map[seg_masks[0]] = 1
    label_map[seg_masks[1]] = 2
    pan = Segmentation(kind="panoptic", image_size=(H, W), label_map=label_map,
                       masks=Masks(seg_masks, class_ids=[0, 1]), id2label={0: "road", 1: "car"})
    with_legend = np.asarray(render.overlay(image, pan))
    without = np.asarray(render.overlay(image, pan, legend=False))
    outside = ~seg_masks.any(axis=0)
    assert not ((without != image).any(axis=2) & outside).any()
    legend = (with_legend != without).any(axis=2)
    ys, xs = np.nonzero(legend)
    assert legend.any() and ys.min() == 0 and xs.min() == 0  # a box in the top-left corner
    assert legend[ys.min():ys.max() + 1, xs.min():xs.max() + 1].mean() > 0.5
    assert not np.array_equal(np.asarray(render.overlay(image, pan, legend=True)), without)
    inst = Masks(seg_masks)
    assert np.array_equal(np.asarray(render.overlay(image, inst)),
                          np.asarray(render.overlay(image, inst, legend=False)))


def test_overlay_accepts_arrays_and_mask_objects(image: np.ndarray, masks: Masks) -> None:
    a = np.asarray(render.overlay(image, masks.masks))
    b = np.asarray(render.overlay(image, Masks(masks.masks)))
    np.testing.assert_array_equal(a, b)
    single = np.asarray(render.overlay(image, masks[0]))
    assert ((single != image).any(axis=2) <= masks.masks[0]).all()
    with pytest.raises(ValueError, match="image is"):
        render.overlay(image, np.zeros((H + 1, W), bool))


def test_cutout_alpha_is_the_mask(image: np.ndarray, masks: Masks) -> None:
    picture = render.cutout(image, masks[1])
    assert picture.mode == "RGBA"
    rgba = np.asarray(picture)
    np.testing.assert_array_equal(rgba[..., 3], np.where(masks.masks[1], 255, 0))
    np.testing.assert_array_equal(rgba[..., :3], image)
    union = np.asarray(render.cutout(image, masks))[..., 3]
    np.testing.assert_array_equal(union > 0, masks.masks.any(axis=0))


def test_palette_label_map() -> None:
    label_map = np.arange(H * W).reshape(H, W) % 256
    picture = render.palette_label_map(label_map)
    assert picture.mode == "P"
    np.testing.assert_array_equal(np.asarray(picture), label_map)
    assert tuple(picture.getpalette()[3 * 9: 3 * 10]) == render.color(9)
    with pytest.raises(ValueError, match="0-255"):
        render.palette_label_map(np.full((2, 2), 256))


# --------------------------------------------------------------------------- files


def test_write_outputs_every_format(tmp_path, image: np.ndarray, masks: Masks) -> None:
    document = export.to_json(masks, {"path": "p"})
    target = formats.Target(tmp_path, "pic", masks, document, image)
    paths = formats.write(target, formats.table().values())
    names = sorted(p.name for p in paths)
    assert names == sorted([
        "pic.overlay.png", "pic.mask-0.png", "pic.mask-1.png", "pic.mask-2.png", "pic.json",
        "pic.rle.json", "pic.coco.json", "pic.cutout-0.png", "pic.cutout-1.png", "pic.cutout-2.png",
        "pic.labels.png",
    ])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    for i in range(3):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / f"pic.mask-{i}.png")) == 255,
                                      masks.masks[i])
    doc = json.loads((tmp_path / "pic.json").read_text())
    assert doc == json.loads(json.dumps(export.to_json(masks, {"path": "p"})))
    rles = json.loads((tmp_path / "pic.rle.json").read_text())
    np.testing.assert_array_equal(coco_decode(rles[2]), masks.masks[2])


def test_label_map_png_round_trips(tmp_path) -> None:
    small = np.random.default_rng(2).integers(0, 150, (H, W)).astype(np.int32)
    seg = Segmentation.from_label_map(small, {})
    formats.write(formats.Target(tmp_path, "s", seg), formats.choose(["png"]))
    read = Image.open(tmp_path / "s.labels.png")
    assert read.mode == "P"
    np.testing.assert_array_equal(np.asarray(read), small)
    big = small * 3
    big[0, 0] = 1000
    (tmp_path / "b.png").write_bytes(formats.label_map_png(big))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.png")), big)


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch) -> None:
    target = tmp_path / "a.json"
    formats.atomic_write(target, b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        formats.atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
