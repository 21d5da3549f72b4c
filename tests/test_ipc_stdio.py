"""`segmentkit serve --stdio` as a real child process: every method, and bad input it survives.

Images go to the weightless ``classic`` plugin (results compared with the same model
run in this process); video goes to the toy colour tracker (``test_ipc_toy.py``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_ipc_support as support  # registered by tests/conftest.py
from segmentkit.client import Client, RpcError
from segmentkit.ipc.errors import ErrorCode
from segmentkit.testing.scenes import synthetic_scene

pytest.importorskip("segmentkit_classic", reason="needs the classic plugin: pip install -e plugins/classic")

SCENE = synthetic_scene((64, 80), seed=5)


def _classic() -> Any:
    from segmentkit.registry import Registry

    return Registry()


def test_every_method_over_stdio(tmp_path: Path) -> None:
    image_path = support.save_png(tmp_path / "scene.png", SCENE.image)
    folder = tmp_path / "clip"
    scenes = support.write_frames(folder, count=5)
    registry = _classic()
    prompter = registry.load("classic", role="prompter")
    segmenter = registry.load("classic", role="segmenter")
    with Client.stdio(support.serve_cmd("--stdio"), env=support.server_env(TOY_CHATTY="1"), timeout=120) as sk:
        ids = [m.card.id for m in sk.models()]
        assert "classic" in ids and "toy-color" in ids
        trackers = [m.card.id for m in sk.models(role="tracker")]
        assert "toy-color" in trackers and "classic" in trackers

        seg = sk.segment(image_path, model="classic")
        expected = segmenter.segment(SCENE.image)
        assert seg.kind == expected.kind and len(seg.masks) == len(expected.masks)
        assert np.array_equal(seg.masks.masks, expected.masks.masks)

        from segmentkit.types import Point

        got = sk.mask_from_prompt(SCENE.image, point=SCENE.inside, model="classic", multimask=True)
        want = prompter.predict(prompter.embed(SCENE.image), [Point(*SCENE.inside)], multimask=True)
        assert len(got) == len(want) == 3
        assert np.array_equal(got.masks, want.masks)
        assert got.scores.tolist() == pytest.approx(want.scores.tolist())

        session = sk.video_start(folder, model="toy")
        first = sk.video_add_prompt(session, 0, 3, point=scenes[0].inside)
        assert first.frame_index == 0 and first.object_ids == [3]
        frames = list(session.propagate())  # the remote session has a local session's methods
        assert [f.frame_index for f in frames] == [0, 1, 2, 3, 4]
        for frame, scene in zip(frames, scenes):
            mask = frame.masks.masks[0]
            assert (mask & scene.mask).sum() / (mask | scene.mask).sum() > 0.95
        (tmp_path / "export").mkdir()
        assert sk.video_export(session, tmp_path / "export", ["mots"]) == [str(tmp_path / "export" / "mots.txt")]
        lines = (tmp_path / "export" / "mots.txt").read_text().splitlines()
        assert [line.split()[:3] for line in lines] == [[str(i), "1003", "1"] for i in range(5)]
        assert sk.video_cancel(session) is False
        sk.video_add_prompt(session, 2, 4, point=(1, 1))
        both = list(sk.video_propagate(session, start=2, direction="both"))
        assert [f.frame_index for f in both] == [2, 3, 4, 1, 0]
        saved = sk.video_save(session, tmp_path / "session.npz")
        assert sk.video_remove_object(session, 3) == [4]
        sk.video_reset(session)
        with pytest.raises(RpcError):
            list(sk.video_propagate(session))  # no objects left
        restored = sk.video_restore(saved)
        again = list(sk.video_propagate(restored, start=2, direction="both"))
        frames = lambda run: [(f.frame_index, f.masks.object_ids.tolist(), f.masks.masks.tolist()) for f in run]  # noqa: E731
        assert frames(again) == frames(both)
        sk.video_close(restored)
        sk.video_close(session)
        with pytest.raises(RpcError) as info:
            sk.video_add_prompt(session, 0, 3, point=(1, 1))
        assert info.value.rpc_code == ErrorCode.SESSION_ERROR

        live = sk.video_start(stream=True, model="toy-color")
        for scene in scenes[:2]:
            pushed = sk.video_push_frame(live, scene.image)
        assert pushed.frame_index == 1 and len(pushed.masks) == 0
        sk.video_add_prompt(live, 1, 1, box=scenes[1].box)
        assert len(sk.video_push_frame(live, scenes[2].image).masks) == 1
        stats = sk.stats()
        assert stats.app == "local" and stats.sessions == 1
        assert {(m.model, m.role): m.loads for m in stats.loaded} == {
            ("classic", "segmenter"): 1, ("classic", "prompter"): 1, ("toy-color", "tracker"): 1}


def _exchange(args: list[str], lines: list[bytes], env: dict[str, str] | None = None) -> tuple[list[dict], int]:
    """Send ``lines`` to a fresh stdio server, close its input, return every line it wrote and its exit code."""
    proc = subprocess.run(support.serve_cmd("--stdio", *args), input=b"".join(lines), capture_output=True,
                          env=env or support.server_env(), timeout=120, check=False)
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    return answers, proc.returncode


def _line(request_id: Any, method: str, params: Any = None) -> bytes:
    message = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return (json.dumps(message) + "\n").encode()


def test_bad_input_is_answered_and_the_server_stays_up(tmp_path: Path) -> None:
    granted = tmp_path / "granted"
    image = support.save_png(granted / "in.png", SCENE.image)
    support.save_png(tmp_path / "secret" / "out.png", SCENE.image)
    (granted / "link.png").symlink_to(tmp_path / "secret" / "out.png")
    manifest = support.write_manifest(tmp_path / "app.json", "com.example.stdio", ["classic"], [granted], False)
    import base64

    big = base64.b64encode(bytes(80_000)).decode()
    lines = [
        b"this is not json\n",
        b"\n",  # blank lines are skipped
        _line(1, "vision.nope"),
        _line(2, "vision.segment", {"image": {"path": 42}}),
        _line(3, "vision.segment", {"image": {"base64": big}}),  # over --max-request-mb
        _line(4, "vision.segment", {"image": {"path": str(image)}, "model": "toy-color"}),
        _line(5, "vision.segment", {"image": {"path": str(granted / ".." / "secret" / "out.png")}}),
        _line(6, "vision.segment", {"image": {"path": str(granted / "link.png")}}),
        _line(7, "vision.segment", {"image": {"camera": base64.b64encode(b"x").decode()}}),
        _line(8, "vision.segment_video_start", {"stream": True}),
        b'{"jsonrpc": "2.0", "id": 9, "method": "vision.models", "params": {"role": Infinity}}\n',
        _line(10, "vision.segment", {"image": {"path": str(image)}}),
        b'{"jsonrpc": "2.0", "id": "\\ud800", "method": "vision.models"}\n',  # a lone surrogate
        b'[{"jsonrpc": "2.0", "id": 12, "method": "vision.nope\\udfff"}, {"jsonrpc": "2.0", "method": 1}]\n',
        b'{"jsonrpc": "2.0", "id": 11, "method": "vision.models"}',  # last line without a newline
    ]
    answers, code = _exchange(["--manifest", str(manifest), "--max-request-mb", "0.05"], lines)
    assert code == 0
    batch = next(a for a in answers if isinstance(a, list))
    assert [(a["id"], a["error"]["code"]) for a in batch] == [
        (12, ErrorCode.METHOD_NOT_FOUND), (None, ErrorCode.INVALID_REQUEST)]
    answers = [a for a in answers if not isinstance(a, list)]
    assert len(answers) == 13
    by_id = {a["id"]: a for a in answers if a["id"] is not None}
    # the garbage line and request 9 (Infinity is not JSON) cannot be parsed: their errors have id null
    assert [a["error"]["code"] for a in answers if a["id"] is None] == [ErrorCode.PARSE_ERROR] * 2
    assert [m["card"]["id"] for m in by_id["\ud800"]["result"]["models"]] == ["classic"]
    expected = {
        1: ErrorCode.METHOD_NOT_FOUND, 2: ErrorCode.INVALID_PARAMS, 3: ErrorCode.PAYLOAD_TOO_LARGE,
        4: ErrorCode.MODEL_DENIED, 5: ErrorCode.PATH_DENIED, 6: ErrorCode.PATH_DENIED, 7: ErrorCode.CAMERA_DENIED,
        8: ErrorCode.CAMERA_DENIED,
    }
    assert {i: by_id[i]["error"]["code"] for i in expected} == expected
    assert by_id[10]["result"]["model"]["id"] == "classic"
    assert [m["card"]["id"] for m in by_id[11]["result"]["models"]] == ["classic"]
    for answer in answers:
        if "error" in answer:
            assert answer["error"]["data"]["code"] and answer["error"]["message"]


def test_leaving_a_propagation_early_cancels_it(tmp_path: Path) -> None:
    folder = tmp_path / "clip"
    scenes = support.write_frames(folder, count=30, size=(24, 32), step=0.5)
    env = support.server_env(TOY_DELAY_S="0.05")
    with Client.stdio(support.serve_cmd("--stdio"), env=env, timeout=120) as sk:
        session = sk.video_start(folder, model="toy")
        sk.video_add_prompt(session, 0, 1, point=scenes[0].inside)
        seen = []
        for frame in sk.video_propagate(session):
            seen.append(frame.frame_index)
            if len(seen) == 2:
                break
        assert seen == [0, 1]
        # the propagation is over (not busy): the session takes new prompts at once
        assert sk.video_add_prompt(session, 5, 2, point=scenes[5].inside).frame_index == 5
        assert len(list(sk.video_propagate(session, start=28))) == 2


def test_serve_refuses_bad_setups_with_one_line(tmp_path: Path) -> None:
    two = [support.write_manifest(tmp_path / f"{n}.json", n, ["classic"], [], False) for n in ("a", "b")]
    (tmp_path / "bad.json").write_text('{"app": {"id": "x"}, "capabilities": {"camera": true}}')
    for args in (["--manifest", str(tmp_path / "missing.json")], ["--manifest", str(tmp_path / "bad.json")],
                 ["--manifest", str(two[0]), "--manifest", str(two[1])], ["--weights", "classic"]):
        proc = subprocess.run(support.serve_cmd("--stdio", *args), input=b"", capture_output=True,
                              env=support.server_env(), timeout=120, check=False)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
