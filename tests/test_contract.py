"""The core contract, seen from every face.

A plugin that answers half-size, transposed, non-bool or NaN-boxed masks
(``tests/cli_fixtures/skbad.py``, distribution ``skbad``) is refused by the Python API,
the CLI (``prompt``, ``segment``, ``track``), the IPC service and batch with one
:class:`PluginContractError` naming the distribution, and nothing is written for it. And
one image through ``segment --json``, a batch record and ``vision.segment`` gives one
document.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import segmentkit
from PIL import Image
from segmentkit import Box, Point, formats
from segmentkit.batch import run_batch
from segmentkit.errors import OptionsError, PluginContractError
from segmentkit.ipc.errors import ErrorCode
from segmentkit.ipc.manifest import App
from segmentkit.ipc.service import Service
from segmentkit.registry import Registry

FIXTURES = Path(__file__).parent / "cli_fixtures"
SAMPLE = Path(segmentkit.__file__).parent / "samples" / "chelsea.png"
FLAWS = ("half", "transposed", "nonbool", "nanbox")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A folder on which ``skbad`` is an installed distribution with a segmentkit entry point."""
    root = tmp_path_factory.mktemp("site")
    shutil.copy(FIXTURES / "skbad.py", root / "skbad.py")
    info = root / "skbad-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: skbad\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[segmentkit]\nskbad = skbad\n")
    return root


@pytest.fixture
def registry(site, monkeypatch) -> Registry:
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("SEGMENTKIT_LOAD_PLUGINS", "classic,skbad")
    return Registry()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clip")
    for i in range(3):
        Image.fromarray(np.full((40, 60, 3), 40 * i, np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def refused(exc: PluginContractError, flaw: str) -> None:
    assert exc.distribution == "skbad" and exc.plugin == "skbad" and exc.model == f"bad-{flaw}"
    assert "skbad" in str(exc) and f"bad-{flaw}" in str(exc)


def cli(site: Path, tmp_path: Path, *args: object) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTKIT_")}
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")])),
               SEGMENTKIT_LOAD_PLUGINS="classic,skbad", SEGMENTKIT_OFFLINE="1", COLUMNS="200")
    script = Path(sys.executable).with_name("segmentkit")
    command = [str(script)] if script.exists() else [shutil.which("segmentkit") or "segmentkit"]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=120, check=False)


# --------------------------------------------------------------------------- Python API


@pytest.mark.parametrize("flaw", FLAWS)
def test_python_api_refuses_every_flaw_in_every_role(registry, clip, flaw) -> None:
    image = np.asarray(Image.open(SAMPLE).convert("RGB"))
    prompter = registry.load(f"bad-{flaw}", role="prompter")
    embedding = prompter.embed(image)
    for attempt in (lambda: prompter.predict(embedding, [Point(10, 10)]),
                    lambda: prompter.predict_objects(embedding, [[Box(1, 1, 9, 9)], [Point(5, 5)]]),
                    lambda: registry.load(f"bad-{flaw}", role="segmenter").segment(image)):
        with pytest.raises(PluginContractError) as info:
            attempt()
        refused(info.value, flaw)
    with registry.load(f"bad-{flaw}", role="tracker").start(str(clip)) as session:
        with pytest.raises(PluginContractError) as info:
            session.add_prompts(0, 1, [Point(5, 5)])
        refused(info.value, flaw)
        with pytest.raises(PluginContractError):
            next(session.propagate())


def test_handles_check_inputs_once_and_take_declared_options(registry) -> None:
    classic = registry.load("classic", role="segmenter")
    with pytest.raises(OptionsError, match="takes no per-call options"):
        classic.segment(SAMPLE, threshold=0.5)
    prompter = registry.load("bad-half", role="prompter")
    with pytest.raises(segmentkit.errors.PromptError, match="outside"):  # checked before the plugin runs
        prompter.predict(prompter.embed(SAMPLE), [Point(9999, 1)])


# --------------------------------------------------------------------------- CLI


@pytest.mark.parametrize("flaw", ["half", "nanbox"])
def test_cli_exits_1_naming_the_distribution_and_writes_nothing(site, clip, tmp_path, flaw) -> None:
    for command in (["prompt", SAMPLE, "--point", "20,20"], ["segment", SAMPLE], ["track", clip, "--box", "0:1,1,9,9"]):
        out = tmp_path / command[0]
        proc = cli(site, tmp_path, *command, "-m", f"bad-{flaw}", "--out", out, "--json")
        assert proc.returncode == 1, (command, proc.stdout, proc.stderr)
        (line,) = proc.stderr.splitlines()
        assert line.startswith("error: plugin 'skbad' (distribution skbad) broke the segmentkit contract")
        assert f"bad-{flaw}" in line and proc.stdout == ""
        assert not [p for p in out.rglob("*") if p.is_file()], f"{command[0]} wrote files for a broken answer"


# --------------------------------------------------------------------------- IPC


@pytest.mark.parametrize("flaw", FLAWS)
def test_ipc_answers_plugin_error_with_the_plugin_in_data(registry, flaw) -> None:
    service = Service(registry, [App.local()])
    image = {"path": str(SAMPLE)}
    for method, params in (("vision.segment", {"image": image}),
                           ("vision.mask_from_prompt", {"image": image, "point": {"x": 20, "y": 20}})):
        request = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "model": f"bad-{flaw}"}}
        response = asyncio.run(service.handle(json.dumps(request), App.local()))
        error = response["error"]
        assert error["code"] == ErrorCode.PLUGIN_ERROR
        assert error["data"] == {"code": "plugin_contract", "model": f"bad-{flaw}", "plugin": "skbad",
                                 "distribution": "skbad"}
    asyncio.run(service.aclose())


# --------------------------------------------------------------------------- batch


def test_batch_records_one_error_per_image_and_writes_nothing(registry, tmp_path) -> None:
    out = tmp_path / "out"
    summary = run_batch([SAMPLE], out, model="bad-transposed", masks=True, cutouts=True, workers=1)
    assert (summary.done, summary.failed) == (0, 1)
    (error,) = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert error["error"] == "plugin_contract" and error["stage"] == "model"
    assert "distribution skbad" in error["reason"] and "bad-transposed" in error["reason"]
    assert (out / "results.jsonl").read_text() == ""
    assert not (out / "masks").exists() and not (out / "cutouts").exists()


# --------------------------------------------------------------------------- one document


def test_segment_json_batch_record_and_ipc_result_are_one_document(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTKIT_")}
    env["SEGMENTKIT_LOAD_PLUGINS"] = "classic"
    script = Path(sys.executable).with_name("segmentkit")
    proc = subprocess.run([str(script) if script.exists() else "segmentkit", "segment", str(SAMPLE), "--json"],
                          capture_output=True, text=True, env=env, timeout=120, check=True)
    from_cli = json.loads(proc.stdout)

    run_batch([SAMPLE], tmp_path / "out", model="classic", workers=1)
    (record,) = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]

    registry = Registry(allow=["classic"])
    service = Service(registry, [App.local()])
    request = {"jsonrpc": "2.0", "id": 1, "method": "vision.segment", "params": {"image": {"path": str(SAMPLE)}}}
    from_ipc = asyncio.run(service.handle(json.dumps(request), App.local()))["result"]
    asyncio.run(service.aclose())

    untimed = [{k: v for k, v in doc.items() if k != "timing"} for doc in (from_cli, record["result"], from_ipc)]
    assert untimed[0]["kind"] == "automatic" and len(untimed[0]["masks"]) > 1
    assert untimed[0]["image"] == {"width": 451, "height": 300, "path": str(SAMPLE)}
    assert untimed[0] == untimed[1] == untimed[2]
    assert all(set(doc["timing"]) >= {"model_s"} for doc in (from_cli, record["result"], from_ipc))


# --------------------------------------------------------------------------- formats


def test_a_plugin_format_joins_the_table_and_files_follow_the_umask(tmp_path) -> None:
    def npy(target: formats.Target) -> None:
        target.write(".npy", formats.masks_of(target.result).masks.tobytes())

    class Plugin:
        @segmentkit.hookimpl
        def segmentkit_formats(self):
            return [formats.OutputFormat("npy", npy, "raw mask bytes"),
                    formats.OutputFormat("json", npy, "clashes with the built-in json")]

    registry = Registry(entry_points=False)
    registry.register(Plugin(), name="npy-plugin")
    table = formats.table(registry=registry)
    assert list(table)[-1] == "npy" and table["json"] in formats.BUILTIN  # a plugin never replaces one
    with pytest.raises(OptionsError, match="unknown format gif"):
        formats.choose(["npy", "gif"], registry=registry)
    masks = segmentkit.Masks(np.eye(4, dtype=bool)[None])
    old = os.umask(0o027)
    try:
        (path,) = formats.write(formats.Target(tmp_path, "m", masks), formats.choose(["npy"], registry=registry))
    finally:
        os.umask(old)
    assert path.read_bytes() == masks.masks.tobytes()
    assert path.stat().st_mode & 0o777 == 0o640  # 0666 less the umask, not a tempfile's 0600


def test_per_image_coco_names_its_image_and_loads_in_pycocotools(tmp_path) -> None:
    from pycocotools.coco import COCO

    segmenter = segmentkit.load("classic", role="segmenter")
    from segmentkit import pipeline

    result, document = pipeline.segment(segmenter, SAMPLE, path=str(SAMPLE))
    formats.write(formats.Target(tmp_path, "chelsea", result, document.dump(), SAMPLE), formats.choose(["coco"]))
    coco = COCO(str(tmp_path / "chelsea.coco.json"))
    (image,) = coco.loadImgs(coco.getImgIds())
    assert image["file_name"] == "chelsea.png" and (image["height"], image["width"]) == (300, 451)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
    assert len(anns) == len(result.masks)
    for ann, mask in zip(anns, result.masks.masks):
        assert np.array_equal(coco.annToMask(ann).astype(bool), mask)
