"""The IPC service under attack (issue 15): one test per class of defect, in-process.

Each test was run against the code before the fix and failed there. The transports'
share (stdio, HTTP, WebSocket) is in ``test_ipc_stdio.py`` / ``test_ipc_http.py``; the
property-based suite is ``test_ipc_properties.py``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import stat
import struct
import threading
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_ipc_support as support  # registered by tests/conftest.py
from pycocotools import mask as coco
from segmentkit.ipc.errors import ErrorCode
from segmentkit.ipc.limits import Limits
from segmentkit.ipc.manifest import App
from segmentkit.ipc.protocol import dumps

ipc = support.load_sibling("test_ipc_service")
toy = support.load_sibling(support.TOY)
make_service, call, run, result, error, b64 = ipc.make_service, ipc.call, ipc.run, ipc.result, ipc.error, ipc.b64
SCENE = ipc.SCENE


def codes(response: Any) -> Any:
    return [r["error"]["code"] if "error" in r else "ok" for r in response] if isinstance(response, list) \
        else response["error"]["code"]


@pytest.fixture
def session(tmp_path: Path) -> tuple[Any, str]:
    service = make_service()
    support.write_frames(tmp_path / "clip", count=3)
    started = result(run(call(service, "vision.segment_video_start", {"source": {"path": str(tmp_path / "clip")}})))
    return service, started["session"]


# --------------------------------------------------------------------------- 1. RLE counts


def test_untrusted_rle_decodes_like_pycocotools() -> None:
    from segmentkit.rle import decode_untrusted

    rng = np.random.default_rng(0)
    for i in range(60):
        h, w = (int(v) for v in rng.integers(1, 70, 2))
        mask = rng.random((h, w)) < rng.random() if i % 2 else np.zeros((h, w), bool)
        mask[rng.integers(0, h):, rng.integers(0, w):] ^= i % 3 == 0
        rle = coco.encode(np.asfortranarray(mask.astype(np.uint8)))
        reference = coco.decode(rle).astype(bool)
        assert np.array_equal(decode_untrusted((h, w), rle["counts"].decode(), h * w), reference)
        runs = np.diff(np.flatnonzero(np.diff(np.r_[2, mask.T.ravel(), 2])))  # column-major runs
        runs = list(runs) if mask.T.ravel()[0] == 0 else [0, *runs]
        assert np.array_equal(decode_untrusted((h, w), [int(r) for r in runs], h * w), reference)


@pytest.mark.parametrize(("counts", "why"), [
    ("o" * 400_000, "cannot describe a 48x64 mask"),  # 3.8 s of event-loop time before the fix
    ("0" * 3073 + "1", "must be"),  # more runs than pixels
    ("ooooooooooooo0", "too long"),  # a 65-bit run length
    ("7", "add up to"), ("@", "must be"), ("0\u00e9", "ASCII"), ("0~", "outside"), ("0o", "truncated"),
    ([3072, -1, 1], "must be"), ([0, 0, 3072], "must be"), ([2**62, 2**62, 3072], "must be"),
    ([2**63], "must be"), ([0, -(2**64)], "must be"),  # beyond int64 (found by test_ipc_properties)
], ids=lambda value: value[:12] if isinstance(value, str) else None)
def test_hostile_rle_is_refused_before_decoding(session: tuple[Any, str], counts: Any, why: str) -> None:
    service, sid = session
    response = run(call(service, "vision.segment_video_add_prompt", {
        "session": sid, "frame": 0, "object_id": 1, "mask": {"size": [48, 64], "counts": counts}}))
    assert response["error"]["code"] == ErrorCode.BAD_PROMPT
    assert why in response["error"]["message"]


def test_prompt_work_never_runs_on_the_event_loop(session: tuple[Any, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import segmentkit.rle

    seen: list[bool] = []
    decode = segmentkit.rle.decode_untrusted

    def spy(*args: Any) -> np.ndarray:
        try:
            asyncio.get_running_loop()
            seen.append(True)
        except RuntimeError:
            seen.append(False)
        return decode(*args)

    monkeypatch.setattr(segmentkit.rle, "decode_untrusted", spy)
    service, sid = session
    mask = np.zeros((48, 64), bool)
    mask[SCENE.mask] = True
    rle = segmentkit.rle.encode(mask)
    added = result(run(call(service, "vision.segment_video_add_prompt",
                            {"session": sid, "frame": 0, "object_id": 1, "mask": rle})))
    assert added["masks"][0]["area"] > 0 and seen == [False]


# --------------------------------------------------------------------------- 2. frame folders


def _granted_clip(tmp_path: Path) -> tuple[App, Path, Path]:
    granted, secret = tmp_path / "granted", tmp_path / "secret"
    support.write_frames(granted / "clip", count=4)
    support.save_png(secret / "out.png", np.full((48, 64, 3), 7, np.uint8))
    manifest = support.write_manifest(tmp_path / "app.json", "com.example.app", ["toy"], [granted], False)
    return ipc.load_manifest(manifest), granted / "clip", secret / "out.png"


def test_frames_linked_outside_the_grant_are_refused(tmp_path: Path) -> None:
    app, clip, outside = _granted_clip(tmp_path)
    (clip / "0002.png").unlink()
    (clip / "0002.png").symlink_to(outside)
    service = make_service([app])
    response = run(call(service, "vision.segment_video_start", {"source": {"path": str(clip)}}, app=app))
    assert ipc.error(response) == (ErrorCode.PATH_DENIED, "path_denied")


def test_a_frame_swapped_for_a_link_after_start_is_refused(tmp_path: Path) -> None:
    app, clip, outside = _granted_clip(tmp_path)
    service = make_service([app])
    sid = result(run(call(service, "vision.segment_video_start", {"source": {"path": str(clip)}}, app=app)))["session"]
    x, y = SCENE.inside
    result(run(call(service, "vision.segment_video_add_prompt",
                    {"session": sid, "frame": 0, "object_id": 1, "point": {"x": x, "y": y}}, app=app)))
    (clip / "0003.png").unlink()
    (clip / "0003.png").symlink_to(outside)
    response = run(call(service, "vision.segment_video_propagate", {"session": sid}, app=app))
    assert ipc.error(response) == (ErrorCode.PATH_DENIED, "path_denied")


# --------------------------------------------------------------------------- 3. path inputs


def test_devices_are_refused() -> None:
    service = make_service()
    response = run(call(service, "vision.segment", {"image": {"path": "/dev/zero"}}))
    assert ipc.error(response) == (ErrorCode.BAD_IMAGE, "bad_image")
    assert "not a regular file" in response["error"]["message"]


@pytest.mark.parametrize(("method", "params", "code"), [
    ("vision.segment", lambda fifo: {"image": {"path": fifo}}, ErrorCode.BAD_IMAGE),
    ("vision.segment_video_restore", lambda fifo: {"path": fifo}, ErrorCode.SESSION_ERROR),
])
def test_a_fifo_is_refused_without_blocking(tmp_path: Path, method: str, params: Any, code: ErrorCode) -> None:
    fifo = tmp_path / "frame.png"
    os.mkfifo(fifo)
    service = make_service()
    try:
        response = run(asyncio.wait_for(call(service, method, params(str(fifo))), 30))
    finally:  # before the fix a worker sat in open(); give it a writer so it can finish
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert response["error"]["code"] == code and "not a regular file" in response["error"]["message"]


def test_files_over_the_size_cap_are_refused_unread(tmp_path: Path) -> None:
    image = support.save_png(tmp_path / "padded.png", SCENE.image)
    with image.open("r+b") as handle:  # a valid PNG followed by 4 MiB of nothing (sparse)
        handle.truncate(4 * 2**20)
    service = make_service(max_pixels=48 * 64)
    response = run(call(service, "vision.segment", {"image": {"path": str(image)}}))
    assert ipc.error(response) == (ErrorCode.IMAGE_TOO_LARGE, "image_too_large")
    assert "bytes" in response["error"]["message"]


# --------------------------------------------------------------------------- 4. lone surrogates


def test_lone_surrogates_are_answered() -> None:
    service = make_service()
    raw = '{"jsonrpc": "2.0", "id": "\\ud800", "method": "vision.models"}'
    answer = run(service.handle(raw, App.local()))
    assert json.loads(dumps(answer).encode("utf-8"))["id"] == "\ud800"
    batch = ('[{"jsonrpc": "2.0", "id": "\\udfff", "method": "vision.nope\\ud800"},'
             ' {"jsonrpc": "2.0", "id": 2, "method": "vision.segment", "params": {"image": {"path": "\\ud800"}}},'
             ' {"jsonrpc": "2.0", "id": 3, "method": "vision.models"}]')
    answers = json.loads(dumps(run(service.handle(batch, App.local()))).encode("utf-8"))
    assert codes(answers) == [ErrorCode.METHOD_NOT_FOUND, ErrorCode.INVALID_PARAMS, "ok"]


# --------------------------------------------------------------------------- 5. token file


def test_token_file_is_created_fresh_and_private(tmp_path: Path) -> None:
    from segmentkit.cli.serve import _token_file
    from segmentkit.errors import SegmentkitError

    path = tmp_path / "token.json"
    path.write_text("old")
    path.chmod(0o644)
    _token_file(path, "http://127.0.0.1:1/", 1, {"secret-token": App.local()})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["token"] == "secret-token"
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with pytest.raises(SegmentkitError, match="symbolic link"):
        _token_file(link, "http://127.0.0.1:1/", 1, {"secret-token": App.local()})
    assert target.read_text() == "keep me" and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere.txt", "link.json", "token.json"]


# --------------------------------------------------------------------------- 6. invalid requests without an id


@pytest.mark.parametrize("raw", [
    '{"jsonrpc": "2.0", "method": 1}',
    '{"method": "vision.models"}',
    '{"jsonrpc": "1.0", "method": "vision.models"}',
    '{"jsonrpc": "2.0", "method": "vision.models", "extra": true}',
    '{"jsonrpc": "2.0"}',
])
def test_invalid_requests_without_an_id_are_answered_with_id_null(raw: str) -> None:
    service = make_service()
    assert run(service.handle(raw, App.local()))["error"]["code"] == ErrorCode.INVALID_REQUEST
    assert run(service.handle(raw, App.local()))["id"] is None
    answers = run(service.handle(f"[{raw}, {raw}]", App.local()))
    assert [(a["id"], a["error"]["code"]) for a in answers] == [(None, ErrorCode.INVALID_REQUEST)] * 2


def test_valid_notifications_still_get_no_answer() -> None:
    service = make_service()
    for params in ("{}", '{"role": "painter"}'):
        raw = f'{{"jsonrpc": "2.0", "method": "vision.models", "params": {params}}}'
        assert run(service.handle(raw, App.local())) is None
    assert run(service.handle('{"jsonrpc": "2.0", "method": "vision.nope"}', App.local())) is None


# --------------------------------------------------------------------------- 7. strict params


@pytest.mark.parametrize("change", [
    {"point": {"x": "17", "y": 20}}, {"point": {"x": 17, "y": 20, "positive": 0}},
    {"point": {"x": 17, "y": 20, "positive": "false"}}, {"multimask": "yes"}, {"multimask": 1},
    {"formats": "png"}, {"box": {"x0": 1, "y0": 1, "x1": "30", "y1": 30}}, {"model": 7},
])
def test_params_are_not_coerced(change: dict[str, Any]) -> None:
    service = make_service()
    params = {"image": {"base64": b64(SCENE.image)}, "point": {"x": 17, "y": 20}, **change}
    response = run(call(service, "vision.mask_from_prompt", params))
    assert ipc.error(response) == (ErrorCode.INVALID_PARAMS, "invalid_params")


@pytest.mark.parametrize("change", [
    {"frame": "0"}, {"frame": 0.0}, {"object_id": True}, {"mask": {"size": ["48", 64], "counts": "PP"}},
    {"mask": {"size": [48.0, 64], "counts": "PP"}}, {"mask": {"size": [48, 64], "counts": [1.5]}},
])
def test_session_params_are_not_coerced(session: tuple[Any, str], change: dict[str, Any]) -> None:
    service, sid = session
    params = {"session": sid, "frame": 0, "object_id": 1, "point": {"x": 3, "y": 4}, **change}
    response = run(call(service, "vision.segment_video_add_prompt", params))
    assert ipc.error(response) == (ErrorCode.INVALID_PARAMS, "invalid_params")


# --------------------------------------------------------------------------- 8. pixel limit


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` 1-bit pixels and holds one empty row."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def test_decompression_bombs_are_image_too_large() -> None:
    service = make_service()
    bomb = base64.b64encode(_png_header(20_000, 10_000)).decode()  # over Pillow's own refusal (2 x 89 M)
    response = run(call(service, "vision.segment", {"image": {"base64": bomb}}))
    assert ipc.error(response) == (ErrorCode.IMAGE_TOO_LARGE, "image_too_large")
    assert "200,000,000 pixels" in response["error"]["message"]
    assert "--max-pixels" in response["error"]["message"]


def test_one_pixel_limit_one_message() -> None:
    from segmentkit.io.image import DEFAULT_MAX_PIXELS

    assert Limits().max_pixels == DEFAULT_MAX_PIXELS
    service = make_service(max_pixels=1000)
    for params in ({"image": {"base64": b64(SCENE.image)}},
                   {"image": {"base64": base64.b64encode(_png_header(2000, 1000)).decode()}}):
        response = run(call(service, "vision.segment", params))
        assert ipc.error(response) == (ErrorCode.IMAGE_TOO_LARGE, "image_too_large")
        assert "over the limit of 1,000 pixels (raise it with --max-pixels or SEGMENTKIT_MAX_PIXELS)" in \
            response["error"]["message"]


# --------------------------------------------------------------------------- deadlines and fairness


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Decoding a full-size scene image (in a worker, before the model) waits until the event is set."""
    import segmentkit.ipc.service

    release = threading.Event()
    load_ref = segmentkit.ipc.service.load_ref

    def held(*args: Any) -> np.ndarray:
        image = load_ref(*args)
        if image.shape[:2] == SCENE.image.shape[:2]:
            release.wait(30)
        return image

    monkeypatch.setattr(segmentkit.ipc.service, "load_ref", held)
    yield release
    release.set()


def test_a_request_past_its_deadline_is_answered(gate: threading.Event) -> None:
    service = make_service(request_timeout_s=0.2)
    response = run(call(service, "vision.segment", {"image": {"base64": b64(SCENE.image)}}))
    assert ipc.error(response) == (ErrorCode.DEADLINE_EXCEEDED, "deadline_exceeded")
    assert "--request-timeout" in response["error"]["message"]


def test_one_app_cannot_starve_another(tmp_path: Path, gate: threading.Event) -> None:
    apps = [App(id="busy"), App(id="other")]
    service = make_service(apps, workers=2, max_app_jobs=1)
    segment = {"image": {"base64": b64(SCENE.image)}}

    async def scenario() -> tuple[list[Any], dict[str, Any]]:
        busy = [asyncio.create_task(call(service, "vision.segment", segment, app=apps[0], request_id=i))
                for i in range(6)]
        await asyncio.sleep(0)
        result(await asyncio.wait_for(call(service, "vision.models", {}, app=apps[1]), 30))  # answered meanwhile
        crop = {"image": {"base64": b64(SCENE.image[:24, :32])}}  # not held by the gate
        other_segment = await asyncio.wait_for(call(service, "vision.segment", crop, app=apps[1]), 30)
        assert not any(task.done() for task in busy)  # the busy app's first job still holds its only slot
        gate.set()
        return await asyncio.gather(*busy), other_segment

    busy, other = run(scenario())
    assert [result(other)["image"][k] for k in ("height", "width")] == [24, 32]
    assert [[result(r)["image"][k] for k in ("height", "width")] for r in busy] == [[48, 64]] * 6
