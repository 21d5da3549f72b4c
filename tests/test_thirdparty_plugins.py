"""Third-party plugins, installed for real: discovery, loading, the conformance suite, isolation.

The distributions under ``tests/fixtures`` are pip-installed into a private folder and
used from subprocesses with that folder on ``PYTHONPATH``, the way a user's
``pip install segmentkit-foo`` is: ``segmentkit-example`` (the worked example of
``docs/writing-a-plugin.md``), one plugin that fails to import and one whose hook raises.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
DOC = ROOT / "docs" / "writing-a-plugin.md"
DISTS = ("segmentkit-example", "segmentkit-broken-import", "segmentkit-broken-hook")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture distributions, built and installed into a fresh ``--target`` folder."""
    work = tmp_path_factory.mktemp("thirdparty")
    sources = []
    for name in DISTS:  # build from copies: setuptools writes build/ and *.egg-info next to the sources
        shutil.copytree(FIXTURES / name, work / "src" / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
        sources.append(str(work / "src" / name))
    site = work / "site"
    # Build with the setuptools already installed (fast, offline); without one, let pip fetch it.
    offline = ["--no-build-isolation", "--no-index"] if importlib.util.find_spec("setuptools") else []
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *offline,
           "--disable-pip-version-check", "--target", str(site), *sources]
    done = subprocess.run(pip, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return work


def run(work: Path, args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTKIT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(work / "site"), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          cwd=cwd or work, timeout=300)


def python_json(work: Path, code: str) -> dict:
    done = run(work, ["-c", code])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_installed_plugin_is_listed_and_loads(installed: Path) -> None:
    result = python_json(installed, (
        "import json, segmentkit\n"
        "from segmentkit.testing import synthetic_scene\n"
        "infos = {m.card.id: m.distribution for m in segmentkit.models()}\n"
        "model = segmentkit.load('example-otsu', bins=64)\n"
        "seg = model.segment(synthetic_scene((40, 60), background='plain').image)\n"
        "print(json.dumps({'models': infos, 'class': type(model.raw).__module__ + '.' + type(model.raw).__name__,\n"
        "                  'module': __import__('segmentkit_example').__file__,\n"
        "                  'kind': seg.kind, 'shape': list(seg.label_map.shape), 'bins': model.options.bins}))\n"
    ))
    assert result["models"]["example-otsu"] == "segmentkit-example"
    assert result["models"]["classic"] == "segmentkit-classic"
    assert result["class"] == "segmentkit_example.otsu.OtsuSegmenter"
    assert Path(result["module"]).is_relative_to(installed / "site")  # the installed copy, not the sources
    assert (result["kind"], result["shape"], result["bins"]) == ("semantic", [40, 60], 64)


def test_example_plugin_passes_the_conformance_suite(installed: Path) -> None:
    tests = installed / "src" / "segmentkit-example" / "tests"
    # pytest's deprecations are errors: the guide's fixture pattern must not warn (pytest 9.1 deprecates
    # class-scoped fixtures that are instance methods)
    strict = ["-W", "error::pytest.PytestDeprecationWarning"]
    done = run(installed, ["-m", "pytest", "-v", "-p", "no:cacheprovider", *strict, str(tests)], cwd=tests)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    passed = re.search(r"(\d+) passed", done.stdout)
    assert passed and int(passed.group(1)) >= 80, done.stdout[-2000:]
    assert "SKIPPED" not in done.stdout  # level "quality": every check of answers ran
    for check in ("TestExampleOtsu::test_accepts_every_input_kind[rgba]", "TestExampleOtsu::test_finds_the_object",
                  "TestColourPrompter::test_point_inside_the_object_overlaps_it",
                  "TestColourPrompter::test_negative_point_removes_a_region",
                  "TestColourTracker::test_moving_object_is_tracked", "TestColourTracker::test_live_stream",
                  "TestColourTracker::test_backward_propagation_tracks_the_object",
                  "TestColourTracker::test_both_directions_track_the_object",
                  "TestColourTracker::test_two_objects_are_tracked_apart",
                  "TestColourTracker::test_restore_continues_the_session",
                  "TestColourWords::test_finds_the_object", "test_tracking_a_moving_object"):
        assert re.search(rf"::{re.escape(check)} PASSED", done.stdout), check  # the contract's checks ran


def test_broken_plugins_are_recorded_and_the_others_keep_working(installed: Path) -> None:
    result = python_json(installed, (
        "import json, segmentkit\n"
        "from segmentkit.registry import Registry\n"
        "from segmentkit.testing import synthetic_scene\n"
        "registry = Registry()\n"
        "problems = [[p.plugin, p.distribution, p.stage, p.error] for p in registry.problems]\n"
        "scene = synthetic_scene((48, 64))\n"
        "classic = registry.load('classic')\n"
        "masks = classic.predict(classic.embed(scene.image), [segmentkit.Box(*scene.box)])\n"
        "print(json.dumps({'problems': problems, 'ids': [m.card.id for m in registry.models()],\n"
        "                  'plugins': [p[0] for p in registry.plugins()], 'masks': len(masks),\n"
        "                  'example': type(registry.load('example-otsu').raw).__name__}))\n"
    ))
    problems = {p[0]: p for p in result["problems"]}
    assert set(problems) == {"broken-import", "broken-hook"}
    assert problems["broken-import"][1:3] == ["segmentkit-broken-import", "import"]
    assert "fails to import on purpose" in problems["broken-import"][3]
    assert problems["broken-hook"][1:3] == ["segmentkit-broken-hook", "segmentkit_segmenters"]
    assert "fails on purpose" in problems["broken-hook"][3]
    assert {"classic", "example-otsu"} <= set(result["ids"])
    assert "broken-import" not in result["plugins"]  # never imported; broken-hook is, but serves nothing
    assert result["masks"] == 1 and result["example"] == "OtsuSegmenter"


def test_cli_plugins_command_shows_the_problems(installed: Path) -> None:
    main = "import sys; from segmentkit.cli import main; sys.argv[0] = 'segmentkit'; main()"
    done = run(installed, ["-c", main, "plugins", "--json"])
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    names = {p["name"]: p["distribution"] for p in report["plugins"]}
    assert names["example"] == "segmentkit-example" and names["classic"] == "segmentkit-classic"
    stages = {p["plugin"]: p["stage"] for p in report["problems"]}
    assert stages == {"broken-import": "import", "broken-hook": "segmentkit_segmenters"}
    table = run(installed, ["-c", main, "plugins"])
    assert table.returncode == 0 and "broken-import" in table.stdout and "broken-hook" in table.stdout


def test_cli_options_and_check_with_the_example(installed: Path, tmp_path: Path) -> None:
    from segmentkit.testing import synthetic_scene

    scene = synthetic_scene((48, 64))
    image = tmp_path / "scene.png"
    Image.fromarray(scene.image).save(image)
    main = "import sys; from segmentkit.cli import main; sys.argv[0] = 'segmentkit'; main()"
    prompt = ["-c", main, "prompt", str(image), "--model", "example-colour", "--point", "{},{}".format(*scene.inside),
              "--json"]
    done = run(installed, [*prompt, "-O", "tolerance=80"])
    assert done.returncode == 0 and json.loads(done.stdout), done.stderr
    refused = run(installed, [*prompt, "-O", "colour=red"])
    assert refused.returncode == 2 and "colour" in refused.stderr.splitlines()[-1], refused.stderr
    check = run(installed, ["-c", main, "plugins", "--check", "--json"])
    problems = json.loads(check.stdout)["problems"]
    assert check.returncode == 1 and {p["plugin"] for p in problems} == {"broken-import", "broken-hook"}


def test_doc_code_blocks_are_the_example_files() -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- file: (\S+) -->\n```[\w-]*\n(.*?)```", text, flags=re.DOTALL)
    documented = {path: body for path, body in blocks}
    assert len(documented) == len(blocks), "a file is shown twice"
    example = FIXTURES / "segmentkit-example"
    files = {
        str(p.relative_to(FIXTURES)): p.read_text(encoding="utf-8")
        for p in example.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and ".egg-info" not in str(p) and "build" not in p.parts
    }
    assert set(documented) == set(files), "the doc and tests/fixtures/segmentkit-example list other files"
    for path, body in documented.items():
        assert body == files[path], f"docs/writing-a-plugin.md's copy of {path} differs from the fixture"
