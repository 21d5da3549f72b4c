"""`segmentkit prompt --text` with Grounded-SAM 2 through the real executable."""

import json
import shutil
import subprocess

import numpy as np
from PIL import Image


def run(*args):
    exe = shutil.which("segmentkit")
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_prompt_text_with_model_options(dino_dir, tmp_path):
    image = np.full((64, 80, 3), 235, np.uint8)
    image[16:44, 20:56] = (200, 30, 30)
    Image.fromarray(image).save(tmp_path / "scene.png")
    result = run("prompt", tmp_path / "scene.png", "--text", "a red square.", "--model", "grounded-sam2",
                 "-O", "detector=grounding-dino-tiny", "-O", f"detector_weights={dino_dir}", "-O", "sam=classic",
                 "-O", "box_threshold=0.9", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout.splitlines()[0])
    assert document["masks"], "the tiny detector keeps boxes above 0.9"
    assert {m["label"] for m in document["masks"]} == {"a red square"}


def test_unknown_model_option_is_a_one_line_error(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "x.png")
    result = run("prompt", tmp_path / "x.png", "--text", "a cat.", "--model", "grounded-sam2", "-O", "colour=red")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "colour" in result.stderr
