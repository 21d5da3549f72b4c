"""`segmentkit track` end to end, in a subprocess, with the tiny SAM 2 video checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import segmentkit as sk
from PIL import Image
from segmentkit.registry import Registry
from segmentkit.rle import decode
from segmentkit_sam2.video_testing import build_tiny_video_checkpoint, decode_all, moving_frames, write_video

av = pytest.importorskip("av")
FRAMES = 8


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocess (OMP_NUM_THREADS=1): same float reductions
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return build_tiny_video_checkpoint(tmp_path_factory.mktemp("sam2-video-tiny"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", moving_frames(FRAMES))


def track(*args, cwd=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SEGMENTKIT_OFFLINE": "1"}
    code = "from segmentkit.cli import main; main()"  # what the `segmentkit` script runs
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300, check=False)


def test_track_writes_label_maps_json_and_overlay(checkpoint, clip, tmp_path):
    out = tmp_path / "out"
    done = track("track", clip, "--model", "sam2.1-hiera-tiny", "--weights", checkpoint,
                 "--point", "3:30,32", "--box", "3:58,38,84,62@2", "--out", out)
    assert done.returncode == 0, done.stderr
    doc = json.loads((out / "track.json").read_text())
    assert doc["schema"] == "segmentkit.track/1" and doc["model"] == "sam2.1-hiera-tiny"
    assert doc["video"] == {"path": str(clip), "width": 96, "height": 72, "frames": FRAMES}
    assert doc["objects"] == [1, 2]
    assert [f["frame_index"] for f in doc["frames"]] == list(range(FRAMES))  # backwards from 3, too
    pngs = sorted((out / "davis" / "clip").iterdir())
    assert [p.name for p in pngs] == [f"{i:05d}.png" for i in range(FRAMES)]

    # the files agree with the Python API on the same video and prompts
    tracker = Registry().load("sam2.1-hiera-tiny", role="tracker", weights=checkpoint)
    with tracker.start(clip) as session:
        session.add_prompts(3, 1, [sk.Point(30, 32)])
        session.add_prompts(3, 2, [sk.Box(58, 38, 84, 62)])
        api = {fm.frame_index: fm for fm in session.propagate()}
        api.update({fm.frame_index: fm for fm in session.propagate(3, direction="backward") if fm.frame_index < 3})
    for frame in doc["frames"]:
        i = frame["frame_index"]
        labels = np.asarray(Image.open(out / "davis" / "clip" / f"{i:05d}.png"))
        assert labels.shape == (72, 96)
        for entry, mask, object_id in zip(frame["masks"], api[i].masks.masks, api[i].object_ids):
            assert entry["object_id"] == object_id
            assert np.array_equal(decode(entry["rle"]), mask)
        expected = np.where(api[i].masks.masks[1], 2, np.where(api[i].masks.masks[0], 1, 0))
        assert np.array_equal(labels, expected)
        assert 0 < (labels > 0).mean() < 1

    overlay = decode_all(out / "overlay.mp4")
    assert len(overlay) == FRAMES and overlay[0].shape == (72, 96, 3)
    original = decode_all(clip)
    assert np.abs(overlay[5].astype(int) - original[5]).mean() > 5  # tinted


def test_track_bad_input_exits_2(checkpoint, clip, tmp_path):
    done = track("track", clip, "--weights", checkpoint, "--model", "sam2.1-hiera-tiny", "--point", "99:3,3")
    assert done.returncode == 2 and "frame 99 is out of range" in done.stderr and "Traceback" not in done.stderr
    done = track("track", clip, "--weights", checkpoint, "--model", "sam2.1-hiera-tiny", "--point", "3,3")
    assert done.returncode == 2 and "needs a frame prefix" in done.stderr
    done = track("track", tmp_path / "nope.mp4", "--model", "sam2.1-hiera-tiny", "--point", "0:3,3")
    assert done.returncode == 2 and "no such file" in done.stderr
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"junk" * 50)
    done = track("track", junk, "--weights", checkpoint, "--model", "sam2.1-hiera-tiny", "--point", "0:3,3")
    assert done.returncode == 2 and "junk.mp4 is not a video" in done.stderr
