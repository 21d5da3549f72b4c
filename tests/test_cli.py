"""End-to-end tests of the `segmentkit` executable (subprocesses), plus its option parsers.

Commands run against the real default plugin (`classic`) and a tiny deterministic plugin
(``tests/cli_fixtures/skfake.py``) made discoverable through a ``.dist-info`` folder on
``PYTHONPATH``, so its masks are known exactly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import segmentkit
from PIL import Image
from pycocotools import mask as coco_mask
from segmentkit.cli import common
from segmentkit.errors import PromptError
from segmentkit.types import Box, Point

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = Path(segmentkit.__file__).parent / "samples" / "chelsea.png"
FIXTURES = Path(__file__).parent / "cli_fixtures"
HEAVY = ["torch", "transformers", "onnxruntime", "cv2", "decord", "av", "skimage", "scipy",
         "starlette", "uvicorn", "ray"]
EYE_BOX = "135,85,210,150"  # the cat's left eye in the sample; the README uses it too


def _executable() -> str:
    beside = Path(sys.executable).with_name("segmentkit")
    found = str(beside) if beside.exists() else shutil.which("segmentkit")
    if not found:
        pytest.fail("the `segmentkit` console script is not installed (pip install -e .)")
    return found


def _site(root: Path, modules: list[str]) -> Path:
    """A folder that makes ``modules`` (from cli_fixtures) discoverable segmentkit plugins."""
    root.mkdir(parents=True)
    for name in modules:
        shutil.copy(FIXTURES / f"{name}.py", root / f"{name}.py")
        info = root / f"{name}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[segmentkit]\n{name} = {name}\n")
    return root


def _env(site: Path | None, tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTKIT_")}
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env.update(SEGMENTKIT_OFFLINE="1", HF_HOME=str(tmp / "hf"), COLUMNS="200", **extra)
    return env


@pytest.fixture(scope="session")
def sites(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("sites")
    return {"fake": _site(base / "fake", ["skfake"]), "broken": _site(base / "broken", ["skfake", "skbroken"]),
            "faults": _site(base / "faults", ["skfake", "skbadloader"]),
            "badcard": _site(base / "badcard", ["skfake", "skbadcard"])}


# Only these plugins load in the tests below, so a plugin elsewhere in the tree that is
# broken (and logs a warning line) cannot change what these tests see.
ALLOW = {"fake": "classic,skfake", "broken": "classic,skfake,skbroken", "faults": "classic,skfake,skbadloader",
         "badcard": "classic,skfake,skbadcard"}


@pytest.fixture
def cli(sites, tmp_path):
    """Run ``segmentkit ARGS`` with the fake plugin installed; returns CompletedProcess."""

    def run(*args: str, site: str | None = "fake", **env: str) -> subprocess.CompletedProcess:
        if site is not None:
            env.setdefault("SEGMENTKIT_LOAD_PLUGINS", ALLOW[site])
        return subprocess.run(
            [_executable(), *map(str, args)], capture_output=True, text=True, cwd=tmp_path, check=False,
            env=_env(sites[site] if site else None, tmp_path, **env), timeout=120,
        )

    return run


def one_error_line(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    """Assert the process failed with ``code`` and exactly one ``error:`` line, no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    return lines[0]


def decode(entry: dict) -> np.ndarray:
    rle = entry["rle"]
    return coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)


# --------------------------------------------------------------------------- discovery commands


@pytest.mark.parametrize("command", [["models"], ["models", "--json"], ["plugins"], ["plugins", "--json"]])
def test_listing_commands_import_no_model_code(command, sites, tmp_path) -> None:
    code = (
        "import sys\nfrom segmentkit.cli import main\n"
        f"try:\n    main({command!r})\nexcept SystemExit as exc:\n    code = exc.code\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "sys.stderr.write(f'RESULT {code} {heavy}\\n')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          env=_env(sites["fake"], tmp_path), timeout=120)
    assert "RESULT 0 []" in proc.stderr, proc.stderr


def test_models_table_and_json(cli) -> None:
    table = cli("models")
    assert table.returncode == 0, table.stderr
    for text in ("classic", "fake-prompter", "fake-semantic", "skfake 0.1", "nobody/fake-semantic"):
        assert text in table.stdout
    records = {r["card"]["id"]: r for r in json.loads(cli("models", "--json").stdout)}
    assert records["fake-prompter"]["roles"] == ["prompter"]
    assert records["fake-prompter"]["card"]["prompt_kinds"] == ["point", "box"]
    assert records["fake-semantic"]["card"]["weights"]["repo_id"] == "nobody/fake-semantic"
    assert (records["fake-semantic"]["distribution"], records["fake-semantic"]["version"]) == ("skfake", "0.1")
    assert records["classic"]["distribution"] == "segmentkit-classic"
    prompters = {r["card"]["id"] for r in json.loads(cli("models", "--role", "prompter", "--json").stdout)}
    assert {"classic", "fake-prompter", "fake-buggy"} <= prompters and "fake-semantic" not in prompters
    semantic = [r["card"]["id"] for r in json.loads(cli("models", "--task", "semantic", "--json").stdout)]
    assert "fake-semantic" in semantic and "classic" not in semantic
    assert "role" in one_error_line(cli("models", "--role", "painter"))


def test_plugins_lists_versions_and_problems(cli) -> None:
    proc = cli("plugins", "--json", site="broken")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    plugins = {p["name"]: p for p in doc["plugins"]}
    assert plugins["skfake"] == {"name": "skfake", "distribution": "skfake", "version": "0.1"}
    assert plugins["classic"]["distribution"] == "segmentkit-classic"
    assert [(p["plugin"], p["stage"]) for p in doc["problems"]] == [("skbroken", "import")]
    assert "broken on purpose" in doc["problems"][0]["error"]
    table = cli("plugins", site="broken")
    assert table.returncode == 0 and "plugin problems" in table.stdout and "skbroken" in table.stdout
    # A broken plugin does not stop the others: the fake model still works.
    assert cli("models", "--json", site="broken").returncode == 0


def test_plugins_check_reports_plugin_faults_and_exits_1(cli) -> None:
    assert cli("plugins", "--check", "--json").returncode == 0  # classic and skfake are sound
    proc = cli("plugins", "--check", "--json", site="faults")
    assert proc.returncode == 1, proc.stderr
    assert "plugin problem(s) found" in proc.stderr
    problems = {(p["plugin"], p["stage"], *p["models"]): p["error"] for p in json.loads(proc.stdout)["problems"]}
    assert set(problems) == {("skfake", "duplicate-id", "fake-prompter"),
                             ("skbadloader", "duplicate-id", "fake-prompter"),
                             ("skbadloader", "loader", "bad-class"), ("skbadloader", "loader", "bad-module"),
                             ("skbadloader", "loader", "bad-dependency")}
    assert "no attribute 'NoSuchClass'" in problems[("skbadloader", "loader", "bad-class")]
    assert "pip install not_installed_dep_xyz" in problems[("skbadloader", "loader", "bad-dependency")]
    assert "skbadloader (plugin 'skbadloader')" in problems[("skbadloader", "loader", "bad-module")]
    table = cli("plugins", "--check", site="faults")
    assert table.returncode == 1 and "NoSuchClass" in table.stdout and "duplicate-id" in table.stdout


def test_plugins_check_says_what_it_verified(cli) -> None:
    sound = cli("plugins", "--check")
    assert sound.returncode == 0, sound.stderr
    summary = [line for line in sound.stdout.splitlines() if line.startswith("checked ")]
    assert re.fullmatch(r"checked 2 plugin\(s\), \d+ model\(s\): all \d+ loaders import and have their role's "
                        r"methods; options classes are strict and their defaults valid; cards valid; every card's "
                        r"roles match the hooks that return it", *summary), sound.stdout
    assert "checked " not in cli("plugins").stdout  # only --check verifies anything


def test_a_card_missing_a_role_its_hook_returns_is_one_line(cli) -> None:
    proc = cli("plugins", "--check", "--json", site="badcard")
    assert proc.returncode == 1, proc.stderr
    [problem] = json.loads(proc.stdout)["problems"]
    assert (problem["plugin"], problem["stage"]) == ("skbadcard", "segmentkit_trackers")
    assert problem["error"] == ("invalid ModelSpec: spec role 'tracker' is not in card.roles ('prompter',) of model "
                                "'badcard-colour': a card must list every role a hook returns it for")
    table = cli("plugins", "--check", site="badcard")
    assert table.returncode == 1 and "checked " not in table.stdout
    assert "pydantic" not in table.stdout + table.stderr and "input_value" not in table.stdout + table.stderr


def test_plugin_faults_exit_1_user_errors_exit_2(cli, tmp_path) -> None:
    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(image)
    segment = ["segment", image, "--json", "--model"]

    def error_line(model: str, code: int) -> str:  # after the one warning line about the duplicate id
        proc = cli(*segment, model, site="faults")
        assert proc.returncode == code and "Traceback" not in proc.stderr, proc.stderr
        warning, error = proc.stderr.splitlines()
        assert warning.startswith("warning: ") and "fake-prompter" in warning and error.startswith("error: ")
        return error

    for model, text in [("bad-class", "no attribute 'NoSuchClass'"),
                        ("bad-module", "no module named 'skbadloader.modle'"),
                        ("fake-prompter", "registered by both skbadloader")]:
        line = error_line(model, 1)
        assert text in line and "(plugin 'skbadloader')" in line and "pip install" not in line
    assert "pip install not_installed_dep_xyz" in error_line("bad-dependency", 2)
    assert "fake-semantic" in error_line("fake-semantc", 2)  # a user's typo
    fine = cli(*segment, "fine-segmenter", site="faults")  # the plugin's sound model is unaffected
    assert fine.returncode == 0 and json.loads(fine.stdout), fine.stderr
    assert "fake-semantic" in {r["card"]["id"] for r in json.loads(cli("models", "--json", site="faults").stdout)}


def test_pull(cli) -> None:
    offline = one_error_line(cli("pull", "fake-semantic"))
    assert "nobody/fake-semantic" in offline and "segmentkit pull" in offline and "--weights" in offline
    weightless = cli("pull", "classic")
    assert weightless.returncode == 0 and "needs no weights" in weightless.stderr
    assert "did you mean 'fake-semantic'" in one_error_line(cli("pull", "fake-semantik"))


# --------------------------------------------------------------------------- prompt


def test_prompt_box_writes_exact_mask(cli, tmp_path) -> None:
    out = tmp_path / "out"
    proc = cli("prompt", SAMPLE, "--box", "40,30,100,90", "-m", "fake-prompter", "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    expected = np.zeros((300, 451), bool)
    expected[30:90, 40:100] = True
    assert doc["kind"] == "prompt" and doc["model"]["id"] == "fake-prompter"
    assert doc["image"] == {"path": str(SAMPLE), "width": 451, "height": 300}
    assert doc["prompts"] == [[{"kind": "box", "x0": 40.0, "y0": 30.0, "x1": 100.0, "y1": 90.0}]]
    (mask,) = doc["masks"]
    np.testing.assert_array_equal(decode(mask), expected)
    assert mask["bbox"] == [40, 30, 100, 90] and mask["area"] == 60 * 60
    assert mask["quality"] == {"iou_pred": pytest.approx(0.8), "stability": pytest.approx(0.5)}
    assert sorted(p.name for p in out.iterdir()) == ["chelsea.json", "chelsea.mask-0.png", "chelsea.overlay.png"]
    assert json.loads((out / "chelsea.json").read_text()) == doc
    np.testing.assert_array_equal(np.asarray(Image.open(out / "chelsea.mask-0.png")) == 255, expected)
    overlay = np.asarray(Image.open(out / "chelsea.overlay.png"))
    changed = (overlay != np.asarray(Image.open(SAMPLE).convert("RGB"))).any(axis=2)
    assert changed.sum() > 0.9 * expected.sum() and not (changed & ~expected).any()


def test_prompt_points_negatives_multimask_and_batches(cli) -> None:
    proc = cli("prompt", SAMPLE, "--point", "200,150", "--neg", "200,130", "--multimask",
               "-m", "fake-prompter", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [m["score"] for m in doc["masks"]] == pytest.approx([0.9, 0.8, 0.7])
    yy, xx = np.mgrid[:300, :451]
    for radius, entry in zip((10, 20, 30), doc["masks"]):
        disk = (xx - 200) ** 2 + (yy - 150) ** 2 <= radius**2
        neg = (xx - 200) ** 2 + (yy - 130) ** 2 <= radius**2
        np.testing.assert_array_equal(decode(entry), disk & ~neg)
    (prompt_set,) = doc["prompts"]  # clicks are one object
    assert {p["positive"] for p in prompt_set} == {True, False}
    two = json.loads(cli("prompt", SAMPLE, "--box", "0,0,10,10", "--box", "20,20,40,40",
                         "-m", "fake-prompter", "--json").stdout)
    assert [m["object_id"] for m in two["masks"]] == [1, 2]
    assert [[p["kind"] for p in s] for s in two["prompts"]] == [["box"], ["box"]]  # a set per object
    assert [m["area"] for m in two["masks"]] == [100, 400]


def test_prompt_with_default_classic_model(cli, tmp_path) -> None:
    proc = cli("prompt", SAMPLE, "--box", EYE_BOX, "--out", tmp_path / "o", "--format", "overlay,json,cutout")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "o" / "chelsea.json").read_text())
    assert doc["model"] == {"id": "classic", "revision": None, "device": "cpu", "runtime": "numpy", "precision": "fp32"}
    mask = decode(doc["masks"][0])
    x0, y0, x1, y1 = map(int, EYE_BOX.split(","))
    inside = np.zeros_like(mask)
    inside[y0:y1, x0:x1] = True
    assert 0.4 * inside.sum() < mask.sum() and not (mask & ~inside).any()
    cut = np.asarray(Image.open(tmp_path / "o" / "chelsea.cutout-0.png"))
    np.testing.assert_array_equal(cut[..., 3] > 0, mask)
    assert "chelsea (451x300)" in cli("prompt", SAMPLE, "--point", "265,240").stdout.replace(".png", "")


def test_readme_quick_start_command_works(cli, tmp_path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```(?:bash|sh)\n(.*?)```", section, flags=re.DOTALL)
    assert len(commands) == 2 and all(c.count("\n") == 1 for c in commands), commands
    assert commands[1].strip() == "pip install -r requirements-test.txt && python -m pytest"
    demo = commands[0].split("&&")[1].split()
    assert demo[:2] == ["segmentkit", "prompt"]
    args = [str(ROOT / a) if a.startswith("core/") else a for a in demo[1:]]
    args[args.index("--out") + 1] = str(tmp_path / "readme-out")
    proc = cli(*args, site=None)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(tmp_path / "readme-out" / "chelsea.overlay.png").size == (451, 300)


# --------------------------------------------------------------------------- segment


def test_segment_semantic_many_images(cli, tmp_path) -> None:
    copy = tmp_path / "sub" / "chelsea.png"
    copy.parent.mkdir()
    shutil.copy(SAMPLE, copy)
    out = tmp_path / "seg"
    proc = cli("segment", SAMPLE, copy, "-m", "fake-semantic", "--out", out, "--json",
               "--format", "overlay,png,json,coco")
    assert proc.returncode == 0, proc.stderr
    docs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [d["image"]["path"] for d in docs] == [str(SAMPLE), str(copy)]
    grey = np.asarray(Image.open(SAMPLE).convert("RGB")).mean(axis=2)
    expected = np.digitize(grey, [85, 170])
    for stem, doc in zip(("chelsea", "chelsea-2"), docs):
        assert doc["kind"] == "semantic" and doc["labels"] == {"0": "dark", "1": "mid", "2": "bright"}
        labels = np.asarray(Image.open(out / f"{stem}.labels.png"))
        np.testing.assert_array_equal(labels, expected)
        for entry in doc["masks"]:
            np.testing.assert_array_equal(decode(entry), expected == entry["class_id"])
        coco = json.loads((out / f"{stem}.coco.json").read_text())
        assert {c["name"] for c in coco["categories"]} == {"dark", "mid", "bright"}
        assert (out / f"{stem}.overlay.png").exists()
    assert "does not do 'panoptic'" in one_error_line(cli("segment", SAMPLE, "-m", "fake-semantic",
                                                         "--task", "panoptic"))


def test_segment_json_reports_the_model_block(cli) -> None:
    proc = cli("segment", SAMPLE, "--json", site=None)
    assert proc.returncode == 0, proc.stderr
    model = json.loads(proc.stdout)["model"]
    assert model["id"] == "classic" and model["device"] == "cpu"  # "auto" resolved: no GPU for numpy
    assert model == {"id": "classic", "revision": None, "device": "cpu", "runtime": "numpy", "precision": "fp32"}


def test_segment_with_default_classic_model(cli, tmp_path) -> None:
    proc = cli("segment", SAMPLE, "--out", tmp_path / "c")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "c" / "chelsea.json").read_text())
    assert doc["model"] == {"id": "classic", "revision": None, "device": "cpu", "runtime": "numpy", "precision": "fp32"}
    assert doc["kind"] == "automatic" and len(doc["masks"]) > 3
    masks = np.stack([decode(m) for m in doc["masks"]])
    assert (masks.sum(axis=0) <= 1).all()  # regions do not overlap


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def bad_files(tmp_path) -> dict[str, Path]:
    data = SAMPLE.read_bytes()
    files = {"text": b"not an image at all\n", "truncated": data[: len(data) // 2], "empty": b""}
    paths = {}
    for name, content in files.items():
        paths[name] = tmp_path / f"{name}.png"
        paths[name].write_bytes(content)
    return paths


@pytest.mark.parametrize("case, needle", [
    ("text", "is not an image"),
    ("truncated", "corrupt or truncated"),
    ("empty", "empty (0 bytes)"),
    ("missing", "no such file"),
])
def test_bad_image_files(cli, bad_files, tmp_path, case, needle) -> None:
    path = bad_files.get(case, tmp_path / "missing.png")
    assert needle in one_error_line(cli("prompt", path, "--box", "1,1,5,5", "-m", "fake-prompter"))
    assert needle in one_error_line(cli("segment", path, "-m", "fake-semantic"))


def test_image_over_the_pixel_limit(cli) -> None:
    line = one_error_line(cli("prompt", SAMPLE, "--point", "5,5", SEGMENTKIT_MAX_PIXELS="1000"))
    assert "over the limit of 1,000" in line and "SEGMENTKIT_MAX_PIXELS" in line


@pytest.mark.parametrize("args, needle", [
    (["--point", "nan,3"], "not a finite number"),
    (["--point", "inf,3"], "not a finite number"),
    (["--point", "1,2,3"], "2 comma-separated numbers"),
    (["--point", "a,b"], "2 comma-separated numbers"),
    (["--point", "500,10"], "outside the 451x300 image"),
    (["--point", "500,10", "-m", "fake-buggy"], "outside the 451x300 image"),  # checked by the CLI
    (["--neg", "10,-1"], "outside the 451x300 image"),
    (["--box", "100,100,50,50"], "x0 < x1"),
    (["--box", "0,0,460,100"], "outside the 451x300 image"),
    (["--box", "1,2,3"], "4 comma-separated numbers"),
    ([], "no prompt given"),
    (["--text", "a cat"], "does not accept text"),
    (["--point", "5,5", "-m", "fake-promter"], "did you mean 'fake-prompter'"),
    (["--point", "5,5", "--box", "0,0,9,9", "--box", "1,1,8,8"], "several boxes are several objects"),
    (["--point", "5,5", "--format", "png,gif"], "unknown format gif"),
    (["--point", "5,5", "--runtime", "tpu"], "--runtime"),
    (["--point", "5,5", "--bogus"], "No such option: --bogus"),
    (["--point", "5,5", "--weights", "/nonexistent/dir"], "does not exist"),
])
def test_bad_prompts_and_options(cli, args, needle) -> None:
    assert needle in one_error_line(cli("prompt", SAMPLE, *args))


def test_out_is_a_file(cli, tmp_path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    assert "is a file" in one_error_line(cli("prompt", SAMPLE, "--point", "5,5", "--out", target))


def test_unexpected_errors_exit_1_with_a_hint(cli) -> None:
    line = one_error_line(cli("prompt", SAMPLE, "--point", "5,5", "-m", "fake-buggy"), code=1)
    assert "ZeroDivisionError" in line and "SEGMENTKIT_DEBUG=1" in line
    debug = cli("prompt", SAMPLE, "--point", "5,5", "-m", "fake-buggy", SEGMENTKIT_DEBUG="1")
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "1 / 0" in debug.stderr


def test_unknown_command_and_no_command(cli) -> None:
    assert "No such command" in one_error_line(cli("segmnt", SAMPLE))
    bare = cli()
    assert bare.returncode == 2 and "Usage" in bare.stdout + bare.stderr and "Traceback" not in bare.stderr


# --------------------------------------------------------------------------- parsers (in-process)


def test_prompt_parsers() -> None:
    assert common.parse_point(" 3, 4.5") == Point(3, 4.5)
    assert common.parse_point("3,4", positive=False).positive is False
    assert common.parse_box("1,2,3,4") == Box(1, 2, 3, 4)
    assert common.split_frame("7:3,4") == (7, "3,4")
    assert common.split_frame("3,4", default=2) == (2, "3,4")
    for bad in ("3,4", "-1:3,4", "x:3,4"):
        with pytest.raises(PromptError):
            common.split_frame(bad)
    with pytest.raises(PromptError, match="x0 < x1"):
        common.parse_box("3,2,1,4")


def test_load_options_passes_only_what_was_set() -> None:
    assert common.load_options() == {}
    assert common.load_options(device="cuda", precision=None, weights=Path("w")) == {
        "device": "cuda", "weights": Path("w")}
    assert common.unique_stems([Path("a/x.png"), Path("b/x.jpg"), Path("y.png")]) == ["x", "x-2", "y"]
    assert [f.name for f in common.choose_formats("PNG, json,png")] == ["png", "json"]

