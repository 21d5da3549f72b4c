"""The IPC service in-process: JSON-RPC framing, grants, errors, results, sessions, schema.

The service runs on an event loop in this process with a registry holding only the
toy colour-threshold plugin (``test_ipc_toy.py``), whose answers are computed by hand
here. The real server processes are tested in ``test_ipc_stdio.py`` / ``test_ipc_http.py``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_ipc_support as support  # registered by tests/conftest.py
from pycocotools import mask as coco
from segmentkit.errors import (
    ImageError,
    ImageTooLargeError,
    MissingDependencyError,
    PromptError,
    SessionError,
    SpecError,
    TaskError,
    UnknownModelError,
    WeightsUnavailableError,
)
from segmentkit.ipc.errors import ErrorCode, from_exception
from segmentkit.ipc.limits import Limits
from segmentkit.ipc.manifest import App, ManifestError, apps_from_manifests, load_manifest
from segmentkit.ipc.service import Service
from segmentkit.registry import Registry
from segmentkit.testing.scenes import synthetic_scene

toy = support.load_sibling(support.TOY)

SCENE = synthetic_scene((48, 64), seed=3)


# --------------------------------------------------------------------------- harness


def make_service(apps: list[App] | None = None, **limits: Any) -> Service:
    registry = Registry(entry_points=False)
    registry.register(toy, name="toy")
    return Service(registry, apps or [App.local()], limits=Limits(**limits))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def call(service: Service, method: str, params: Any = None, app: App | None = None,
               notify: Any = None, request_id: Any = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    app = app or next(iter(service.apps.values()))
    return await service.handle(json.dumps(message), app, notify)


def result(response: dict[str, Any]) -> Any:
    assert "error" not in response, response
    return response["result"]


def error(response: dict[str, Any]) -> tuple[int, str]:
    assert "error" in response, response
    return response["error"]["code"], response["error"]["data"]["code"]


def b64(image: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def decode(rle: dict[str, Any]) -> np.ndarray:
    """Independent reference: pycocotools' own decoder."""
    return coco.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)


@pytest.fixture
def service() -> Service:
    return make_service()


# --------------------------------------------------------------------------- framing


@pytest.mark.parametrize(("raw", "code"), [
    ("{not json", ErrorCode.PARSE_ERROR),
    ('{"jsonrpc": "2.0", "id": 1, "method": "vision.models", "params": {"role": NaN}}', ErrorCode.PARSE_ERROR),
    ("[]", ErrorCode.INVALID_REQUEST),
    ("42", ErrorCode.INVALID_REQUEST),
    ('{"id": 1, "method": "vision.models"}', ErrorCode.INVALID_REQUEST),
    ('{"jsonrpc": "1.0", "id": 1, "method": "vision.models"}', ErrorCode.INVALID_REQUEST),
    ('{"jsonrpc": "2.0", "id": [1], "method": "vision.models"}', ErrorCode.INVALID_REQUEST),
    ('{"jsonrpc": "2.0", "id": 1, "method": 7}', ErrorCode.INVALID_REQUEST),
    ('{"jsonrpc": "2.0", "id": 1, "method": "vision.models", "param": {}}', ErrorCode.INVALID_REQUEST),
    ('{"jsonrpc": "2.0", "id": 1, "method": "vision.nope"}', ErrorCode.METHOD_NOT_FOUND),
    ('{"jsonrpc": "2.0", "id": 1, "method": "vision.models", "params": ["prompter"]}', ErrorCode.INVALID_PARAMS),
    ('{"jsonrpc": "2.0", "id": 1, "method": "vision.models", "params": {"role": "painter"}}',
     ErrorCode.INVALID_PARAMS),
    ('{"jsonrpc": "2.0", "id": 1, "method": "vision.segment", "params": {}}', ErrorCode.INVALID_PARAMS),
    ('{"jsonrpc": "2.0", "id": 1, "method": "vision.segment", "params": {"image": "a.png"}}',
     ErrorCode.INVALID_PARAMS),
    ('{"jsonrpc": "2.0", "id": 1, "method": "vision.segment", "params": {"image": {"url": "x"}}}',
     ErrorCode.INVALID_PARAMS),
    ('{"jsonrpc": "2.0", "id": 1, "method": "vision.segment", "params": {"image": {"path": "a", "base64": "b"}}}',
     ErrorCode.INVALID_PARAMS),
    ('{"jsonrpc": "2.0", "id": 1, "method": "vision.mask_from_prompt", "params": {"image": {"path": "a"}}}',
     ErrorCode.INVALID_PARAMS),
    (('{"jsonrpc": "2.0", "id": 1, "method": "vision.mask_from_prompt", '
      '"params": {"image": {"path": "a"}, "point": {"x": "left", "y": 1}}}'), ErrorCode.INVALID_PARAMS),
    ('{"jsonrpc": "2.0", "id": 1, "method": "vision.segment_video_start", "params": {"stream": false}}',
     ErrorCode.INVALID_PARAMS),
    (('{"jsonrpc": "2.0", "id": 1, "method": "vision.segment_video_propagate", '
      '"params": {"session": "s", "max_frames": 0}}'), ErrorCode.INVALID_PARAMS),
])
def test_malformed_requests_get_the_right_error(service: Service, raw: str, code: ErrorCode) -> None:
    response = run(service.handle(raw, App.local()))
    assert response["jsonrpc"] == "2.0"
    assert response["error"]["code"] == code
    assert response["error"]["message"]


def test_error_response_keeps_the_request_id_when_it_can(service: Service) -> None:
    response = run(service.handle('{"jsonrpc": "2.0", "id": "abc", "method": "nope"}', App.local()))
    assert response["id"] == "abc"
    response = run(service.handle('{"jsonrpc": "2.0", "id": [1], "method": "nope"}', App.local()))
    assert response["id"] is None


def test_invalid_params_say_where(service: Service) -> None:
    response = run(call(service, "vision.mask_from_prompt", {"image": {"path": "a"}, "point": {"x": 1}}))
    assert error(response) == (ErrorCode.INVALID_PARAMS, "invalid_params")
    assert "point.y" in response["error"]["message"]
    assert response["error"]["data"]["errors"][0]["loc"] == ["point", "y"]


def test_batches_and_notifications(service: Service) -> None:
    batch = json.dumps([
        {"jsonrpc": "2.0", "id": 1, "method": "vision.stats"},
        {"jsonrpc": "2.0", "method": "vision.stats"},  # notification: no answer
        {"jsonrpc": "2.0", "id": 2, "method": "nope"},
        5,
    ])
    answers = run(service.handle(batch, App.local()))
    assert [a.get("id") for a in answers] == [1, 2, None]
    assert "result" in answers[0]
    assert answers[1]["error"]["code"] == ErrorCode.METHOD_NOT_FOUND
    assert answers[2]["error"]["code"] == ErrorCode.INVALID_REQUEST
    assert run(service.handle('{"jsonrpc": "2.0", "method": "vision.stats"}', App.local())) is None
    assert run(service.handle('{"jsonrpc": "2.0", "method": "nope"}', App.local())) is None
    too_many = json.dumps([{"jsonrpc": "2.0", "id": i, "method": "vision.stats"} for i in range(40)])
    assert run(service.handle(too_many, App.local()))["error"]["code"] == ErrorCode.INVALID_REQUEST


def test_oversized_message_is_refused_with_its_id() -> None:
    service = make_service(max_request_bytes=200)
    raw = json.dumps({"jsonrpc": "2.0", "id": 9, "method": "vision.segment",
                      "params": {"image": {"base64": "A" * 500}}})
    response = run(service.handle(raw, App.local()))
    assert response["id"] == 9
    assert error(response) == (ErrorCode.PAYLOAD_TOO_LARGE, "payload_too_large")


@pytest.mark.parametrize(("exc", "code"), [
    (ImageError("x"), ErrorCode.BAD_IMAGE),
    (ImageTooLargeError("x"), ErrorCode.IMAGE_TOO_LARGE),
    (PromptError("x"), ErrorCode.BAD_PROMPT),
    (UnknownModelError("x"), ErrorCode.UNKNOWN_MODEL),
    (TaskError("x"), ErrorCode.UNSUPPORTED_TASK),
    (WeightsUnavailableError("x"), ErrorCode.WEIGHTS_UNAVAILABLE),
    (MissingDependencyError("p", "pip install p"), ErrorCode.MISSING_DEPENDENCY),
    (SpecError("x"), ErrorCode.PLUGIN_ERROR),
    (SessionError("x"), ErrorCode.SESSION_ERROR),
    (ZeroDivisionError("x"), ErrorCode.INTERNAL_ERROR),
])
def test_segmentkit_errors_map_to_stable_codes(exc: Exception, code: ErrorCode) -> None:
    error = from_exception(exc)
    assert error.rpc_code == code
    assert error.to_json()["data"]["code"] == (getattr(exc, "code", None) or "internal_error")


# --------------------------------------------------------------------------- results


def test_mask_from_prompt_returns_the_colour_mask_as_rle_and_png(service: Service) -> None:
    params = {"image": {"base64": b64(SCENE.image)}, "point": {"x": SCENE.inside[0], "y": SCENE.inside[1]},
              "formats": ["png"]}
    out = result(run(call(service, "vision.mask_from_prompt", params)))
    expected = toy.color_mask(SCENE.image, SCENE.image[int(SCENE.inside[1]), int(SCENE.inside[0])])
    (mask,) = out["masks"]
    assert out["model"]["id"] == "toy-color" and out["image"] == {"width": 64, "height": 48, "path": None}
    assert out["kind"] == "prompt" and out["prompts"] == [[{"kind": "point", "x": SCENE.inside[0],
                                                             "y": SCENE.inside[1], "positive": True}]]
    assert np.array_equal(decode(mask["rle"]), expected)
    ys, xs = np.nonzero(expected)
    assert mask["bbox"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert mask["area"] == expected.sum() and mask["object_id"] == 1
    assert mask["score"] == pytest.approx(0.9)
    from PIL import Image

    png = np.asarray(Image.open(io.BytesIO(base64.b64decode(out["files"]["image.mask-0.png"]))))
    assert np.array_equal(png > 0, expected)


def test_multimask_and_prompt_kinds(service: Service) -> None:
    image = {"base64": b64(SCENE.image)}
    out = result(run(call(service, "vision.mask_from_prompt",
                          {"image": image, "box": dict(zip(("x0", "y0", "x1", "y1"), SCENE.box)), "multimask": True})))
    areas = [m["area"] for m in out["masks"]]
    assert len(areas) == 3 and areas == sorted(areas)  # tolerances 20, 40, 80
    bad = run(call(service, "vision.mask_from_prompt", {"image": image, "text": "a cat"}))
    assert error(bad) == (ErrorCode.BAD_PROMPT, "bad_prompt")
    outside = run(call(service, "vision.mask_from_prompt", {"image": image, "point": {"x": 64.5, "y": 3}}))
    assert error(outside) == (ErrorCode.BAD_PROMPT, "bad_prompt")
    flipped = run(call(service, "vision.mask_from_prompt",
                       {"image": image, "box": {"x0": 30, "y0": 5, "x1": 10, "y1": 20}}))
    assert error(flipped) == (ErrorCode.BAD_PROMPT, "bad_prompt")


def test_segment_returns_masks_and_label_map(service: Service) -> None:
    out = result(run(call(service, "vision.segment", {"image": {"base64": b64(SCENE.image)}, "formats": ["labels"]})))
    pixels = SCENE.image.astype(float)
    expected = np.linalg.norm(pixels[:, :, None] - toy.PALETTE[None, None], axis=3).argmin(axis=2)
    assert out["kind"] == "semantic"
    segments = out["masks"]
    assert [s["class_id"] for s in segments] == sorted(np.unique(expected).tolist())
    for segment in segments:
        assert segment["label"] == toy.LABELS[segment["class_id"]]
        assert np.array_equal(decode(segment["rle"]), expected == segment["class_id"])
    from PIL import Image

    labels = Image.open(io.BytesIO(base64.b64decode(out["files"]["image.labels.png"])))
    assert labels.mode == "P" and np.array_equal(np.asarray(labels), expected)  # the one label-map encoding
    assert {m["label"] for m in out["masks"]} == {toy.LABELS[i] for i in np.unique(expected)}
    task = run(call(service, "vision.segment", {"image": {"base64": b64(SCENE.image)}, "task": "panoptic"}))
    assert error(task) == (ErrorCode.UNSUPPORTED_TASK, "unsupported_task")


@pytest.mark.parametrize(("image", "code"), [
    ({"base64": "not base64!"}, ErrorCode.BAD_IMAGE),
    ({"base64": base64.b64encode(b"plain text, not an image").decode()}, ErrorCode.BAD_IMAGE),
    ({"base64": "data:image/png;base64," + b64(SCENE.image)}, None),
])
def test_image_payloads(service: Service, image: dict[str, str], code: ErrorCode | None) -> None:
    response = run(call(service, "vision.segment", {"image": image}))
    if code is None:
        assert result(response)["image"] == {"width": 64, "height": 48, "path": None}
    else:
        assert response["error"]["code"] == code


def test_pixel_limit() -> None:
    service = make_service(max_pixels=48 * 64 - 1)
    response = run(call(service, "vision.segment", {"image": {"base64": b64(SCENE.image)}}))
    assert error(response) == (ErrorCode.IMAGE_TOO_LARGE, "image_too_large")


# --------------------------------------------------------------------------- manifests and grants


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    granted = tmp_path / "granted"
    secret = tmp_path / "secret"
    support.save_png(granted / "in.png", SCENE.image)
    support.save_png(secret / "out.png", SCENE.image)
    (granted / "escape.png").symlink_to(secret / "out.png")
    (granted / "escape_dir").symlink_to(secret, target_is_directory=True)
    (tmp_path / "outside_link.png").symlink_to(granted / "in.png")
    return {"root": tmp_path, "granted": granted, "secret": secret}


def restricted(tree: dict[str, Path], camera: bool = False, models: tuple[str, ...] = ("toy",)) -> App:
    manifest = support.write_manifest(tree["root"] / "app.json", "com.example.app", list(models),
                                      [tree["granted"]], camera)
    return load_manifest(manifest)


def test_paths_are_checked_after_resolving_links_and_dots(tree: dict[str, Path]) -> None:
    app = restricted(tree)
    service = make_service([app])
    granted = tree["granted"]

    def segment(path: Path | str) -> dict[str, Any]:
        return run(call(service, "vision.segment", {"image": {"path": str(path)}}))

    assert result(segment(granted / "in.png"))["image"]["height"] == 48
    assert result(segment(tree["root"] / "outside_link.png"))["image"]["height"] == 48  # link into the grant
    for path in [tree["secret"] / "out.png", granted / ".." / "secret" / "out.png", granted / "escape.png",
                 granted / "escape_dir" / "out.png", "/etc/passwd", granted / ".." / "nothing.png", "relative.png"]:
        assert error(segment(path)) == (ErrorCode.PATH_DENIED, "path_denied"), path
    assert error(segment(granted / "missing.png")) == (ErrorCode.BAD_IMAGE, "bad_image")
    assert error(segment(granted)) == (ErrorCode.BAD_IMAGE, "bad_image")  # a folder is not an image


def test_models_are_checked_against_the_grant(tree: dict[str, Path]) -> None:
    service = make_service([restricted(tree, models=("toy",))])  # granted by alias
    assert [m["card"]["id"] for m in result(run(call(service, "vision.models")))["models"]] == ["toy-color"]
    image = {"base64": b64(SCENE.image)}
    assert result(run(call(service, "vision.segment", {"image": image})))["model"]["id"] == "toy-color"  # default
    assert result(run(call(service, "vision.segment", {"image": image, "model": "toy-color"})))
    denied = run(call(service, "vision.segment", {"image": image, "model": "classic"}))
    assert error(denied) == (ErrorCode.MODEL_DENIED, "model_denied")
    assert denied["error"]["data"]["model"] == "classic"

    nothing = make_service([restricted(tree, models=())])
    assert result(run(call(nothing, "vision.models")))["models"] == []
    assert error(run(call(nothing, "vision.segment", {"image": image}))) == (ErrorCode.UNKNOWN_MODEL, "unknown_model")
    assert error(run(call(nothing, "vision.segment", {"image": image, "model": "toy"})))[0] == ErrorCode.MODEL_DENIED

    everything = make_service([restricted(tree, models=("*",))])
    unknown = run(call(everything, "vision.segment", {"image": image, "model": "toy-colour"}))
    assert error(unknown) == (ErrorCode.UNKNOWN_MODEL, "unknown_model")
    assert "toy-color" in unknown["error"]["message"]  # close match offered


def test_camera_needs_the_grant(tree: dict[str, Path]) -> None:
    frame = {"camera": b64(SCENE.image)}
    for camera in (False, True):
        service = make_service([restricted(tree, camera=camera)])
        segment = run(call(service, "vision.segment", {"image": frame}))
        start = run(call(service, "vision.segment_video_start", {"stream": True}))
        if camera:
            assert result(segment)["image"]["height"] == 48
            session = result(start)["session"]
            pushed = run(call(service, "vision.segment_video_push_frame", {"session": session, "image": frame}))
            assert result(pushed)["frame_index"] == 0
        else:
            assert error(segment) == (ErrorCode.CAMERA_DENIED, "camera_denied")
            assert error(start) == (ErrorCode.CAMERA_DENIED, "camera_denied")
            pushed = run(call(service, "vision.segment_video_push_frame", {"session": "x", "image": frame}))
            assert error(pushed) == (ErrorCode.CAMERA_DENIED, "camera_denied")


def test_manifest_validation(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"app": {"id": "a.b", "publisher": "me"}, "device": {"camera": True},
                                "capabilities": {"models": ["*"], "fs": {"user-selected": ["pics"]}}}))
    app = load_manifest(good)
    assert app.camera and app.models is None and app.roots == ((tmp_path / "pics").resolve(),)
    cases = {
        "typo.json": {"app": {"id": "a"}, "capabilities": {"model": ["x"]}},
        "noapp.json": {"capabilities": {}},
        "badid.json": {"app": {"id": "../evil"}},
        "badcamera.json": {"app": {"id": "a"}, "capabilities": {"device": {"camera": "yes please"}}},
    }
    for name, document in cases.items():
        (tmp_path / name).write_text(json.dumps(document))
        with pytest.raises(ManifestError):
            load_manifest(tmp_path / name)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ManifestError):
        load_manifest(tmp_path / "broken.json")
    with pytest.raises(ManifestError):
        apps_from_manifests([good, good])
    bare = load_manifest(_write(tmp_path / "bare.json", {"app": {"id": "bare"}}))
    assert bare.models == () and bare.roots == () and not bare.camera  # grants nothing unless listed


def _write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


# --------------------------------------------------------------------------- video sessions


@pytest.fixture
def video(tmp_path: Path) -> tuple[Path, list[Any]]:
    return tmp_path / "clip", support.write_frames(tmp_path / "clip", count=6)


def _start_and_prompt(service: Service, folder: Path, scenes: list[Any], app: App | None = None) -> str:
    started = result(run(call(service, "vision.segment_video_start", {"source": {"path": str(folder)}}, app=app)))
    assert started["num_frames"] == len(scenes) and started["frame_size"] == [48, 64]
    x, y = scenes[0].inside
    added = result(run(call(service, "vision.segment_video_add_prompt",
                            {"session": started["session"], "frame": 0, "object_id": 5, "point": {"x": x, "y": y}},
                            app=app)))
    assert added["frame_index"] == 0 and [m["object_id"] for m in added["masks"]] == [5]
    return started["session"]


def test_propagate_collects_or_streams_every_frame(service: Service, video: tuple[Path, list[Any]]) -> None:
    folder, scenes = video
    session = _start_and_prompt(service, folder, scenes)
    color = scenes[0].image[int(scenes[0].inside[1]), int(scenes[0].inside[0])].astype(float)
    out = result(run(call(service, "vision.segment_video_propagate", {"session": session})))
    assert out["frames_done"] == 6 and not out["cancelled"]
    for frame, scene in zip(out["frames"], scenes):
        assert np.array_equal(decode(frame["masks"][0]["rle"]), toy.color_mask(scene.image, color))

    notes: list[tuple[str, dict[str, Any]]] = []

    async def notify(method: str, params: dict[str, Any]) -> None:
        notes.append((method, params))

    streamed = result(run(call(service, "vision.segment_video_propagate",
                               {"session": session, "start": 4, "reverse": True, "max_frames": 3},
                               notify=notify, request_id="p1")))
    assert streamed["frames"] is None and streamed["frames_done"] == 3
    assert [m for m, _ in notes] == ["vision.segment_video_progress"] * 3
    assert [p["frame"]["frame_index"] for _, p in notes] == [4, 3, 2]
    assert [(p["done"], p["total"], p["request_id"]) for _, p in notes] == [(1, 3, "p1"), (2, 3, "p1"), (3, 3, "p1")]
    closed = result(run(call(service, "vision.segment_video_close", {"session": session})))
    assert closed == {"session": session, "closed": True}
    gone = run(call(service, "vision.segment_video_propagate", {"session": session}))
    assert error(gone) == (ErrorCode.SESSION_ERROR, "session_error")


def _granted_session(tmp_path: Path, video: tuple[Path, list[Any]]) -> tuple[Any, str, Path]:
    """(rpc, session, granted): a prompted session of an app granted the video and a folder to write into."""
    folder, scenes = video
    granted = tmp_path / "granted"
    granted.mkdir()
    app = App(id="app", roots=(folder.resolve(), granted.resolve()))
    service = make_service([app])
    session = _start_and_prompt(service, folder, scenes, app=app)
    return (lambda method, **params: run(call(service, method, params, app=app))), session, granted


def test_both_directions_remove_reset_save_and_restore(tmp_path: Path, video: tuple[Path, list[Any]]) -> None:
    scenes = video[1]
    rpc, session, granted = _granted_session(tmp_path, video)
    result(rpc("vision.segment_video_add_prompt", session=session, frame=2, object_id=6, point={"x": 1, "y": 1}))

    both = result(rpc("vision.segment_video_propagate", session=session, start=2, direction="both"))
    assert [f["frame_index"] for f in both["frames"]] == [2, 3, 4, 5, 1, 0]

    saved = result(rpc("vision.segment_video_save", session=session, path=str(granted / "s.npz")))
    assert Path(saved["path"]) == (granted / "s.npz").resolve() and Path(saved["path"]).stat().st_size > 0
    outside = rpc("vision.segment_video_save", session=session, path=str(tmp_path / "s.npz"))
    assert error(outside) == (ErrorCode.PATH_DENIED, "path_denied") and not (tmp_path / "s.npz").exists()

    assert result(rpc("vision.segment_video_remove_object", session=session, object_id=5))["object_ids"] == [6]
    assert error(rpc("vision.segment_video_remove_object", session=session, object_id=5))[1] == "session_error"
    one = result(rpc("vision.segment_video_propagate", session=session, start=0, max_frames=1))["frames"]
    assert [m["object_id"] for m in one[0]["masks"]] == [6]
    assert result(rpc("vision.segment_video_reset", session=session))["object_ids"] == []
    assert error(rpc("vision.segment_video_propagate", session=session))[1] == "session_error"

    restored = result(rpc("vision.segment_video_restore", path=saved["path"]))
    assert restored["session"] != session and restored["num_frames"] == len(scenes)
    again = result(rpc("vision.segment_video_propagate", session=restored["session"], start=2, direction="both"))
    assert again["frames"] == both["frames"]  # both objects back, the same masks


def test_cancel_stops_a_running_propagation(video: tuple[Path, list[Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    folder, scenes = video
    monkeypatch.setenv("TOY_DELAY_S", "0.05")
    service = make_service()
    session = _start_and_prompt(service, folder, scenes)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], int]:
        seen = asyncio.Event()
        count = 0

        async def notify(method: str, params: dict[str, Any]) -> None:
            nonlocal count
            count += 1
            seen.set()

        running = asyncio.create_task(call(service, "vision.segment_video_propagate", {"session": session},
                                           notify=notify))
        await seen.wait()
        busy = await call(service, "vision.segment_video_add_prompt",
                          {"session": session, "frame": 0, "object_id": 1, "point": {"x": 1, "y": 1}})
        cancelled = await call(service, "vision.segment_video_cancel", {"session": session})
        return await running, cancelled, busy, count

    final, cancelled, busy, count = run(scenario())
    assert error(busy) == (ErrorCode.SESSION_BUSY, "session_busy")
    assert result(cancelled) == {"session": session, "cancelled": True}
    out = result(final)
    assert out["cancelled"] and out["frames_done"] == count < 6
    again = result(run(call(service, "vision.segment_video_cancel", {"session": session})))
    assert again["cancelled"] is False  # nothing running any more
    assert result(run(call(service, "vision.segment_video_propagate", {"session": session, "max_frames": 2})))[
        "frames_done"] == 2


def test_sessions_are_per_app_and_limited(tree: dict[str, Path], video: tuple[Path, list[Any]]) -> None:
    folder, scenes = video
    other = App(id="other", models=None, roots=None, camera=False)
    mine = App(id="mine")
    service = make_service([mine, other], max_sessions=2)
    session = _start_and_prompt(service, folder, scenes, app=mine)
    stolen = run(call(service, "vision.segment_video_propagate", {"session": session}, app=other))
    assert error(stolen) == (ErrorCode.SESSION_ERROR, "session_error")
    assert error(run(call(service, "vision.segment_video_close", {"session": session}, app=other)))[0] == \
        ErrorCode.SESSION_ERROR
    _start_and_prompt(service, folder, scenes, app=mine)
    full = run(call(service, "vision.segment_video_start", {"source": {"path": str(folder)}}, app=mine))
    assert error(full) == (ErrorCode.SESSION_ERROR, "session_error")
    assert result(run(call(service, "vision.stats", app=mine)))["sessions"] == 2
    assert result(run(call(service, "vision.stats", app=other)))["sessions"] == 0
    _start_and_prompt(service, folder, scenes, app=other)  # the other app's own quota


def test_idle_sessions_are_evicted_by_the_sweeper(video: tuple[Path, list[Any]]) -> None:
    folder, _ = video
    service = make_service(idle_timeout_s=0.2, sweep_interval_s=0.05)

    async def scenario() -> tuple[dict[str, Any], int]:
        await service.start()
        session = result(await call(service, "vision.segment_video_start", {"source": {"path": str(folder)}}))[
            "session"]
        for _ in range(200):  # bounded wait for the sweeper
            if len(service.video.tables["local"]) == 0:
                break
            await asyncio.sleep(0.05)
        gone = await call(service, "vision.segment_video_add_prompt",
                          {"session": session, "frame": 0, "object_id": 1, "point": {"x": 1, "y": 1}})
        await service.aclose()
        return gone, len(service.video.tables["local"])

    gone, left = run(scenario())
    assert left == 0
    assert error(gone) == (ErrorCode.SESSION_ERROR, "session_error")
    assert "idle" in gone["error"]["message"]


def test_bad_video_and_prompts(service: Service, tmp_path: Path, video: tuple[Path, list[Any]]) -> None:
    folder, _ = video
    (tmp_path / "empty").mkdir()
    empty = run(call(service, "vision.segment_video_start", {"source": {"path": str(tmp_path / "empty")}}))
    assert error(empty) == (ErrorCode.BAD_VIDEO, "bad_video")
    session = result(run(call(service, "vision.segment_video_start", {"source": {"path": str(folder)}})))["session"]
    early = run(call(service, "vision.segment_video_propagate", {"session": session}))
    assert error(early) == (ErrorCode.SESSION_ERROR, "session_error")  # nothing prompted yet
    out_of_range = run(call(service, "vision.segment_video_add_prompt",
                            {"session": session, "frame": 99, "object_id": 1, "point": {"x": 1, "y": 1}}))
    assert error(out_of_range) == (ErrorCode.SESSION_ERROR, "session_error")
    mask = np.zeros((48, 64), dtype=bool)
    mask[20:30, 25:35] = True
    from segmentkit.rle import encode

    by_mask = result(run(call(service, "vision.segment_video_add_prompt",
                              {"session": session, "frame": 0, "object_id": 2, "mask": encode(mask)})))
    assert [m["object_id"] for m in by_mask["masks"]] == [2]
    wrong_size = run(call(service, "vision.segment_video_add_prompt",
                          {"session": session, "frame": 0, "object_id": 3, "mask": encode(mask[:10])}))
    assert error(wrong_size) == (ErrorCode.BAD_PROMPT, "bad_prompt")
    garbage = run(call(service, "vision.segment_video_add_prompt",
                       {"session": session, "frame": 0, "object_id": 3, "mask": {"size": [48, 64], "counts": ""}}))
    assert error(garbage) == (ErrorCode.BAD_PROMPT, "bad_prompt")
    not_stream = run(call(service, "vision.segment_video_push_frame",
                          {"session": session, "image": {"camera": b64(SCENE.image)}}))
    assert error(not_stream) == (ErrorCode.SESSION_ERROR, "session_error")


# --------------------------------------------------------------------------- schema


def test_schema_file_is_up_to_date() -> None:
    from segmentkit.ipc.schema_doc import render

    committed = Path(__file__).resolve().parents[1] / "docs" / "ipc.schema.json"
    assert committed.read_text(encoding="utf-8") == render(), (
        "docs/ipc.schema.json is stale: python -m segmentkit.ipc.schema_doc docs/ipc.schema.json"
    )


def test_responses_match_the_schema(service: Service, video: tuple[Path, list[Any]]) -> None:
    from segmentkit.ipc.schema_doc import validator

    folder, scenes = video
    image = {"base64": b64(SCENE.image)}
    x, y = SCENE.inside
    notes: list[dict[str, Any]] = []

    async def notify(method: str, params: dict[str, Any]) -> None:
        notes.append(params)

    calls: list[tuple[str, dict[str, Any]]] = [
        ("vision.models", {}),
        ("vision.segment", {"image": image, "formats": ["png"]}),
        ("vision.mask_from_prompt", {"image": image, "point": {"x": x, "y": y}, "multimask": True}),
        ("vision.stats", {}),
    ]
    for method, params in calls:
        validator("params", method).validate(params)
        validator("result", method).validate(result(run(call(service, method, params))))
    session = _start_and_prompt(service, folder, scenes)
    for method, params, streaming in [
        ("vision.segment_video_propagate", {"session": session}, False),
        ("vision.segment_video_propagate", {"session": session, "max_frames": 2}, True),
        ("vision.segment_video_cancel", {"session": session}, False),
        ("vision.segment_video_close", {"session": session}, False),
    ]:
        validator("params", method).validate(params)
        out = result(run(call(service, method, params, notify=notify if streaming else None)))
        validator("result", method).validate(out)
    assert len(notes) == 2
    for note in notes:
        validator("notification", "vision.segment_video_progress").validate(note)
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        validator("params", "vision.segment").validate({"image": {"url": "x"}})


# --------------------------------------------------------------------------- lazy imports


def test_importing_the_client_loads_no_server_stack() -> None:
    code = (
        "import sys, segmentkit, segmentkit.ipc, segmentkit.client, segmentkit.ipc.service;"
        "bad = [m for m in ('starlette', 'uvicorn', 'httpx', 'websockets', 'torch') if m in sys.modules];"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": ""})
    assert out.stdout.strip() == "[]"


def test_export_writes_the_tracked_masks_in_video_formats(tmp_path: Path, video: tuple[Path, list[Any]]) -> None:
    from PIL import Image

    folder = video[0]
    rpc, session, granted = _granted_session(tmp_path, video)
    frames = result(rpc("vision.segment_video_propagate", session=session, max_frames=4))["frames"]
    done = result(rpc("vision.segment_video_export", session=session, dir=str(granted),
                      formats=["davis", "youtube-vis"]))
    root = granted.resolve()
    assert done["paths"] == [str(root / "davis" / "clip"), str(root / "youtube-vis.json")]
    names = sorted(p.name for p in folder.iterdir())  # DAVIS names follow the input frames
    assert sorted(p.name for p in (root / "davis" / "clip").iterdir()) == names[:4]
    vis = json.loads((root / "youtube-vis.json").read_text())["annotations"]
    assert [a["object_id"] for a in vis] == [5] and vis[0]["segmentations"][4:] == [None, None]
    for frame in frames:
        mask = decode(frame["masks"][0]["rle"])
        labels = np.array(Image.open(root / "davis" / "clip" / names[frame["frame_index"]]))
        assert np.array_equal(labels, np.where(mask, 5, 0))
        assert np.array_equal(decode(vis[0]["segmentations"][frame["frame_index"]]), mask)
    outside = rpc("vision.segment_video_export", session=session, dir=str(tmp_path))
    assert error(outside) == (ErrorCode.PATH_DENIED, "path_denied")
    assert error(rpc("vision.segment_video_export", session=session, dir=str(granted), formats=["gif"]))[0] == \
        ErrorCode.INVALID_OPTIONS


def test_export_writes_a_video_format_of_the_service_registry(tmp_path: Path, video: tuple[Path, list[Any]]) -> None:
    """A plugin's video format (a FrameWriter) in the Service's own registry is accepted over IPC
    and written; the global registry is not consulted."""
    import segmentkit
    from segmentkit.formats import OutputFormat
    from segmentkit.video_export import FrameWriter

    class CountWriter(FrameWriter):
        """frames.txt: the frame indices written."""

        name = "frame-count"

        def __init__(self, target: Any) -> None:
            super().__init__(target)
            self.seen: list[int] = []

        def add(self, frame: Any) -> None:
            self.seen.append(frame.frame_index)

        def close(self, document: Any) -> Any:
            return self._put("frames.txt", " ".join(map(str, sorted(self.seen))).encode())

    class Formats:
        @segmentkit.hookimpl
        def segmentkit_formats(self) -> list[Any]:
            return [OutputFormat("frame-count", CountWriter, "frame indices", "video")]

    folder = video[0]
    granted = tmp_path / "granted"
    granted.mkdir()
    app = App(id="app", roots=(folder.resolve(), granted.resolve()))
    service = make_service([app])
    service.registry.register(Formats(), name="frame-count-format")
    session = _start_and_prompt(service, folder, video[1], app=app)

    def rpc(method: str, **params: Any) -> Any:
        return run(call(service, method, params, app=app))

    result(rpc("vision.segment_video_propagate", session=session, max_frames=3))
    done = result(rpc("vision.segment_video_export", session=session, dir=str(granted), formats=["frame-count"]))
    assert done["paths"] == [str(granted.resolve() / "frames.txt")]
    assert (granted / "frames.txt").read_text() == "0 1 2"

