"""`segmentkit batch` and `segmentkit.batch`: inputs, records, resume, errors, local engine.

Most tests run a tiny in-process plugin (``PLUGIN`` below, given to workers by import
path) whose masks are known exactly: the toy segmenter's mask is the image's bright
pixels, the toy prompter's mask is the bright pixels inside the box. RLE is checked with
pycocotools itself; the real default model ``classic`` runs the end-to-end CLI tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from segmentkit import Embedding, Masks, ModelCard, ModelOptions, ModelSpec, Segmentation, hookimpl
from segmentkit.batch import InputError, collect, run_batch
from segmentkit.batch.inputs import parse_prompts
from segmentkit.errors import (
    MissingDependencyError,
    OptionsError,
    PromptError,
    SegmentkitError,
    UnknownModelError,
)
from segmentkit.io.image import load_image
from segmentkit.testing.scenes import synthetic_scene

HERE = Path(__file__).resolve().parent
PLUGIN_PATH = "test_batch:PLUGIN"
THRESHOLD = 150
COLOR = (240, 220, 90)  # the scenes' object: channel mean 183, backgrounds are below 130
CRASH_WIDTH = 77  # toy-crash kills its worker process on images this wide
LOG_ENV = "SEGMENTKIT_BATCH_TOY_LOG"  # file the toy models append each image's first row to


# --------------------------------------------------------------------------- toy plugin


class ToyOptions(ModelOptions):
    delay: float = 0.0
    threshold: int = THRESHOLD


def signature(rgb: np.ndarray) -> str:
    """How the call log names an image: size and pixel sum."""
    return f"{rgb.shape[1]}x{rgb.shape[0]}:{int(rgb.sum())}"


def _log_call(rgb: np.ndarray) -> None:
    path = os.environ.get(LOG_ENV)
    if path:
        with open(path, "a") as handle:
            handle.write(signature(rgb) + "\n")


def bright(rgb: np.ndarray, threshold: int = THRESHOLD) -> np.ndarray:
    """The reference answer of both toy models: pixels whose channel mean is over ``threshold``."""
    return rgb.astype(np.float64).mean(axis=2) > threshold


class ToySegmenter:
    def __init__(self, card, options):
        if card.id == "toy-broken":
            raise RuntimeError("toy-broken cannot be built")
        self.card, self.options = card, options

    def segment(self, image, *, task=None):
        rgb = load_image(image)
        _log_call(rgb)
        if self.card.id == "toy-crash" and rgb.shape[1] == CRASH_WIDTH:
            os._exit(3)  # a crash in native code, as far as the pool can tell
        time.sleep(self.options.delay)
        mask = bright(rgb, self.options.threshold)
        masks = Masks(mask[None], scores=[0.75], class_ids=[1], id2label={1: "bright"})
        return Segmentation(kind="instance", image_size=rgb.shape[:2], masks=masks, id2label={1: "bright"})


class ToyPrompter:
    def __init__(self, card, options):
        self.card, self.options = card, options

    def embed(self, image):
        rgb = load_image(image)
        _log_call(rgb)
        return Embedding("toy-prompt", rgb.shape[:2], "k", data=rgb)

    def predict(self, embedding, prompts, *, multimask=False):
        rgb = embedding.data
        mask = np.zeros(rgb.shape[:2], bool)
        for p in prompts:
            if p.kind == "box":
                inside = np.zeros_like(mask)
                inside[int(p.y0):int(p.y1), int(p.x0):int(p.x1)] = True
                mask |= inside & bright(rgb)
            elif p.kind == "point":
                mask[max(int(p.y) - 1, 0):int(p.y) + 2, max(int(p.x) - 1, 0):int(p.x) + 2] = p.positive
        count = 3 if multimask else 1
        return Masks(np.repeat(mask[None], count, axis=0), scores=[0.9, 0.8, 0.7][:count])

    def predict_batch(self, embedding, prompt_sets, *, multimask=False):
        return [self.predict(embedding, s, multimask=multimask) for s in prompt_sets]


def _card(model_id, role, **kw):
    return ModelCard(id=model_id, family="toy", roles=(role,), license="MIT", runtimes=("numpy",),
                     tasks=("prompt",) if role == "prompter" else ("instance",), **kw)


PLUGIN = SimpleNamespace(
    segmentkit_segmenters=hookimpl(lambda: [
        ModelSpec(card=_card(name, "segmenter"), role="segmenter", loader="test_batch:ToySegmenter",
                  options=ToyOptions)
        for name in ("toy-seg", "toy-crash", "toy-broken")
    ]),
    segmentkit_prompters=hookimpl(lambda: [
        ModelSpec(card=_card("toy-prompt", "prompter", prompt_kinds=("point", "box")), role="prompter",
                  loader="test_batch:ToyPrompter", options=ToyOptions),
    ]),
)
for _name in ("segmentkit_segmenters", "segmentkit_prompters"):
    getattr(PLUGIN, _name).__name__ = _name


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    """Workers import the toy plugin by name (spawned processes inherit ``sys.path``)."""
    monkeypatch.syspath_prepend(str(HERE))


def toy_run(sources, out, **kw):
    kw.setdefault("model", "toy-seg")
    kw.setdefault("workers", 1)
    return run_batch(sources, out, plugins=(PLUGIN_PATH,), **kw)


# --------------------------------------------------------------------------- image set


def write_image_set(root: Path, count: int = 48) -> dict[str, np.ndarray]:
    """``count`` small seeded scenes in nested folders, plus three corrupt files."""
    images = {}
    for i in range(count):
        h, w = [(48, 64), (64, 48), (56, 56)][i % 3]
        scene = synthetic_scene((h, w), shape=("ellipse", "rectangle")[i % 2],
                                background=("plain", "textured")[i // 2 % 2], color=COLOR, seed=i)
        rel = f"{'ab'[i % 2]}/{'deep/' if i % 5 == 0 else ''}img{i:02d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(scene.image).save(root / rel)
        images[rel] = scene.image
    good = (root / next(iter(images))).read_bytes()
    (root / "bad.jpg").write_bytes(b"this is not a jpeg")
    (root / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "empty.png").write_bytes(b"")
    return images


@pytest.fixture(scope="module")
def image_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    return root, write_image_set(root)


def read_jsonl(path: Path) -> list[dict]:
    text = path.read_text() if path.exists() else ""
    assert text == "" or text.endswith("\n"), "a JSONL file must end with a complete line"
    return [json.loads(line) for line in text.splitlines()]


def by_file(records: list[dict]) -> dict[str, dict]:
    return {r["source"]["file_name"]: r for r in records}


def decode(entry: dict) -> np.ndarray:
    """A record's mask, decoded by pycocotools itself."""
    return coco_mask.decode({**entry["rle"], "counts": entry["rle"]["counts"].encode()}).astype(bool)


def comparable(record: dict) -> dict:
    return {**record, "result": {k: v for k, v in record["result"].items() if k != "timing"}}


# --------------------------------------------------------------------------- inputs


def test_folder_is_recursive_sorted_and_filtered(tmp_path, image_set):
    root, images = image_set
    items = collect([root])
    names = [i.file_name for i in items]
    assert names == sorted(names) and set(images) < set(names)
    assert {"bad.jpg", "truncated.png", "empty.png"} < set(names)
    assert all(Path(i.path).is_absolute() and i.prompts is None for i in items)
    only_deep = collect([root], glob="deep/*.png")
    assert {i.file_name for i in only_deep} == {n for n in images if "/deep/" in n}
    # hidden files and the output folder inside the source are not inputs
    (root / ".hidden.png").write_bytes(b"x")
    (root / "out").mkdir(exist_ok=True)
    (root / "out" / "m.png").write_bytes(b"x")
    names = {i.file_name for i in collect([root], exclude=[root / "out"])}
    assert ".hidden.png" not in names and "out/m.png" not in names
    (root / ".hidden.png").unlink()
    (root / "out" / "m.png").unlink()
    (root / "out").rmdir()


def test_manifests_jsonl_csv_and_list_files(tmp_path):
    (tmp_path / "sub").mkdir()
    rows = [
        {"image": "sub/a.png", "boxes": [[1, 2, 30, 40], [5, 5, 9, 9]]},
        {"image": "b.png", "points": [[10, 12], [3, 4]], "labels": [1, 0]},
        {"image": "c.png", "text": "a cat"},
        {"image": "/abs/d.png", "prompts": [[{"kind": "box", "x0": 0, "y0": 0, "x1": 8, "y1": 8},
                                             {"kind": "point", "x": 4, "y": 4}]]},
        {"image": "e.png"},
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    (tmp_path / "m.csv").write_text(
        "image,boxes,points,labels,text\n"
        'sub/a.png,"[[1, 2, 30, 40], [5, 5, 9, 9]]",,,\n'
        'b.png,,"[[10, 12], [3, 4]]","[1, 0]",\n'
        "c.png,,,,a cat\n"
    )
    jsonl, csv_items = collect([tmp_path / "m.jsonl"]), collect([tmp_path / "m.csv"])
    assert [i.prompts for i in csv_items] == [i.prompts for i in jsonl[:3]]
    assert jsonl[0].path == str(tmp_path / "sub" / "a.png") and jsonl[0].file_name == "sub/a.png"
    assert jsonl[3].path == "/abs/d.png" and jsonl[4].prompts is None
    assert [len(i.prompts) for i in jsonl[:4]] == [2, 1, 1, 1]  # each box is one object
    assert jsonl[0].prompts[1] == ({"kind": "box", "x0": 5.0, "y0": 5.0, "x1": 9.0, "y1": 9.0},)
    assert [p["positive"] for p in jsonl[1].prompts[0]] == [True, False]
    assert jsonl[2].prompts == (({"kind": "text", "text": "a cat"},),)
    assert [p["kind"] for p in jsonl[3].prompts[0]] == ["box", "point"]

    (tmp_path / "list.txt").write_text("# images\nsub/a.png\n\n/abs/x.png\n")
    assert [(i.path, i.file_name) for i in collect([tmp_path / "list.txt"])] == [
        (str(tmp_path / "sub" / "a.png"), "sub/a.png"), ("/abs/x.png", "/abs/x.png")]


@pytest.mark.parametrize("line, message", [
    ('{"image": "a.png", "box": [1, 2, 3, 4]}', "unknown field(s) box"),
    ('{"image": "a.png", "boxes": [[5, 5, 1, 1]]}', "x0 < x1"),
    ('{"image": "a.png", "points": [[1, 2]], "labels": [1, 1]}', "1 points but 2 labels"),
    ('{"image": "a.png", "boxes": [[1, "x", 3, 4]]}', "4 numbers"),
    ('{"boxes": [[1, 2, 3, 4]]}', "'image' must be"),
    ('{"image": "a.png", "prompts": [[{"kind": "mask"}]]}', "needs its mask as"),
    ("not json", "not valid JSON"),
])
def test_bad_manifest_rows_name_the_line(tmp_path, line, message):
    (tmp_path / "m.jsonl").write_text('{"image": "ok.png"}\n' + line + "\n")
    with pytest.raises(InputError, match="m.jsonl line 2") as info:
        collect([tmp_path / "m.jsonl"])
    assert message in str(info.value)


def test_prompt_shorthands():
    assert parse_prompts({"boxes": [1, 2, 3, 4]}) == parse_prompts({"boxes": [[1, 2, 3, 4]]})
    assert parse_prompts({"points": [5, 6]})[0][0] == {"kind": "point", "x": 5.0, "y": 6.0, "positive": True}
    assert parse_prompts({}) is None
    with pytest.raises(PromptError, match="without 'points'"):
        parse_prompts({"labels": [1]})


def test_unknown_source_kinds_are_refused(tmp_path):
    (tmp_path / "notes.doc").write_text("x")
    with pytest.raises(InputError, match="cannot tell what this is"):
        collect([tmp_path / "notes.doc"])
    with pytest.raises(InputError, match="no such file"):
        collect([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images found"):
        toy_run([tmp_path / "empty"], tmp_path / "out")


# --------------------------------------------------------------------------- records


def test_records_hold_masks_that_pycocotools_decodes(tmp_path, image_set):
    root, images = image_set
    summary = toy_run([root], tmp_path / "out", coco=True, masks=True, cutouts=True)
    assert (summary.total, summary.done, summary.failed, summary.skipped) == (51, 48, 3, 0)
    records = by_file(read_jsonl(tmp_path / "out" / "results.jsonl"))
    assert set(records) == set(images)
    for name, rgb in images.items():
        record, truth = records[name], bright(rgb)
        assert truth.any() and not truth.all()
        assert record["result"]["image"]["width"] == rgb.shape[1] and record["result"]["model"]["id"] == "toy-seg"
        assert record["source"]["sha256"] == hashlib.sha256((root / name).read_bytes()).hexdigest()
        (entry,) = record["result"]["masks"]
        rle = {"size": entry["rle"]["size"], "counts": entry["rle"]["counts"].encode()}
        decoded = coco_mask.decode(rle).astype(bool)
        np.testing.assert_array_equal(decoded, truth)
        ys, xs = np.nonzero(truth)
        assert entry["bbox"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]  # XYXY, exclusive
        assert entry["area"] == int(coco_mask.area(rle)) == truth.sum()
        assert (entry["label"], entry["score"]) == ("bright", 0.75)
        assert set(record["result"]["timing"]) == {"decode_s", "model_s", "total_s"}
        # the files a record lists exist and hold the same mask
        files = record["files"]
        assert len(files) == 2 and all((tmp_path / "out" / f).exists() for f in files)
        png = next(f for f in files if f.startswith("masks/"))
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / png)) > 0, truth)
        cut = np.asarray(Image.open(tmp_path / "out" / next(f for f in files if f.startswith("cutouts/"))))
        np.testing.assert_array_equal(cut[..., 3] > 0, truth)
        np.testing.assert_array_equal(cut[..., :3][truth], rgb[truth])

    coco = COCO(str(tmp_path / "out" / "coco.json"))
    assert len(coco.getImgIds()) == 48 and coco.loadCats(coco.getCatIds()) == [{"id": 1, "name": "bright"}]
    for image in coco.loadImgs(coco.getImgIds()):
        (ann,) = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
        truth = bright(images[image["file_name"]])
        np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), truth)
        ys, xs = np.nonzero(truth)
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]  # XYWH
    summary_file = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert (summary_file["done"], summary_file["failed"]) == (48, 3)


def test_bad_images_land_in_errors_and_the_run_goes_on(tmp_path, image_set):
    root, images = image_set
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(big)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{root}/a/img02.png\n{root}/bad.jpg\n{root}/truncated.png\n{root}/empty.png\n"
                       f"{big}\n{tmp_path}/missing.png\n{root}/b/img01.png\n")
    summary = toy_run([listing], tmp_path / "out", max_pixels=10_000)
    assert (summary.done, summary.failed) == (2, 5)
    errors = {Path(e["source"]["path"]).name: e for e in read_jsonl(tmp_path / "out" / "errors.jsonl")}
    assert {name: e["error"] for name, e in errors.items()} == {
        "bad.jpg": "bad_image", "truncated.png": "bad_image", "empty.png": "bad_image",
        "big.png": "image_too_large", "missing.png": "unreadable",
    }
    assert "not an image" in errors["bad.jpg"]["reason"]
    assert "corrupt or truncated" in errors["truncated.png"]["reason"]
    assert "empty" in errors["empty.png"]["reason"]
    assert "40,000 pixels" in errors["big.png"]["reason"]
    assert "No such file" in errors["missing.png"]["reason"] and errors["missing.png"]["stage"] == "read"
    assert all(e["reason"] and e["model"] == "toy-seg" for e in errors.values())


# --------------------------------------------------------------------------- resume


def test_resume_skips_done_jobs_and_drops_a_torn_line(tmp_path, image_set, monkeypatch):
    root, images = image_set
    out = tmp_path / "out"
    first = sorted(images)[:10]
    listing = tmp_path / "first.txt"
    listing.write_text("".join(f"{root / n}\n" for n in first))
    assert toy_run([listing], out).done == 10
    results = out / "results.jsonl"
    with open(results, "a") as handle:  # what a kill in the middle of a write leaves
        handle.write('{"schema": "segmentkit.result/1", "image": {"pa')

    log = tmp_path / "calls.log"
    monkeypatch.setenv(LOG_ENV, str(log))
    summary = toy_run([root], out)
    assert (summary.done, summary.skipped, summary.failed) == (38, 10, 3)
    records = read_jsonl(results)  # valid JSONL: the torn line is gone
    assert sorted(r["source"]["path"] for r in records) == sorted(str(root / n) for n in images)
    assert len({r["key"] for r in records}) == 48
    assert len(log.read_text().splitlines()) == 38  # only new images reached the model

    # a third run does nothing; other options are other jobs
    log.unlink()
    assert toy_run([root], out).skipped == 48 and not log.exists()
    again = toy_run([listing], out, load_options={"threshold": 100})
    assert again.done == 10 and len(log.read_text().splitlines()) == 10
    fresh = [r for r in read_jsonl(results) if r["options"]["load"] == {"threshold": 100}]
    assert len(fresh) == 10 and {r["key"] for r in fresh}.isdisjoint(r["key"] for r in records)


def test_same_content_under_another_path_is_not_recomputed(tmp_path, image_set, monkeypatch):
    root, _ = image_set
    src = tmp_path / "src"
    src.mkdir()
    data = (root / "a/img02.png").read_bytes()
    (src / "one.png").write_bytes(data)
    (src / "two.png").write_bytes(data)
    log = tmp_path / "calls.log"
    monkeypatch.setenv(LOG_ENV, str(log))
    assert toy_run([src], tmp_path / "out").done == 2
    (src / "three.png").write_bytes(data)
    again = toy_run([src], tmp_path / "out")
    assert (again.done, again.skipped) == (1, 2)
    records = read_jsonl(tmp_path / "out" / "results.jsonl")
    assert [r["source"]["file_name"] for r in records] == ["one.png", "two.png", "three.png"]
    assert len(log.read_text().splitlines()) == 1
    assert records[0]["result"]["masks"] == records[1]["result"]["masks"] == records[2]["result"]["masks"]
    assert records[2]["reused_from"] == str(src / "one.png")
    twice = toy_run([src, src / "one.png"], tmp_path / "out2")  # a file named twice is one image
    assert (twice.total, twice.done, twice.skipped) == (4, 3, 1)
    assert len(read_jsonl(tmp_path / "out2" / "results.jsonl")) == 3
    assert len(log.read_text().splitlines()) == 2


def test_one_run_per_output_folder(tmp_path, image_set):
    from segmentkit.jobs.writers import OutputDir

    with OutputDir(tmp_path / "out"), pytest.raises(SegmentkitError, match="another batch run"):
        toy_run([image_set[0]], tmp_path / "out")


# --------------------------------------------------------------------------- prompts


def test_manifest_prompts_reach_the_prompter(tmp_path):
    scenes = [synthetic_scene((48, 64), shape="rectangle", background="plain", color=COLOR, seed=s)
              for s in range(4)]
    rows = []
    for i, scene in enumerate(scenes):
        Image.fromarray(scene.image).save(tmp_path / f"s{i}.png")
        rows.append({"image": f"s{i}.png", "boxes": [list(scene.box), [0, 0, 8, 8]]})
    rows.append({"image": "s0.png", "points": [[20, 20], [40, 30]], "labels": [1, 0]})
    rows.append({"image": "s1.png", "boxes": [[0, 0, 999, 10]]})  # outside the image
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = toy_run([tmp_path / "m.jsonl"], tmp_path / "out", model="toy-prompt", multimask=True)
    assert (summary.done, summary.failed) == (5, 1)
    records = read_jsonl(tmp_path / "out" / "results.jsonl")
    for record, scene in zip(records[:4], scenes, strict=True):
        assert record["result"]["kind"] == "prompt" and record["role"] == "prompter"
        assert [m["object_id"] for m in record["result"]["masks"]] == [1, 1, 1, 2, 2, 2]  # 3 candidates per box
        first = decode(record["result"]["masks"][0])
        x0, y0, x1, y1 = (int(v) for v in scene.box)
        expected = np.zeros(scene.size, bool)
        expected[y0:y1, x0:x1] = bright(scene.image)[y0:y1, x0:x1]
        np.testing.assert_array_equal(first, expected)
        assert record["result"]["prompts"][0][0]["kind"] == "box"
    points = records[4]
    assert points["result"]["prompts"] == [[{"kind": "point", "x": 20.0, "y": 20.0, "positive": True},
                                  {"kind": "point", "x": 40.0, "y": 30.0, "positive": False}]]
    mask = decode(points["result"]["masks"][0])
    assert mask[20, 20] and not mask[30, 40] and mask.sum() == 9
    (error,) = read_jsonl(tmp_path / "out" / "errors.jsonl")
    assert error["error"] == "bad_prompt" and "outside" in error["reason"]


def test_the_model_is_checked_before_any_work(tmp_path, image_set):
    root, _ = image_set
    (tmp_path / "m.jsonl").write_text('{"image": "x.png", "text": "a cat"}\n')
    with pytest.raises(PromptError, match="does not accept text"):
        toy_run([tmp_path / "m.jsonl"], tmp_path / "o1", model="toy-prompt")
    with pytest.raises(UnknownModelError, match="toy-seg"):  # prompts need a prompter
        toy_run([tmp_path / "m.jsonl"], tmp_path / "o2", model="toy-seg")
    with pytest.raises(UnknownModelError, match="did you mean"):
        toy_run([root], tmp_path / "o3", model="toy-segg")
    with pytest.raises(OptionsError, match="nope"):
        toy_run([root], tmp_path / "o4", load_options={"nope": 1})
    with pytest.raises(SegmentkitError, match="could not be loaded: RuntimeError: toy-broken"):
        toy_run([root], tmp_path / "o5", model="toy-broken")
    assert not any((tmp_path / d).exists() for d in ("o1", "o2", "o3", "o4"))


def test_missing_ray_names_the_install_line(tmp_path, image_set, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails
    with pytest.raises(MissingDependencyError, match=r"pip install 'segmentkit\[ray\]'"):
        toy_run([image_set[0]], tmp_path / "out", engine="ray")


# --------------------------------------------------------------------------- local engine


def test_worker_pool_gives_the_same_records_as_in_process(tmp_path, image_set):
    root, _ = image_set
    one = toy_run([root], tmp_path / "one", workers=1, coco=True)
    two = toy_run([root], tmp_path / "two", workers=2, coco=True)
    assert (one.done, one.failed) == (two.done, two.failed) == (48, 3)
    a = by_file(read_jsonl(tmp_path / "one" / "results.jsonl"))
    b = by_file(read_jsonl(tmp_path / "two" / "results.jsonl"))
    assert a.keys() == b.keys() and all(comparable(a[k]) == comparable(b[k]) for k in a)
    errors = lambda d: sorted((e["source"]["file_name"], e["reason"]) for e in read_jsonl(d / "errors.jsonl"))  # noqa: E731
    assert errors(tmp_path / "one") == errors(tmp_path / "two")
    assert (tmp_path / "one" / "coco.json").read_text() == (tmp_path / "two" / "coco.json").read_text()


def test_a_dying_worker_fails_only_its_images(tmp_path, image_set):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        width = CRASH_WIDTH if i == 3 else 40 + i
        Image.fromarray(np.full((30, width, 3), 40 * i, np.uint8)).save(src / f"i{i}.png")
    summary = toy_run([src], tmp_path / "out", model="toy-crash", workers=2)
    errors = read_jsonl(tmp_path / "out" / "errors.jsonl")
    assert "i3.png" in {e["source"]["file_name"] for e in errors}
    assert {e["error"] for e in errors} == {"worker_died"}
    assert summary.done + summary.failed == 6 and summary.done >= 6 - 4  # at most 2 * workers in flight
    again = toy_run([src], tmp_path / "out", model="toy-crash", workers=2)  # failed images are retried
    assert again.skipped == summary.done and again.done + again.failed == summary.failed


# --------------------------------------------------------------------------- command line


def cli(*args, env=None, **kw):
    code = "import sys; from segmentkit.cli import main; main(sys.argv[1:])"
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
               **(env or {})}
    return subprocess.Popen([sys.executable, "-c", code, "batch", *map(str, args)], env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_cli_resumes_after_sigkill_without_redoing_images(tmp_path, image_set):
    root, images = image_set
    out = tmp_path / "out"
    results = out / "results.jsonl"
    args = [root, "--out", out, "--model", "toy-seg", "-O", "delay=0.15", "--plugin", PLUGIN_PATH,
            "--workers", 2, "--no-progress"]
    first = cli(*args, env={LOG_ENV: str(tmp_path / "run1.log")}, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while (not results.exists() or results.read_text().count("\n") < 6) and time.monotonic() < deadline:
            assert first.poll() is None, first.communicate()
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        with contextlib.suppress(ProcessLookupError):  # workers left behind, if any
            os.killpg(first.pid, signal.SIGKILL)
    done_before = read_jsonl(results)
    assert 6 <= len(done_before) < 48, "the run was not killed mid-way"

    second = cli(*args, "--json", env={LOG_ENV: str(tmp_path / "run2.log")})
    stdout, stderr = second.communicate(timeout=120)
    assert second.returncode == 0, stderr
    summary = json.loads(stdout)
    counts = (summary["skipped"], summary["done"], summary["failed"])
    assert counts == (len(done_before), 48 - len(done_before), 3)
    assert f"{48 - len(done_before)} done, {len(done_before)} skipped, 3 failed" in stderr
    records = read_jsonl(results)
    assert sorted(r["source"]["file_name"] for r in records) == sorted(images)  # each image once
    redone = set((tmp_path / "run2.log").read_text().splitlines())
    before = {signature(images[r["source"]["file_name"]]) for r in done_before}
    assert len(redone) == 48 - len(done_before) and redone.isdisjoint(before)


def test_cli_with_classic_box_manifest(tmp_path):
    scenes = [synthetic_scene((64, 80), shape="rectangle", background="textured", seed=s) for s in range(3)]
    rows = []
    for i, scene in enumerate(scenes):
        Image.fromarray(scene.image).save(tmp_path / f"s{i}.png")
        x0, y0, x1, y1 = scene.box
        rows.append({"image": f"s{i}.png", "boxes": [[x0 - 3, y0 - 3, x1 + 3, y1 + 3]]})
    rows.append({"image": "s0.png"})  # no prompt: automatic masks
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = cli(tmp_path / "m.jsonl", "--out", tmp_path / "out", "--coco", "--masks", "--json", "--workers", 1)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr
    assert json.loads(stdout)["done"] == 4
    records = read_jsonl(tmp_path / "out" / "results.jsonl")
    model = {"id": "classic", "revision": None, "device": "cpu", "runtime": "numpy", "precision": "fp32"}
    assert [r["result"]["model"] for r in records] == [model] * 4
    for record, scene in zip(records[:3], scenes, strict=True):
        (entry,) = record["result"]["masks"]
        mask = decode(entry)
        box = record["result"]["prompts"][0][0]
        x0, y0, x1, y1 = box["x0"], box["y0"], box["x1"], box["y1"]
        outside = mask.copy()
        outside[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))] = False
        assert mask.any() and not outside.any()  # inside the prompt box
        assert (mask & scene.mask).sum() / (mask | scene.mask).sum() > 0.8  # and it is the object
    assert records[3]["result"]["kind"] == "automatic" and len(records[3]["result"]["masks"]) >= 2
    coco = json.loads((tmp_path / "out" / "coco.json").read_text())
    assert len(coco["images"]) == 4 and len(coco["annotations"]) == sum(len(r["result"]["masks"]) for r in records)


def test_cli_bad_input_is_one_line(tmp_path):
    run = cli(tmp_path / "missing", "--out", tmp_path / "out")
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 2
    assert stderr.strip().splitlines() == [f"error: {tmp_path / 'missing'}: no such file or folder"]


def test_batch_command_imports_no_ray_or_torch():
    code = ("import importlib, sys; importlib.import_module('segmentkit.cli.app').load_commands(); "
            "import segmentkit.jobs.runner, segmentkit.jobs.local; "
            "print([m for m in ('ray', 'torch', 'pyarrow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
