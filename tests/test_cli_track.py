"""`segmentkit track` with the weightless default model: formats, no PyAV, progress, Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from segmentkit.cli import common, track
from segmentkit.cli.app import load_commands
from segmentkit.testing.scenes import synthetic_scene
from segmentkit.types import Text

FRAMES = 6
NO_AV = "import sys; sys.modules['av'] = None; from segmentkit.cli import main; main()"  # as if PyAV were missing


@pytest.fixture(scope="module")
def scenes():
    return [synthetic_scene((72, 144), center=(44 + 8 * i, 34 + i), seed=i) for i in range(FRAMES)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory, scenes):
    folder = tmp_path_factory.mktemp("frames") / "walk"
    folder.mkdir()
    for i, scene in enumerate(scenes):
        Image.fromarray(scene.image).save(folder / f"{i:05d}.png")
    return folder


def point(scenes, frame=0):
    x, y = scenes[frame].inside
    return f"{frame}:{x},{y}"


def segmentkit(*args, code="from segmentkit.cli import main; main()"):
    env = {**os.environ, "SEGMENTKIT_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300, check=False)


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_frame_folder_without_pyav(clip, scenes, tmp_path):
    done = segmentkit("track", clip, "--point", point(scenes, 2), "--out", tmp_path / "out", code=NO_AV)
    assert done.returncode == 0, done.stderr
    assert "no overlay.mp4 without PyAV: pip install 'segmentkit[video]'" in done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["davis", "track.json"]
    doc = json.loads((tmp_path / "out" / "track.json").read_text())
    assert doc["model"] == "classic" and doc["objects"] == [1]
    assert [f["frame_index"] for f in doc["frames"]] == list(range(FRAMES))  # forwards from 2, then back
    for i, scene in enumerate(scenes):
        labels = np.array(Image.open(tmp_path / "out" / "davis" / "walk" / f"{i:05d}.png"))
        assert iou(labels == 1, scene.mask) >= 0.8, i


def test_video_file_with_default_formats(scenes, tmp_path):
    pytest.importorskip("av")
    from segmentkit.io.video_writer import write_video

    movie = write_video(tmp_path / "clip.mp4", [s.image for s in scenes], fps=5)
    done = segmentkit("track", movie, "--point", point(scenes), "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["davis", "overlay.mp4", "track.json"]
    for i, scene in enumerate(scenes):
        labels = np.array(Image.open(tmp_path / "out" / "davis" / "clip" / f"{i:05d}.png"))
        assert iou(labels == 1, scene.mask) >= 0.8, i


def test_video_file_or_overlay_without_pyav_says_how(clip, scenes, tmp_path):
    movie = tmp_path / "clip.mp4"
    movie.write_bytes(b"\0" * 64)
    done = segmentkit("track", movie, "--point", "0:3,3", code=NO_AV)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "pip install 'segmentkit[video]'" in done.stderr and "a folder of frames works without it" in done.stderr
    done = segmentkit("track", clip, "--point", "0:3,3", "--format", "overlay", "--out", tmp_path / "o", code=NO_AV)
    assert done.returncode == 2 and "pip install 'segmentkit[video]'" in done.stderr


def test_json_is_quiet_and_formats_are_checked(clip, scenes, tmp_path):
    done = segmentkit("track", clip, "--point", point(scenes), "--json", "--out", tmp_path / "out",
                      "--format", "mots,youtube-vis")
    assert done.returncode == 0 and done.stderr == ""
    docs = [json.loads(line) for line in done.stdout.splitlines()]  # JSON Lines: one result per frame
    assert {d["schema"] for d in docs} == {"segmentkit.result/1"} and len(docs) == FRAMES
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mots.txt", "youtube-vis.json"]
    assert len((tmp_path / "out" / "mots.txt").read_text().splitlines()) == FRAMES
    done = segmentkit("track", clip, "--point", point(scenes), "--format", "gif", "--out", tmp_path / "x")
    assert done.returncode == 2 and "unknown format gif" in done.stderr
    done = segmentkit("track", clip, "--point", point(scenes), "--format", "mots")
    assert done.returncode == 2 and "--format" in done.stderr and "needs --out DIR" in done.stderr


def test_json_lines_are_what_ipc_streams(clip, scenes):
    """``track --json`` prints, frame by frame, the documents ``vision.segment_video_propagate`` gives."""
    import asyncio

    from segmentkit.ipc.manifest import App
    from segmentkit.ipc.service import Service

    x, y = scenes[2].inside
    x0, y0, x1, y1 = (int(v) for v in scenes[2].box)
    done = segmentkit("track", clip, "--point", f"2:{x},{y}", "--box", f"2:{x0},{y0},{x1},{y1}@2", "--json")
    assert done.returncode == 0, done.stderr
    cli = [json.loads(line) for line in done.stdout.splitlines()]

    async def ipc():
        service, app = Service(None, [App.local()]), App.local()

        async def call(method, **params):
            message = {"jsonrpc": "2.0", "id": 1, "method": f"vision.segment_video_{method}", "params": params}
            answer = await service.handle(json.dumps(message), app)
            assert "result" in answer, answer
            return answer["result"]

        try:
            session = (await call("start", source={"path": str(clip)}, model="classic"))["session"]
            await call("add_prompt", session=session, frame=2, object_id=1, point={"x": x, "y": y})
            await call("add_prompt", session=session, frame=2, object_id=2,
                       box={"x0": x0, "y0": y0, "x1": x1, "y1": y1})
            return (await call("propagate", session=session, start=2, direction="both"))["frames"]
        finally:
            await service.aclose()

    streamed = asyncio.run(ipc())
    assert [d["frame_index"] for d in cli] == [d["frame_index"] for d in streamed]  # the order tracked
    assert sorted(d["frame_index"] for d in cli) == list(range(FRAMES))
    for ours, theirs in zip(cli, streamed):
        assert [m["object_id"] for m in ours["masks"]] == [m["object_id"] for m in theirs["masks"]] == [1, 2]
        assert [m["rle"] for m in ours["masks"]] == [m["rle"] for m in theirs["masks"]]
        assert ours == theirs  # every other field, too (model, image, kind, scores, boxes)


def test_text_is_planned_before_loading(clip, monkeypatch, capsys):
    """``classic`` takes no text: the plan refuses ``--text`` before a loader is imported."""
    import segmentkit.registry

    def no_loading(entry):
        raise AssertionError(f"{entry.spec.card.id} was loaded")

    monkeypatch.setattr(segmentkit.registry, "import_loader", no_loading)
    assert track.parse_track_prompt("a cat", "text")[:2] == (0, 1)  # frame 0, object 1 unless given
    assert track.parse_track_prompt("3: a red square @2", "text") == (3, 2, Text("a red square"))
    code = common.run_app(load_commands(), ["track", str(clip), "--text", "2:a cat"])
    assert code == 2
    assert "model 'classic' does not accept text prompts (it accepts: point, box, mask)" in capsys.readouterr().err


@pytest.fixture
def terminal(monkeypatch):
    """stderr as a terminal rich draws live progress on; returns what it got."""
    buffer = io.StringIO()

    def console():
        return Console(file=buffer, force_terminal=True, width=160)

    monkeypatch.setattr(common, "stderr_console", console)
    monkeypatch.setattr(track, "stderr_console", console)
    return buffer


def test_progress_bar_shows_frames_rate_and_eta(clip, scenes, tmp_path, terminal):
    code = common.run_app(load_commands(), ["track", str(clip), "--point", point(scenes), "--format", "json",
                                "--out", str(tmp_path / "out")])
    assert code == 0
    shown = terminal.getvalue()
    assert "tracking walk" in shown and f"{FRAMES}/{FRAMES}" in shown and "frames/s" in shown
    assert "0:00:0" in shown or "-:--:--" in shown  # the ETA column


class _Interrupting:
    """Wraps a tracker: Ctrl-C arrives while frame ``at`` is being computed."""

    def __init__(self, tracker, at):
        self.tracker, self.at, self.card, self.options = tracker, at, tracker.card, tracker.options

    def start(self, frames):
        session = self.tracker.start(frames)
        propagate = session.propagate

        def interrupted(*args, **kwargs):
            for fm in propagate(*args, **kwargs):
                if fm.frame_index == self.at:
                    raise KeyboardInterrupt
                yield fm

        session.propagate = interrupted
        return session


def test_ctrl_c_keeps_what_was_written(clip, scenes, tmp_path, monkeypatch, capsys):
    real = track.load_model
    monkeypatch.setattr(track, "load_model", lambda *a, **k: _Interrupting(real(*a, **k), at=3))
    out = tmp_path / "out"
    code = common.run_app(load_commands(), ["track", str(clip), "--point", point(scenes), "--out", str(out),
                                "--format", "davis,json,mots"])
    assert code == 130
    assert "interrupted after 3 frame(s)" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "davis" / "walk").iterdir()) == ["00000.png", "00001.png", "00002.png"]
    doc = json.loads((out / "track.json").read_text())
    assert [f["frame_index"] for f in doc["frames"]] == [0, 1, 2]
    assert [line.split()[0] for line in (out / "mots.txt").read_text().splitlines()] == ["0", "1", "2"]
