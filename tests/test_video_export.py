"""Video export formats, each read back with its own reader (PIL, pycocotools, PyAV) or by hand."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco
from segmentkit.errors import ExportError, MissingDependencyError
from segmentkit.io.video import open_video
from segmentkit.render import overlay
from segmentkit.types import FrameMasks, Masks
from segmentkit.video_export import TrackExport, VideoInfo, davis_palette

H, W, N = 24, 32, 4


def _square(x0: int, y0: int, side: int = 8) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    mask[y0:y0 + side, x0:x0 + side] = True
    return mask


def frame_masks(i: int) -> FrameMasks:
    """Object 3 walks right; object 7 (class 2) overlaps it on frame 1 and is gone (empty) on frame 2."""
    a = _square(2 + 4 * i, 4)
    b = _square(2 + 4 * i + 4, 6) if i != 2 else np.zeros((H, W), bool)
    return FrameMasks(i, Masks(np.stack([a, b]), scores=[0.9, 0.5 + i / 10], object_ids=[3, 7],
                               class_ids=[1, 2], id2label={1: "car", 2: "person"}))


@pytest.fixture
def frames_dir(tmp_path):
    folder = tmp_path / "walk"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(N):
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(folder / f"img_{i + 10}.png")
    return folder


def export_all(tmp_path, frames_dir, formats, order=(0, 3, 2, 1), registry=None):
    video = open_video(frames_dir)
    info = VideoInfo.of(video, frames_dir)
    with TrackExport(tmp_path / "out", formats, info, frames=video, meta={"model": "m"}, registry=registry) as export:
        for i in order:  # any order: e.g. forwards, then backwards
            export.add(frame_masks(i))
    return export, video


def test_davis_pngs_read_back_as_object_ids(tmp_path, frames_dir):
    export, _ = export_all(tmp_path, frames_dir, ("davis",))
    folder = tmp_path / "out" / "davis" / "walk"
    assert sorted(p.name for p in folder.iterdir()) == [f"img_{i + 10}.png" for i in range(N)]  # input stems
    for i in range(N):
        picture = Image.open(folder / f"img_{i + 10}.png")
        assert picture.mode == "P"
        labels = np.array(picture)  # how the DAVIS 2017 evaluation reads a result
        fm = frame_masks(i)
        expected = np.zeros((H, W), np.uint8)
        expected[fm.masks.masks[0]] = 3
        expected[fm.masks.masks[1]] = 7  # the later object on top where they overlap
        assert np.array_equal(labels, expected)
        palette = picture.getpalette()
        assert palette[3:12] == [128, 0, 0, 0, 128, 0, 128, 128, 0]  # DAVIS: 1 dark red, 2 green, 3 olive
        assert palette[7 * 3:8 * 3] == [128, 128, 128]
    assert export.closed and export.close() == [folder]


def test_youtube_vis_json(tmp_path, frames_dir):
    export_all(tmp_path, frames_dir, ("youtube-vis",), order=(0, 1, 2))  # frame 3 never tracked
    doc = json.loads((tmp_path / "out" / "youtube-vis.json").read_text())
    assert doc["videos"] == [{"id": 1, "name": "walk", "width": W, "height": H, "length": N,
                              "file_names": [f"walk/img_{i + 10}.png" for i in range(N)]}]
    assert doc["categories"] == [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}]
    first, second = doc["annotations"]
    assert (first["object_id"], first["category_id"], second["object_id"], second["category_id"]) == (3, 1, 7, 2)
    assert first["score"] == pytest.approx(0.9) and second["score"] == pytest.approx(0.55)  # frames 0 and 1
    for k, annotation in enumerate(doc["annotations"]):
        assert annotation["video_id"] == 1 and annotation["iscrowd"] == 0
        assert len(annotation["segmentations"]) == N
        for i, rle in enumerate(annotation["segmentations"]):
            if i == 3 or (k == 1 and i == 2):  # not tracked / empty: null
                assert rle is None and annotation["areas"][i] is None and annotation["bboxes"][i] is None
                continue
            mask = coco.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)
            truth = frame_masks(i).masks.masks[k]
            assert np.array_equal(mask, truth)
            ys, xs = np.nonzero(truth)
            assert annotation["areas"][i] == truth.sum()
            assert annotation["bboxes"][i] == [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]


def test_mots_text(tmp_path, frames_dir):
    export_all(tmp_path, frames_dir, ("mots",))
    lines = (tmp_path / "out" / "mots.txt").read_text().splitlines()
    fields = [line.split(" ") for line in lines]
    assert [f[:5] for f in fields] == [  # frame id class h w, frames in order, object 7 absent on frame 2
        ["0", "1003", "1", "24", "32"], ["0", "2007", "2", "24", "32"],
        ["1", "1003", "1", "24", "32"], ["1", "2007", "2", "24", "32"],
        ["2", "1003", "1", "24", "32"],
        ["3", "1003", "1", "24", "32"], ["3", "2007", "2", "24", "32"],
    ]
    for frame, object_id, _, h, w, counts in fields:
        mask = coco.decode({"size": [int(h), int(w)], "counts": counts.encode()}).astype(bool)
        fm = frame_masks(int(frame))
        a, b = fm.masks.masks
        expected = b if object_id == "2007" else a & ~b  # MOTS masks never overlap: object 7 is on top
        assert np.array_equal(mask, expected)


def test_overlay_mp4_reads_back_tinted(tmp_path, frames_dir):
    av = pytest.importorskip("av")
    _, video = export_all(tmp_path, frames_dir, ("overlay",), order=(2, 0, 1))
    with av.open(str(tmp_path / "out" / "overlay.mp4")) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 3 and decoded[0].shape == (H, W, 3)  # frames 0, 1, 2 in order
    for i, picture in enumerate(decoded):
        fm = frame_masks(i)
        expected = np.asarray(overlay(video[i], fm.masks))
        inside = fm.masks.masks.any(axis=0)
        error = np.abs(picture.astype(int) - expected).mean(axis=2)
        tint = np.abs(expected.astype(int) - video[i]).mean(axis=2)
        assert error[inside].mean() < tint[inside].mean() / 2  # the tint, not the plain frame


def test_json_document_and_object_ids_each_format_holds(tmp_path, frames_dir):
    export, _ = export_all(tmp_path, frames_dir, ("json",))
    doc = json.loads((tmp_path / "out" / "track.json").read_text())
    assert doc == export.document
    assert doc["schema"] == "segmentkit.track/1" and doc["model"] == "m" and doc["objects"] == [3, 7]
    assert [f["frame_index"] for f in doc["frames"]] == list(range(N))
    video = VideoInfo("v", (H, W), N, tuple(map(str, range(N))))
    with pytest.raises(ExportError, match="DAVIS|davis holds object ids 1-255"):
        TrackExport(tmp_path / "x", ("davis",), video, objects=[256])
    with pytest.raises(ExportError, match="object id 0 is the background"):
        TrackExport(tmp_path / "x", ("mots",), video, objects=[0])
    with pytest.raises(ExportError, match="mots holds object ids 1-999"):
        TrackExport(tmp_path / "x", ("mots",), video).add(FrameMasks(0, Masks(np.ones((1, H, W)), object_ids=[1000])))
    with pytest.raises(ExportError, match="unknown video format"):
        TrackExport(tmp_path / "x", ("gif",), video)
    TrackExport(tmp_path / "x", ("json", "youtube-vis"), video, objects=[0, 5000])  # fine in documents


def test_overlay_without_pyav_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now fails as if PyAV were missing
    video = VideoInfo("v", (H, W), N, tuple(map(str, range(N))))
    with pytest.raises(MissingDependencyError, match=r"pip install 'segmentkit\[video\]'"):
        TrackExport(tmp_path / "x", ("davis", "overlay"), video)


def test_davis_palette_is_the_voc_colour_map():
    palette = np.array(davis_palette()).reshape(256, 3)
    assert palette[0].tolist() == [0, 0, 0] and palette[255].tolist() == [224, 224, 192]
    assert palette[15].tolist() == [192, 128, 128] and palette[20].tolist() == [0, 64, 128]


def test_a_plugin_video_format_is_written(tmp_path, frames_dir):
    """A plugin's ``OutputFormat(media="video")`` (a FrameWriter class) is chosen and written like
    the built-in ones; an unknown name lists both."""
    import segmentkit
    from segmentkit.formats import OutputFormat
    from segmentkit.registry import default_registry
    from segmentkit.video_export import FrameWriter

    class AreaWriter(FrameWriter):
        """areas.txt: each frame's mask areas."""

        name = "areas"

        def __init__(self, target):
            super().__init__(target)
            self.areas = {}

        def add(self, frame):
            self.areas[frame.frame_index] = [int(m.sum()) for m in frame.masks.masks]

        def close(self, document):
            return self._put("areas.txt", "".join(f"{i} {self.areas[i]}\n" for i in sorted(self.areas)).encode())

    class Plugin:
        @segmentkit.hookimpl
        def segmentkit_formats(self):
            return [OutputFormat("areas", AreaWriter, "mask areas per frame", "video")]

    registry = default_registry()
    name = registry.register(Plugin(), name="areas-format")
    try:
        export, _ = export_all(tmp_path, frames_dir, ("areas", "mots"), registry=registry)
        with pytest.raises(ExportError, match="choose from .*areas"):
            TrackExport(tmp_path / "other", ("gif",), export.video, registry=registry)
        with pytest.raises(ExportError, match="unknown video format areas"):  # another registry's format
            TrackExport(tmp_path / "other", ("areas",), export.video)
    finally:
        registry.unregister(name)
    lines = (tmp_path / "out" / "areas.txt").read_text().splitlines()
    assert lines == [f"{i} {[int(m.sum()) for m in frame_masks(i).masks.masks]}" for i in range(N)]
    assert (tmp_path / "out" / "mots.txt").exists()
