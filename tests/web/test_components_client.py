"""VisionClient (from @segmentkit/components) against a real `segmentkit serve`, from another origin.

The host page (tests/web/host, its own port) imports the package and talks to a server
started with ``--allow-origin <host page's origin>``: every ``vision.*`` method over
HTTP and the WebSocket with the weightless ``classic`` model, errors with their documented
codes, an abort that cancels a running propagation on the service, and CORS refusing a
page of an origin that is not listed. Masks are checked against the scene (pycocotools).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from components_support import host_folder, static_site
from PIL import Image
from segmentkit.testing.scenes import synthetic_frames, synthetic_scene
from webui_support import UI, Server, decode, iou

FRAMES = 24  # enough that a propagation is still running when the first progress aborts it


def _png64(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def cors_server(browser: Any, host_site: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("serve-cors"), "--allow-origin", host_site)
    yield server.ready()
    server.stop()


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Any], Path]:
    frames = synthetic_frames(FRAMES, (96, 128), step=1.5)
    folder = tmp_path_factory.mktemp("frames")
    for i, scene in enumerate(frames):
        Image.fromarray(scene.image).save(folder / f"{i:05d}.png")
    return frames, folder


def _host(ui: UI, origin: str) -> UI:
    ui.page.goto(f"{origin}/element.html")
    ui.page.wait_for_function("window.ready === true")
    return ui


def test_every_method_across_origins(cors_server: Server, host_site: str, ui: UI,
                                     frames_dir: tuple[list[Any], Path], tmp_path: Path) -> None:
    scene = synthetic_scene((96, 128), seed=5)
    frames, folder = frames_dir
    out = _host(ui, host_site).page.evaluate("""async ({url, image, frame0, frame1, x, y, dir, work}) => {
        const { VisionClient } = window.sk;
        const client = new VisionClient(url);  // the URL `segmentkit serve` prints, token included
        const r = {};
        r.models = (await client.models()).models.map((m) => m.card.id);
        r.prompted = await client.maskFromPrompt({
            image: { base64: image }, model: 'classic', point: { x, y } });
        r.segmented = await client.segment({ image: { base64: image }, model: 'classic' });
        r.stats = Object.keys(await client.stats());
        // A video from a folder of frames: prompt, propagate with progress, save / restore / export, close.
        const v = await client.videoStart({ source: { path: dir }, model: 'classic' });
        r.start = v;
        r.added = await client.videoAddPrompt({
            session: v.session, frame: 0, object_id: 1, point: { x, y } });
        r.progress = [];
        r.propagated = await client.videoPropagate({ session: v.session, max_frames: 6 }, {
            onProgress: ({ frame, done, total }) => r.progress.push([frame.frame_index, done, total,
                frame.masks.map((m) => [m.object_id, m.rle])]),
        });
        r.cancelIdle = await client.videoCancel({ session: v.session });
        r.saved = await client.videoSave({ session: v.session, path: `${work}/session.npz` });
        r.exported = await client.videoExport({ session: v.session, dir: work, formats: ['json'] });
        r.removed = await client.videoRemoveObject({ session: v.session, object_id: 1 });
        r.reset = await client.videoReset({ session: v.session });
        r.closed = await client.videoClose({ session: v.session });
        const back = await client.videoRestore({ path: `${work}/session.npz` });
        r.restored = back.num_frames;
        await client.videoClose({ session: back.session });
        // A live stream: push frames, prompt, push again.
        const live = await client.videoStart({ stream: true, model: 'classic' });
        r.pushed0 = await client.videoPushFrame({ session: live.session, image: { base64: frame0 } });
        await client.videoAddPrompt({ session: live.session, frame: 0, object_id: 4, point: { x, y } });
        const pushed1 = await client.videoPushFrame({ session: live.session, image: { base64: frame1 } });
        r.pushed1 = [pushed1.frame_index, pushed1.masks.map((m) => m.object_id)];
        await client.videoClose({ session: live.session });
        client.close();
        return r;
    }""", {"url": cors_server.page_url, "image": _png64(scene.image), "frame0": _png64(frames[0].image),
           "frame1": _png64(frames[1].image), "x": scene.inside[0], "y": scene.inside[1], "dir": str(folder),
           "work": str(tmp_path)})
    assert "classic" in out["models"]
    assert iou(decode(out["prompted"]["masks"][0]["rle"]), scene.mask) > 0.85
    assert out["segmented"]["masks"]
    assert out["segmented"]["image"] == {"width": 128, "height": 96, "path": None}
    assert out["stats"]
    assert out["start"]["num_frames"] == FRAMES and out["start"]["model"] == "classic"
    assert iou(decode(out["added"]["masks"][0]["rle"]), frames[0].mask) > 0.85
    assert [p[:3] for p in out["progress"]] == [[i, i + 1, 6] for i in range(6)]
    for index, _done, _total, masks in out["progress"]:
        ((object_id, rle),) = masks
        assert object_id == 1 and iou(decode(rle), frames[index].mask) > 0.6
    assert out["propagated"]["frames_done"] == 6 and out["propagated"]["cancelled"] is False
    assert out["cancelIdle"]["cancelled"] is False
    assert Path(out["saved"]["path"]).is_file()
    assert (tmp_path / "session.npz").is_file() and any(tmp_path.rglob("*.json"))
    assert out["removed"]["object_ids"] == [] and out["reset"]["object_ids"] == []
    assert out["closed"]["closed"] is True and out["restored"] == FRAMES
    assert out["pushed0"]["masks"] == [] and out["pushed1"] == [1, [4]]


def test_errors_carry_the_documented_code_and_name(cors_server: Server, host_site: str, ui: UI) -> None:
    url = cors_server.page_url
    out = _host(ui, host_site).page.evaluate("""async ({url, wrong, closed}) => {
        const { VisionClient, VisionError } = window.sk;
        const client = new VisionClient(url);
        const tries = {
            bad_image: () => client.maskFromPrompt({
                image: { base64: 'bm90IGFuIGltYWdl' }, point: { x: 1, y: 1 } }),
            unknown_model: () => client.segment({ image: { base64: 'x' }, model: 'no-such-model' }),
            bad_session: () => client.videoClose({ session: 'nope' }),
            wrong_token: () => new VisionClient(url, { token: 'wrong' }).models(),
            no_server: () => new VisionClient(closed).models(),
            aborted: () => {
                const c = new AbortController();
                c.abort();
                return client.models({}, { signal: c.signal });
            },
            ws_wrong_token: () => new VisionClient(wrong).videoPropagate({ session: 'x' }),
        };
        const out = {};
        for (const [name, attempt] of Object.entries(tries)) {
            try { await attempt(); out[name] = null; }
            catch (e) {
                out[name] = {
                    isVisionError: e instanceof VisionError, name: e.name, code: e.code, reason: e.reason };
            }
        }
        return out;
    }""", {"url": url, "wrong": url.replace(cors_server.token, "wrong"), "closed": "http://127.0.0.1:9/"})
    expected = {
        "bad_image": (-32010, "bad_image"), "unknown_model": (-32012, "unknown_model"),
        "bad_session": (-32020, "session_error"), "wrong_token": (-32006, "forbidden"),
        "no_server": (-32098, "network_error"), "aborted": (-32096, "aborted"),
        "ws_wrong_token": (-32006, "forbidden"),  # the handshake's refusal, as HTTP tells it
    }
    assert out == {k: {"isVisionError": True, "name": "VisionError", "code": c, "reason": r}
                   for k, (c, r) in expected.items()}


def test_abort_cancels_a_running_propagation(cors_server: Server, host_site: str, ui: UI,
                                             frames_dir: tuple[list[Any], Path]) -> None:
    frames, folder = frames_dir
    x, y = frames[0].inside
    cancels: list[Any] = []
    ui.page.on("response", lambda r: r.url.endswith("/rpc") and r.request.method == "POST"
               and json.loads(r.request.post_data)["method"] == "vision.segment_video_cancel"
               and cancels.append(r.json()))
    out = _host(ui, host_site).page.evaluate("""async ({url, dir, x, y}) => {
        const { VisionClient } = window.sk;
        const client = new VisionClient(url);
        const v = await client.videoStart({ source: { path: dir }, model: 'classic' });
        await client.videoAddPrompt({ session: v.session, frame: 0, object_id: 1, point: { x, y } });
        const controller = new AbortController();
        let seen = 0;
        let error = null;
        try {
            await client.videoPropagate({ session: v.session }, {
                signal: controller.signal,
                onProgress: () => { seen += 1; if (seen === 1) controller.abort(); },
            });
        } catch (e) { error = e.reason; }
        // The service stopped too: the session takes a new propagation (not "session_busy").
        let again = null;
        for (let i = 0; i < 100 && !again; i++) {
            try { again = await client.videoPropagate({ session: v.session, max_frames: 2 }); }
            catch (e) {
                if (e.reason !== 'session_busy') throw e;
                await new Promise((r) => setTimeout(r, 50));
            }
        }
        await client.videoClose({ session: v.session });
        client.close();
        return { error, seen, again };
    }""", {"url": cors_server.page_url, "dir": str(folder), "x": x, "y": y})
    assert out["error"] == "aborted"
    # The client told the service, which stopped a propagation that was running. Playwright hands
    # the cancel's response event to the handler while it waits: wait (bounded) until it has.
    for _ in range(50):
        if cancels:
            break
        ui.page.wait_for_timeout(100)
    assert [c["result"]["cancelled"] for c in cancels] == [True]
    assert out["again"]["frames_done"] == 2
    assert out["seen"] < FRAMES


def test_cors_lets_only_the_listed_origin_in(cors_server: Server, classic_server: Server, host_site: str,
                                             ui: UI, tmp_path: Path) -> None:
    call = """async (url) => {
        try { await new window.sk.VisionClient(url).models(); return 'ok'; } catch (e) { return e.reason; }
    }"""
    assert _host(ui, host_site).page.evaluate(call, cors_server.page_url) == "ok"
    assert ui.page.evaluate(call, classic_server.page_url) == "network_error", "CORS is off by default"
    with static_site(host_folder(tmp_path)) as other:
        assert _host(ui, other).page.evaluate(call, cors_server.page_url) == "network_error"
    preflight = httpx.options(f"{cors_server.url}rpc", headers={
        "Origin": host_site, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.headers["access-control-allow-origin"] == host_site
