"""`segmentkit batch --engine ray`: Ray Data gives the same output folder as the local engine.

One local Ray (2 CPUs) serves the tests of this module; the command-line test, which
starts and stops a Ray of its own, runs first so two never run at once. The model is the
real default, ``classic``: automatic masks for images without prompts, GrabCut for the
box prompts of a manifest.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from pycocotools import mask as coco_mask
from segmentkit.batch import run_batch
from segmentkit.errors import SegmentkitError
from segmentkit.jobs.ray_engine import RayOptions
from segmentkit.testing.scenes import synthetic_scene

ray = pytest.importorskip("ray")


def write_manifest(root: Path, count: int = 48) -> tuple[Path, dict[str, object]]:
    """``count`` seeded scenes (every other one with a box prompt) and three corrupt files."""
    rows, scenes = [], {}
    for i in range(count):
        h, w = [(48, 64), (64, 48), (56, 56)][i % 3]
        scene = synthetic_scene((h, w), shape=("ellipse", "rectangle")[i % 2],
                                background=("plain", "textured")[i // 2 % 2], seed=i)
        name = f"{'ab'[i % 2]}/img{i:02d}.png"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(scene.image).save(root / name)
        scenes[name] = scene
        rows.append({"image": name, **({"boxes": [list(scene.box)]} if i % 2 else {})})
    first = (root / rows[0]["image"]).read_bytes()
    for name, data in (("bad.jpg", b"not a jpeg"), ("truncated.png", first[:200]), ("empty.png", b"")):
        (root / name).write_bytes(data)
        rows.append({"image": name})
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest, scenes


def read_jsonl(path: Path) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def outputs(out: Path) -> tuple[dict, list, dict]:
    """Records (timing left out) by path, errors, and every other file's bytes."""
    records = {r["source"]["path"]: {**r, "result": {k: v for k, v in r["result"].items() if k != "timing"}}
               for r in read_jsonl(out / "results.jsonl")}
    errors = sorted((e["source"]["path"], e["error"], e["reason"]) for e in read_jsonl(out / "errors.jsonl"))
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.png")}
    files["coco.json"] = (out / "coco.json").read_bytes()
    return records, errors, files


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_manifest(tmp_path_factory.mktemp("ray-images"))


def test_cli_starts_and_stops_its_own_ray(tmp_path, data):
    manifest, _ = data
    small = manifest.with_name("small.jsonl")
    small.write_text("".join(manifest.read_text().splitlines(keepends=True)[:3]))
    code = "import sys; from segmentkit.cli import main; main(sys.argv[1:])"
    run = subprocess.run(
        [sys.executable, "-c", code, "batch", str(small), "--out", str(tmp_path / "out"), "--engine", "ray",
         "--workers", "1", "--batch-size", "2", "--json", "--no-progress"],
        capture_output=True, text=True, timeout=240, env={**os.environ, "RAY_ADDRESS": ""},
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert (summary["done"], summary["failed"], summary["engine"]) == (3, 0, "ray")
    assert len(read_jsonl(tmp_path / "out" / "results.jsonl")) == 3
    assert "Traceback" not in run.stderr


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


def test_ray_and_local_engines_write_the_same_outputs(tmp_path, data, ray_session):
    manifest, scenes = data
    options = dict(model="classic", coco=True, masks=True)
    local = run_batch([manifest], tmp_path / "local", workers=1, **options)
    remote = run_batch([manifest], tmp_path / "ray", engine="ray", workers=2,
                       ray=RayOptions(batch_size=4), **options)
    assert (local.done, local.failed) == (remote.done, remote.failed) == (48, 3)
    assert remote.engine == "ray"
    records, errors, files = outputs(tmp_path / "local")
    assert outputs(tmp_path / "ray") == (records, errors, files)
    assert {Path(e[0]).name: e[1] for e in errors} == {
        "bad.jpg": "bad_image", "truncated.png": "bad_image", "empty.png": "bad_image"}

    # the outputs are right, not only equal: prompted masks are the boxed objects
    for record in records.values():
        scene = scenes[record["source"]["file_name"]]
        if record["result"]["prompts"] is None:
            assert record["result"]["kind"] == "automatic" and record["result"]["masks"]
            continue
        (entry,) = record["result"]["masks"]
        mask = coco_mask.decode({**entry["rle"], "counts": entry["rle"]["counts"].encode()}).astype(bool)
        x0, y0, x1, y1 = (int(v) for v in scene.box)
        outside = mask.copy()
        outside[y0:y1, x0:x1] = False
        assert not outside.any()
        assert (mask & scene.mask).sum() / (mask | scene.mask).sum() > 0.8


def test_ray_resumes_a_local_run(tmp_path, data, ray_session):
    manifest, _ = data
    part = manifest.with_name("part.jsonl")
    part.write_text("".join(manifest.read_text().splitlines(keepends=True)[:20]))
    assert run_batch([part], tmp_path / "out", workers=1).done == 20
    summary = run_batch([manifest], tmp_path / "out", engine="ray", workers=2)
    assert (summary.skipped, summary.done, summary.failed) == (20, 28, 3)
    records = read_jsonl(tmp_path / "out" / "results.jsonl")
    assert len(records) == 48 and len({r["key"] for r in records}) == 48


def test_a_pool_larger_than_local_ray_is_refused(tmp_path, data, ray_session):
    manifest, _ = data
    with pytest.raises(SegmentkitError, match="3 Ray workers x 1 CPU need 3 CPU, the cluster has 2"):
        run_batch([manifest], tmp_path / "out", engine="ray", workers=3)
    with pytest.raises(SegmentkitError, match="need 2 GPU"):
        run_batch([manifest], tmp_path / "out2", engine="ray", workers=2,
                  ray=RayOptions(gpus_per_worker=1))
    assert (tmp_path / "out" / "results.jsonl").read_text() == ""
