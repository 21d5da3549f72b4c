"""`segmentkit prompt` and `segmentkit segment` with SAM 2 through the generic CLI (subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from segmentkit.testing.scenes import synthetic_scene


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    code = "import sys; from segmentkit.cli import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          check=False)


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "photo.png"
    Image.fromarray(synthetic_scene((480, 640), seed=2).image).save(path)
    return path


@pytest.fixture(scope="module")
def small_photo_file(tmp_path_factory) -> Path:
    """A small image keeps automatic mask generation quick."""
    path = tmp_path_factory.mktemp("cli") / "small.png"
    Image.fromarray(synthetic_scene((96, 128), seed=2).image).save(path)
    return path


@pytest.mark.parametrize("options", [[], ["-O", "engine=reference"]])
def test_prompt_command(photo_file: Path, sam2_weights_small: Path, tmp_path: Path, options: list[str]) -> None:
    out = tmp_path / "out"
    result = run("prompt", str(photo_file), "--model", "sam2.1-hiera-tiny", "--point", "320,240", "--neg", "10,10",
                 "--weights", str(sam2_weights_small), "--out", str(out), "--json", *options, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["model"]["id"] == "sam2.1-hiera-tiny"
    written = sorted(p.name for p in out.iterdir())
    assert any(name.endswith(".png") for name in written) and any(name.endswith(".json") for name in written)


def test_segment_command(small_photo_file: Path, sam2_weights_small: Path, tmp_path: Path) -> None:
    result = run("segment", str(small_photo_file), "--model", "sam2.1-hiera-tiny", "--weights", str(sam2_weights_small),
                 "-O", "points_per_side=8", "-O", "pred_iou_thresh=0.5", "-O", "stability_score_thresh=0.4",
                 "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["model"]["id"] == "sam2.1-hiera-tiny"
    assert "automatic" in result.stdout


def test_prompt_outside_the_image_is_a_one_line_error(photo_file: Path, sam2_weights_small: Path,
                                                      tmp_path: Path) -> None:
    result = run("prompt", str(photo_file), "--model", "sam2.1-hiera-tiny", "--point", "900,10",
                 "--weights", str(sam2_weights_small), cwd=tmp_path)
    assert result.returncode == 2
    assert "outside" in result.stderr and "Traceback" not in result.stderr


def test_corrupt_weights_is_a_one_line_error(photo_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{}")
    result = run("prompt", str(photo_file), "--model", "sam2.1-hiera-tiny", "--point", "10,10",
                 "--weights", str(bad), cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "sam2.1-hiera-tiny" in result.stderr and "unusable" in result.stderr


def test_only_our_output_on_stderr_and_quiet_silences_it(photo_file: Path, sam2_weights_small: Path,
                                                         tmp_path: Path) -> None:
    """transformers' "Loading weights" bar and warnings stay off stderr; `--quiet` leaves errors only;
    the result's model block shows what precision 'auto' resolved to."""
    args = ("prompt", str(photo_file), "--model", "sam2.1-hiera-tiny", "--point", "320,240",
            "--weights", str(sam2_weights_small), "--json")
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Loading weights" not in result.stderr and "it/s" not in result.stderr, result.stderr
    assert json.loads(result.stdout)["model"]["precision"] == "fp32"  # the suite turns bf16 off for 'auto'
    quiet = run("--quiet", *args[:-1], "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == ""
    bad = run("--quiet", *args[:4], "--point", "9999,1", "--weights", str(sam2_weights_small), cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error: "), bad.stderr
