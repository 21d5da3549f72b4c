"""`segmentkit serve --port 0` as a real process: tokens, Host / Origin checks, every method
over HTTP and WebSocket, two apps with different grants, concurrent clients."""

from __future__ import annotations

import base64
import io
import json
import signal
import socket
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_ipc_support as support  # registered by tests/conftest.py
from segmentkit.client import Client, RpcError
from segmentkit.ipc.errors import ErrorCode
from segmentkit.ipc.schema_doc import validator
from segmentkit.testing.scenes import synthetic_scene

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
websockets_sync = pytest.importorskip("websockets.sync.client")
pytest.importorskip("segmentkit_classic", reason="needs the classic plugin: pip install -e plugins/classic")

SCENE = synthetic_scene((48, 64), seed=11)
A, B = "com.example.a", "com.example.b"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("http")
    dir_a, dir_b = tmp / "a", tmp / "b"
    support.save_png(dir_a / "scene.png", SCENE.image)
    support.save_png(dir_b / "scene.png", SCENE.image)
    scenes = support.write_frames(dir_a / "clip", count=6)
    long_clip = support.write_frames(dir_a / "long", count=150, size=(16, 24), step=0.05)
    manifest_a = support.write_manifest(tmp / "a.json", A, ["classic", "toy-color"], [dir_a], True)
    manifest_b = support.write_manifest(tmp / "b.json", B, ["toy"], [dir_b], False)
    env = support.server_env(TOY_DELAY_S="0.02")
    with support.http_server(tmp, "--manifest", str(manifest_a), "--manifest", str(manifest_b),
                             "--max-request-mb", "1", env=env) as info:
        info.update(dir_a=dir_a, dir_b=dir_b, scenes=scenes, long_clip=long_clip)
        yield info


def post(server: Any, body: Any, token: str | None = None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(f"{server['base']}/rpc", content=data, headers=headers, timeout=60)


def rpc(method: str, params: Any = None, request_id: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, **({"params": params} if params else {})}


def client(server: Any, app: str) -> Client:
    return Client.http(server["base"], server["tokens"][app], timeout=60)


def png64(image: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


# --------------------------------------------------------------------------- the door


def test_tokens_hosts_and_origins(server: Any) -> None:
    token = server["tokens"][A]
    stats = rpc("vision.stats")
    ok = post(server, stats, token)
    assert ok.status_code == 200 and ok.json()["result"]["app"] == A
    assert post(server, stats, server["tokens"][B]).json()["result"]["app"] == B  # the token picks the app
    for response, status, code in [
        (post(server, stats), 401, ErrorCode.UNAUTHORIZED),
        (post(server, stats, "wrong"), 401, ErrorCode.UNAUTHORIZED),
        (httpx.post(f"{server['base']}/rpc?token={token}", content=json.dumps(stats)), 401, ErrorCode.UNAUTHORIZED),
        (post(server, stats, token, Host="evil.example:80"), 403, ErrorCode.FORBIDDEN),  # DNS rebinding
        (post(server, stats, Origin="http://evil.example"), 403, ErrorCode.FORBIDDEN),
    ]:
        assert response.status_code == status
        assert response.json()["error"]["code"] == code
    assert post(server, stats, token, Origin="http://evil.example").status_code == 200
    assert post(server, stats, token, Host=f"localhost:{server['port']}").status_code == 200

    page = httpx.get(f"{server['base']}/")
    assert page.status_code == 200
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["x-content-type-options"] == "nosniff"
    web = Path(__file__).resolve().parents[1] / "core" / "segmentkit" / "web" / "index.html"
    if web.exists():
        assert page.text == web.read_text(encoding="utf-8")
    assert httpx.get(f"{server['base']}/", headers={"Host": "evil.example"}).status_code == 403

    ws_url = f"ws://127.0.0.1:{server['port']}/ws"
    from websockets.exceptions import InvalidStatus

    # The rebinding case names evil.example in the URL (so in the Host header: websockets 17 adds a
    # second Host header for additional_headers instead of replacing it) and connects to loopback.
    for url in (ws_url, f"{ws_url}?token=wrong", f"ws://evil.example:{server['port']}/ws?token={token}"):
        with pytest.raises(InvalidStatus):
            sock = socket.create_connection(("127.0.0.1", server["port"]), timeout=10)
            websockets_sync.connect(url, sock=sock, open_timeout=10).close()
    with websockets_sync.connect(f"{ws_url}?token={token}", open_timeout=10) as ws:
        ws.send(json.dumps(stats))
        assert json.loads(ws.recv(timeout=30))["result"]["app"] == A


def test_oversized_requests_are_refused_and_the_server_stays_up(server: Any) -> None:
    token = server["tokens"][A]
    body = json.dumps(rpc("vision.segment", {"image": {"base64": "A" * 1_200_000}}, request_id=77))
    response = post(server, body, token)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == ErrorCode.PAYLOAD_TOO_LARGE
    with websockets_sync.connect(f"ws://127.0.0.1:{server['port']}/ws?token={token}", open_timeout=10) as ws:
        ws.send(body)
        answer = json.loads(ws.recv(timeout=30))
        assert answer["id"] == 77 and answer["error"]["code"] == ErrorCode.PAYLOAD_TOO_LARGE
        ws.send("{broken")
        assert json.loads(ws.recv(timeout=30))["error"]["code"] == ErrorCode.PARSE_ERROR
        ws.send(json.dumps(rpc("vision.stats", request_id=78)))
        assert json.loads(ws.recv(timeout=30))["id"] == 78
    assert post(server, rpc("vision.stats"), token).status_code == 200


# --------------------------------------------------------------------------- methods


def test_lone_surrogates_and_invalid_requests_are_answered(server: Any) -> None:
    token = server["tokens"][B]
    surrogate = '{"jsonrpc": "2.0", "id": "\\ud800", "method": "vision.models"}'
    batch = f'[{surrogate}, {{"jsonrpc": "2.0", "method": 1}}, {{"jsonrpc": "2.0", "id": 3, "method": "vision.stats"}}]'
    answer = post(server, surrogate, token)
    assert answer.status_code == 200 and answer.json()["id"] == "\ud800"
    answers = post(server, batch, token).json()
    assert [a["id"] for a in answers] == ["\ud800", None, 3] and answers[1]["error"]["code"] == -32600
    with websockets_sync.connect(f"ws://127.0.0.1:{server['port']}/ws?token={token}") as ws:
        ws.send(surrogate)
        assert json.loads(ws.recv(timeout=30))["id"] == "\ud800"
        ws.send(batch)
        assert [a["id"] for a in json.loads(ws.recv(timeout=30))] == ["\ud800", None, 3]


def test_every_method_over_http_and_websocket(server: Any) -> None:
    scenes = server["scenes"]
    with client(server, A) as sk:
        assert sorted(m.card.id for m in sk.models()) == ["classic", "toy-color"]
        image = server["dir_a"] / "scene.png"
        seg = sk.segment(image, model="classic")
        assert seg.image_size == (48, 64) and len(seg.masks)
        prompt = sk.mask_from_prompt(image, box=SCENE.box, model="classic")
        mask = prompt.masks[0]
        assert (mask & SCENE.mask).sum() / (mask | SCENE.mask).sum() > 0.8

        session = sk.video_start(server["dir_a"] / "clip", model="toy-color")
        sk.video_add_prompt(session, 0, 4, point=scenes[0].inside)
        streamed = list(sk.video_propagate(session, max_frames=4))  # WebSocket notifications
        assert [f.frame_index for f in streamed] == [0, 1, 2, 3]
        collected = sk.call("vision.segment_video_propagate", {"session": session.id})  # one POST answer
        assert collected["frames_done"] == 6 and [f["frame_index"] for f in collected["frames"]] == list(range(6))
        for a, b in zip(streamed, collected["frames"]):
            assert a.masks[0].to_rle()["counts"] == b["masks"][0]["rle"]["counts"]
        assert sk.video_cancel(session) is False
        sk.video_close(session)

        live = sk.video_start(stream=True, model="toy")
        assert live.push_frame(scenes[0].image).frame_index == 0
        sk.video_close(live)


def test_live_responses_match_the_schema(server: Any) -> None:
    token = server["tokens"][A]
    scenes = server["scenes"]
    image = {"path": str(server["dir_a"] / "scene.png")}
    x, y = SCENE.inside

    def checked(method: str, params: dict[str, Any]) -> Any:
        validator("params", method).validate(params)
        answer = post(server, rpc(method, params), token).json()
        validator("result", method).validate(answer["result"])
        return answer["result"]

    checked("vision.models", {})
    checked("vision.segment", {"image": image, "model": "classic", "formats": ["png", "labels"]})
    checked("vision.mask_from_prompt", {"image": image, "point": {"x": x, "y": y}, "model": "classic",
                                        "multimask": True})
    session = checked("vision.segment_video_start", {"source": {"path": str(server["dir_a"] / "clip")},
                                                     "model": "toy-color"})["session"]
    x0, y0 = scenes[0].inside
    checked("vision.segment_video_add_prompt", {"session": session, "frame": 0, "object_id": 1,
                                                "point": {"x": x0, "y": y0}})
    checked("vision.segment_video_propagate", {"session": session, "max_frames": 2})
    with websockets_sync.connect(f"ws://127.0.0.1:{server['port']}/ws?token={token}", open_timeout=10) as ws:
        ws.send(json.dumps(rpc("vision.segment_video_propagate", {"session": session}, request_id="w")))
        while True:
            message = json.loads(ws.recv(timeout=60))
            if "method" in message:
                validator("notification", message["method"]).validate(message["params"])
                continue
            validator("result", "vision.segment_video_propagate").validate(message["result"])
            break
    checked("vision.segment_video_cancel", {"session": session})
    live = checked("vision.segment_video_start", {"stream": True, "model": "toy"})["session"]
    checked("vision.segment_video_push_frame", {"session": live, "image": {"camera": png64(scenes[1].image)}})
    checked("vision.segment_video_close", {"session": session})
    checked("vision.segment_video_close", {"session": live})
    checked("vision.stats", {})


def test_each_app_gets_only_its_grants(server: Any) -> None:
    with client(server, B) as sk:
        assert [m.card.id for m in sk.models()] == ["toy-color"]
        denials = [
            (lambda: sk.segment(server["dir_b"] / "scene.png", model="classic"), ErrorCode.MODEL_DENIED),
            (lambda: sk.segment(server["dir_a"] / "scene.png"), ErrorCode.PATH_DENIED),
            (lambda: sk.segment(server["dir_b"] / ".." / "a" / "scene.png"), ErrorCode.PATH_DENIED),
            (lambda: sk.segment({"camera": png64(SCENE.image)}), ErrorCode.CAMERA_DENIED),
            (lambda: sk.video_start(stream=True), ErrorCode.CAMERA_DENIED),
            (lambda: sk.video_start(server["dir_a"] / "clip"), ErrorCode.PATH_DENIED),
        ]
        for attempt, code in denials:
            with pytest.raises(RpcError) as info:
                attempt()
            assert info.value.rpc_code == code, info.value
        assert sk.segment(server["dir_b"] / "scene.png").kind == "semantic"  # toy-color, still serving


def test_sessions_are_isolated_between_apps(server: Any) -> None:
    scenes = server["scenes"]
    with client(server, A) as a1, client(server, A) as a2, client(server, B) as b:
        session = a1.video_start(server["dir_a"] / "clip", model="toy")
        a1.video_add_prompt(session, 0, 1, point=scenes[0].inside)
        for attempt in (lambda: b.video_add_prompt(session, 0, 2, point=(1, 1)),
                        lambda: list(b.video_propagate(session)), lambda: b.video_cancel(session),
                        lambda: b.video_close(session)):
            with pytest.raises(RpcError) as info:
                attempt()
            assert info.value.rpc_code == ErrorCode.SESSION_ERROR
        assert len(list(a2.video_propagate(session, max_frames=2))) == 2  # same app, other client
        assert b.stats().sessions == 0
        a2.video_close(session)


def test_closing_the_websocket_stops_its_propagation(server: Any) -> None:
    token = server["tokens"][A]
    first = server["long_clip"][0]
    with client(server, A) as sk:
        session = sk.video_start(server["dir_a"] / "long", model="toy")
        sk.video_add_prompt(session, 0, 1, point=first.inside)

        def tracker_steps() -> int:
            return {(m.model, m.role): m.calls for m in sk.stats().loaded}[("toy-color", "tracker")]

        before = tracker_steps()
        with websockets_sync.connect(f"ws://127.0.0.1:{server['port']}/ws?token={token}", open_timeout=10) as ws:
            ws.send(json.dumps(rpc("vision.segment_video_propagate", {"session": session.id})))
            assert json.loads(ws.recv(timeout=60))["method"] == "vision.segment_video_progress"
        for _ in range(500):  # busy until the server notices the closed socket (150 frames take 3 s)
            try:
                sk.video_add_prompt(session, 0, 2, point=first.inside)
                break
            except RpcError as exc:
                assert exc.rpc_code == ErrorCode.SESSION_BUSY
                threading.Event().wait(0.02)
        else:
            pytest.fail("the session stayed busy after its WebSocket closed")
        assert tracker_steps() - before < 150, "the propagation kept running after its WebSocket closed"
        sk.video_close(session)


# --------------------------------------------------------------------------- concurrency


def test_concurrent_clients_share_one_loaded_model(tmp_path: Path) -> None:
    support.save_png(tmp_path / "scene.png", SCENE.image)
    loads = tmp_path / "loads.log"
    env = support.server_env(TOY_LOAD_LOG=str(loads))
    image = png64(SCENE.image)
    x, y = SCENE.inside
    with support.http_server(tmp_path, env=env) as server:
        token = server["token"]
        answers: list[Any] = []
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                with Client.http(server["base"], token, timeout=60) as sk:
                    for i in range(6):
                        if (n + i) % 2:
                            answers.append(sk.mask_from_prompt({"base64": image}, point=(x, y), model="toy"))
                        else:
                            answers.append(sk.segment({"base64": image}, model="toy"))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert len(answers) == 48
        prompts = {a[0].to_rle()["counts"] for a in answers if not hasattr(a, "kind")}
        segments = {tuple(r["counts"] for r in a.masks.to_coco_rle()) for a in answers if hasattr(a, "kind")}
        assert len(prompts) == 1 and len(segments) == 1  # every client got the same answer
        with Client.http(server["base"], token) as sk:
            stats = {(m.model, m.role): (m.loads, m.calls) for m in sk.stats().loaded}
        assert stats == {("toy-color", "prompter"): (1, 24), ("toy-color", "segmenter"): (1, 24)}
    log = server["log"].read_text()
    assert server["proc"].returncode in (0, -signal.SIGTERM) and "Traceback" not in log  # a clean shutdown
    assert f"http://127.0.0.1:{server['port']}/?token={token}" in log
    lines = loads.read_text().splitlines()
    assert len(lines) == 2 and len({line.split()[0] for line in lines}) == 1  # one load per role, one process
