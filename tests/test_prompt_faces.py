"""One prompt codec, one grouping rule, one plan: every face hands a model the same objects.

The acceptance test sends the same prompts (a box with clicks; two boxes; a text with an
exemplar box) through the CLI, IPC, a batch manifest, the Python client and a saved
session, and compares the objects each face gave the ``echo`` model (tests/prompt_echo.py,
whose masks spell out their prompts) with the objects of :func:`segmentkit.prompts.group`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_ipc_support as support  # registered by tests/conftest.py
from segmentkit.errors import OptionsError, PromptError, TaskError
from segmentkit.prompts import decode_objects, decode_prompts, encode_objects, flat, group
from segmentkit.registry import Registry
from segmentkit.types import Box, MaskPrompt, Point, Text

echo_plugin = support.load_sibling("prompt_echo")
SIZE = (60, 80)
IMAGE = np.full((*SIZE, 3), 120, dtype=np.uint8)

CASES = {
    "box and points": [Box(10, 10, 40, 40), Point(20, 20), Point(35, 35, positive=False)],
    "two boxes": [Box(10, 10, 40, 40), Box(50, 20, 70, 50)],
    "text and exemplar": [Text("a grey cat"), Box(5, 5, 30, 25)],
}
OBJECTS = {
    "box and points": [CASES["box and points"]],
    "two boxes": [[CASES["two boxes"][0]], [CASES["two boxes"][1]]],
    "text and exemplar": [CASES["text and exemplar"]],
}


def expected(objects: list[list[Any]]) -> tuple[np.ndarray, list[float]]:
    """What ``echo`` answers for ``objects``: one mask and score per object."""
    answers = [echo_plugin.echo(SIZE, prompts) for prompts in objects]
    return np.stack([m for m, _ in answers]), [s for _, s in answers]


def masks_of(document: dict[str, Any]) -> np.ndarray:
    from segmentkit.rle import decode

    return np.stack([decode(m["rle"]) for m in document["masks"]])


# --------------------------------------------------------------------------- the rule and the codec


@pytest.mark.parametrize("case", CASES)
def test_grouping_rule(case: str) -> None:
    assert group(CASES[case]) == OBJECTS[case]


def test_grouped_objects_list_prompts_by_kind() -> None:
    assert group([Point(1, 1), Text("x"), Box(0, 0, 5, 5), Point(2, 2)]) == [
        [Text("x"), Box(0, 0, 5, 5), Point(1, 1), Point(2, 2)]]


def test_grouping_refuses_boxes_with_clicks() -> None:
    with pytest.raises(PromptError, match="several boxes are several objects"):
        group([Box(0, 0, 5, 5), Box(1, 1, 6, 6), Point(2, 2)])
    with pytest.raises(PromptError, match="no prompt given"):
        group([])


def test_codec_round_trips_every_kind() -> None:
    mask = np.zeros(SIZE, dtype=bool)
    mask[3:9, 4:20] = True
    objects = [[Point(1.5, 2, positive=False), Box(1, 2, 3, 4)], [Text("a dog"), MaskPrompt(mask)]]
    encoded = encode_objects(objects)
    assert encoded[1][1]["kind"] == "mask" and set(encoded[1][1]["rle"]) == {"size", "counts"}
    decoded = decode_objects(json.loads(json.dumps(encoded)))
    assert decoded[0] == objects[0] and decoded[1][0] == objects[1][0]
    assert np.array_equal(decoded[1][1].mask, mask)


@pytest.mark.parametrize("value, needle", [
    ([[{"kind": "box", "x0": 5, "y0": 0, "x1": 1, "y1": 4}]],
     "prompts.0.0.box: invalid box: box must have x0 < x1"),
    ([[{"kind": "star"}]], "does not match any of the expected tags"),
    ([{"kind": "point", "x": 1, "y": 2}], "a list of objects"),
    ([[{"kind": "mask", "rle": {"size": [2, 2], "counts": [1, 1]}}]], "not valid COCO RLE"),
    ([[{"kind": "mask", "rle": {"size": [4000, 4000], "counts": "0"}}]], "at most"),
])
def test_codec_errors_say_where(value: Any, needle: str) -> None:
    with pytest.raises(PromptError) as info:
        decode_objects(value, max_pixels=1000 * 1000)
    assert needle in str(info.value)


def test_flat_reads_loose_values() -> None:
    assert flat(points=[(1, 2), (3, 4, False)], boxes=[(0, 0, 5, 5)], texts=["x"]) == [
        Point(1, 2), Point(3, 4, positive=False), Box(0, 0, 5, 5), Text("x")]
    assert decode_prompts([{"kind": "text", "text": "x"}]) == [Text("x")]


# --------------------------------------------------------------------------- the plan


def _registry() -> Registry:
    registry = Registry(entry_points=False)
    registry.register(echo_plugin, name="prompt_echo")
    return registry


def test_plan_checks_before_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = _registry()
    monkeypatch.setattr(echo_plugin.Echo, "__init__", lambda *a: pytest.fail("loaded too early"))
    mask = MaskPrompt(np.ones(SIZE, dtype=bool))
    with pytest.raises(PromptError, match="does not accept mask prompts"):
        registry.load(registry.plan("echo", "prompter", objects=[[mask]]))
    with pytest.raises(TaskError, match="does not do 'semantic'"):
        registry.plan("echo", "prompter", task="semantic")
    with pytest.raises(OptionsError, match="runs on numpy, not 'torch'"):
        registry.load("echo", "prompter", runtime="torch")
    plan = registry.plan("echo", "prompter", objects=OBJECTS["two boxes"])
    assert plan.card.id == "echo" and plan.role == "prompter" and len(plan.objects) == 2


def test_faces_call_no_card_check() -> None:
    core = Path(__file__).resolve().parents[1] / "core" / "segmentkit"
    faces = [*core.joinpath("cli").glob("*.py"), *core.joinpath("ipc").glob("*.py"),
             *core.joinpath("batch").glob("*.py"), core / "client.py"]
    for path in faces:
        text = path.read_text(encoding="utf-8")
        for name in ("check_task", "check_prompt_kinds", "parse_options"):
            assert name not in text, f"{path.name} calls {name}: faces plan instead"


# --------------------------------------------------------------------------- every face, the same objects


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return support.save_png(tmp_path_factory.mktemp("img") / "grey.png", IMAGE)


def _cli_args(prompts: list[Any]) -> list[str]:
    args: list[str] = []
    for p in prompts:
        if isinstance(p, Box):
            args += ["--box", ",".join(f"{v:g}" for v in p.xyxy)]
        elif isinstance(p, Point):
            args += ["--point" if p.positive else "--neg", f"{p.x:g},{p.y:g}"]
        else:
            args += ["--text", p.text]
    return args


@pytest.mark.parametrize("case", CASES)
def test_cli(case: str, image_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from segmentkit.cli.app import load_commands
    from segmentkit.cli.common import run_app
    from segmentkit.registry import default_registry

    registry = default_registry()
    registry.register(echo_plugin, name="prompt_echo")
    try:
        args = ["prompt", str(image_file), "-m", "echo", "--json", *_cli_args(CASES[case])]
        code = run_app(load_commands(), args)
    finally:
        registry.unregister("prompt_echo")
    out = capsys.readouterr()
    assert code == 0, out.err
    document = json.loads(out.out)
    masks, scores = expected(OBJECTS[case])
    assert document["prompts"] == encode_objects(OBJECTS[case])
    assert np.array_equal(masks_of(document), masks)
    assert [m["score"] for m in document["masks"]] == pytest.approx(scores)


@pytest.mark.parametrize("case", CASES)
def test_ipc(case: str, image_file: Path) -> None:
    from segmentkit.ipc.manifest import App
    from segmentkit.ipc.service import Service

    service = Service(_registry(), [App.local()])
    message = {"jsonrpc": "2.0", "id": 1, "method": "vision.mask_from_prompt",
               "params": {"image": {"path": str(image_file)}, "model": "echo",
                          "prompts": encode_objects(OBJECTS[case])}}
    try:
        response = asyncio.run(service.handle(json.dumps(message), App.local()))
    finally:
        asyncio.run(service.aclose())
    document = response["result"]
    assert document["prompts"] == encode_objects(OBJECTS[case])
    assert np.array_equal(masks_of(document), expected(OBJECTS[case])[0])


def _manifest_row(prompts: list[Any]) -> dict[str, Any]:
    """The case in a manifest's shorthand columns (boxes, points + labels, text): grouped by the rule."""
    row: dict[str, Any] = {"image": "grey.png"}
    boxes = [list(p.xyxy) for p in prompts if isinstance(p, Box)]
    points = [p for p in prompts if isinstance(p, Point)]
    if boxes:
        row["boxes"] = boxes
    if points:
        row["points"] = [[p.x, p.y] for p in points]
        row["labels"] = [int(p.positive) for p in points]
    row.update(("text", p.text) for p in prompts if isinstance(p, Text))
    return row


def test_batch(image_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from segmentkit.batch import run_batch

    monkeypatch.syspath_prepend(str(support.TESTS))
    manifest = image_file.parent / "m.jsonl"
    manifest.write_text("".join(json.dumps(_manifest_row(CASES[c])) + "\n" for c in CASES), encoding="utf-8")
    summary = run_batch([manifest], tmp_path / "out", model="echo", plugins=("prompt_echo:PLUGIN",),
                        workers=1)
    assert (summary.done, summary.failed) == (3, 0)
    records = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    by_prompts = {json.dumps(r["result"]["prompts"]): r["result"] for r in records}
    for case, objects in OBJECTS.items():
        document = by_prompts.pop(json.dumps(encode_objects(objects)))
        assert np.array_equal(masks_of(document), expected(objects)[0]), case
    assert not by_prompts


def test_python_client(image_file: Path) -> None:
    from segmentkit.client import Client

    with Client.stdio(support.serve_cmd("--stdio", "--plugin", "prompt_echo"), env=support.server_env(),
                      timeout=60) as sk:
        for case, objects in OBJECTS.items():
            got = sk.mask_from_prompt(image_file, prompts=objects, model="echo")
            masks, scores = expected(objects)
            assert np.array_equal(got.masks, masks), case
            assert got.scores.tolist() == pytest.approx(scores)
            assert got.object_ids.tolist() == list(range(1, len(objects) + 1))
        box, *points = CASES["box and points"]  # the keywords make one object, by the same rule
        got = sk.mask_from_prompt(image_file, box=box.xyxy, points=[(p.x, p.y, p.positive) for p in points],
                                  model="echo")
        assert np.array_equal(got.masks, expected(OBJECTS["box and points"])[0])


def test_saved_session(image_file: Path, tmp_path: Path) -> None:
    from segmentkit.session_files import read_session

    support.save_png(tmp_path / "clip" / "0000.png", IMAGE)
    tracker = _registry().load("echo", "tracker")
    objects = [prompts for case in CASES.values() for prompts in group(case)]
    with tracker.start(str(tmp_path / "clip")) as session:
        for number, prompts in enumerate(objects, start=1):
            session.add_prompts(0, number, prompts)
        session.save(tmp_path / "s.npz")
    assert [p for _, _, p in read_session(tmp_path / "s.npz").prompts()] == objects
    with tracker.restore(tmp_path / "s.npz") as restored:
        frame = next(iter(restored.propagate(0)))
    assert frame.object_ids == list(range(1, len(objects) + 1))
    assert np.array_equal(frame.masks.masks, expected(objects)[0])


def test_models_json_is_what_vision_models_answers(capsys: pytest.CaptureFixture[str]) -> None:
    from segmentkit.cli.app import load_commands
    from segmentkit.cli.common import run_app
    from segmentkit.ipc.manifest import App
    from segmentkit.ipc.service import Service
    from segmentkit.registry import default_registry

    registry = default_registry()
    registry.register(echo_plugin, name="prompt_echo")
    service = Service(registry, [App.local()])
    message = {"jsonrpc": "2.0", "id": 1, "method": "vision.models", "params": {"role": "prompter"}}
    try:
        code = run_app(load_commands(), ["models", "--role", "prompter", "--json"])
        answer = asyncio.run(service.handle(json.dumps(message), App.local()))["result"]["models"]
    finally:
        asyncio.run(service.aclose())
        registry.unregister("prompt_echo")
    out = capsys.readouterr()
    assert code == 0, out.err
    listed = json.loads(out.out)
    assert {e["card"]["id"] for e in listed} >= {"echo", "classic"}
    assert listed == answer  # one shape: {card: {...}, roles, plugin, distribution, version}


@pytest.mark.parametrize("module", ["segmentkit", "segmentkit.cli"])
def test_python_dash_m_runs_the_cli(module: str) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", module, "models", "--json"], capture_output=True, text=True,
                          timeout=120, env=support.server_env())
    assert proc.returncode == 0, proc.stderr
    assert "classic" in {m["card"]["id"] for m in json.loads(proc.stdout)}
