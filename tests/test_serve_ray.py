"""`segmentkit serve --engine ray`: the IPC service on a local Ray Serve, 2 replicas, loopback.

One Ray (2 CPUs) and one deployment serve the whole module: 2 replicas of the service
(1 CPU, 1 thread each) behind the HTTP / WebSocket ingress, with one manifest app. The
models are the weightless ``classic`` (segmenter, tracker) and a tiny random-weight SAM 2
(the prompter whose embeddings are cached). References are the same core
:class:`~segmentkit.ipc.service.Service` run in this process (single-threaded torch).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import threading
import time
from typing import Any

import numpy as np
import pytest
import test_ipc_support as support  # registered by tests/conftest.py
from PIL import Image
from segmentkit.ipc.errors import ErrorCode
from segmentkit.ipc.limits import Limits
from segmentkit.ipc.manifest import apps_from_manifests
from segmentkit.testing.scenes import synthetic_scene

if os.environ.get("SEGMENTKIT_REQUIRE_RAY_SERVE") != "1":
    pytest.importorskip("ray.serve", reason='needs Ray Serve: pip install "segmentkit[ray]"')
    pytest.importorskip("segmentkit_sam2.video_testing", reason="needs the SAM 2 plugin (tiny checkpoints)")
torch = pytest.importorskip("torch")
import ray  # noqa: E402
from ray import serve  # noqa: E402
from segmentkit.rayserve.deployment import ServiceSpec, application, free_port  # noqa: E402

SAM2 = "sam2.1-hiera-tiny"
pytestmark = pytest.mark.slow  # one local Ray: about 1 min to start on 2 cores, 1.5 min of tests
APP = "studio"
TOKEN = "test-token-studio"


def png64(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def images(seeds: range) -> list[str]:
    return [png64(synthetic_scene((96, 128), seed=s).image) for s in seeds]


def click(image: str, k: int, image_id: str | None = None) -> dict[str, Any]:
    point = {"x": 20 + 7 * (k % 10), "y": 30 + 3 * (k % 7)}
    params: dict[str, Any] = {"image": {"base64": image}, "point": point, "model": SAM2}
    return params if image_id is None else {**params, "image_id": image_id}


def message(method: str, params: dict[str, Any] | None = None, request_id: int = 1) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}})


def same(a: Any, b: Any) -> Any:
    """A result document without its timing (the one part that differs between runs)."""
    if isinstance(a, dict):
        return {k: same(v, None) for k, v in a.items() if k != "timing"}
    if isinstance(a, list):
        return [same(v, None) for v in a]
    return a


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The deployment, an in-process reference service, and the files both may read."""
    from segmentkit_sam2.video_testing import build_tiny_video_checkpoint

    root = tmp_path_factory.mktemp("serve-ray")
    checkpoint = build_tiny_video_checkpoint(root / "ckpt")
    support.write_frames(root / "clip", count=6)
    manifest = support.write_manifest(root / "app.json", APP, ["classic", SAM2], [root], camera=False)
    apps = tuple(apps_from_manifests([manifest]))
    # the SAM 2 plugin's own embedding cache is off: a miss of the service's cache runs the encoder
    options = {SAM2: {"weights": checkpoint, "cache_bytes": 0}}
    spec = ServiceSpec(apps, Limits(max_embeddings=4, workers=2), {}, options)
    port = free_port("127.0.0.1")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(application(spec, {TOKEN: apps[0]}, replicas=2), name="segmentkit", route_prefix="/")
        reference = spec.build()
        yield {"url": f"http://127.0.0.1:{port}", "root": root, "spec": spec, "reference": reference,
               "app": apps[0]}
    finally:
        serve.shutdown()
        ray.shutdown()


def post(cluster: Any, method: str, params: dict[str, Any] | None = None,
         request_id: int = 1) -> dict[str, Any]:
    import httpx

    response = httpx.post(f"{cluster['url']}/rpc", content=message(method, params, request_id), timeout=120,
                          headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return response.json()


def local(cluster: Any, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The same call answered by the single-process service (torch on one thread, as in a replica)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return asyncio.run(cluster["reference"].handle(message(method, params), cluster["app"]))
    finally:
        torch.set_num_threads(before)


def ok(response: dict[str, Any]) -> Any:
    assert "error" not in response, response
    return response["result"]


def stats(cluster: Any) -> dict[str, Any]:
    return ok(post(cluster, "vision.stats"))


# --------------------------------------------------------------------------- tests


def test_answers_equal_the_single_process_service_with_the_same_grants(cluster: Any) -> None:
    root, (picture,) = cluster["root"], images(range(1))
    calls = [
        ("vision.mask_from_prompt", click(picture, 3)),
        ("vision.mask_from_prompt", {"image": {"path": str(root / "clip" / "0002.png")}, "model": "classic",
                                     "box": {"x0": 10, "y0": 8, "x1": 40, "y1": 30}, "formats": ["png"]}),
        ("vision.segment", {"image": {"base64": picture}, "model": "classic"}),
        ("vision.models", {}),
    ]
    for method, params in calls:
        got, want = ok(post(cluster, method, params)), ok(local(cluster, method, params))
        assert same(got, None) == same(want, None), method
    assert ok(post(cluster, "vision.mask_from_prompt", click(picture, 3)))["masks"][0]["area"] > 0
    # the manifest's grants hold on the replicas: a path outside the app's folder, a model not granted
    outside = post(cluster, "vision.segment", {"image": {"path": "/etc/hostname"}, "model": "classic"})
    assert outside["error"] == local(cluster, "vision.segment", {"image": {"path": "/etc/hostname"},
                                                                  "model": "classic"})["error"]
    denied = post(cluster, "vision.segment", {"image": {"base64": picture}, "model": "segformer-b0-ade"})
    assert denied["error"]["code"] == ErrorCode.MODEL_DENIED


def test_clicks_meet_their_embedding_and_stats_count_them(cluster: Any) -> None:
    """4 clients interleave 10 clicks on each of 5 images: hits >= 90 % (cache: 4 embeddings a replica)."""
    import httpx

    pictures, failures, before = images(range(100, 105)), [], stats(cluster)

    def client(c: int) -> None:
        with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            for r in range(10):
                for j in range(5):
                    body = message("vision.mask_from_prompt", click(pictures[(j + c) % 5], r + c), r)
                    answer = http.post(f"{cluster['url']}/rpc", content=body).json()
                    if "error" in answer:
                        failures.append(answer)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    after = stats(cluster)
    assert failures == []
    hits = after["embedding_cache"]["hits"] - before["embedding_cache"]["hits"]
    misses = after["embedding_cache"]["misses"] - before["embedding_cache"]["misses"]
    assert hits + misses == 200
    rate = hits / 200
    print(f"\naffinity: {hits} hits / {misses} misses = {rate:.1%}")
    assert rate >= 0.9
    # vision.stats: both replicas, totals their sum, and end-to-end latencies per method
    replicas = after["replicas"]
    assert len(replicas) == 2
    for key in ("hits", "misses", "entries"):
        assert after["embedding_cache"][key] == sum(r["embedding_cache"][key] for r in replicas)
    prompt = after["methods"]["vision.mask_from_prompt"]
    assert prompt["calls"] >= 200 and 0 < prompt["p50_ms"] <= prompt["p99_ms"]


def test_default_routing_without_affinity_for_comparison(cluster: Any) -> None:
    """The same clicks sent to the replicas with no key (Ray Serve's default router): reported only."""
    handle = serve.get_deployment_handle("VisionReplica", app_name="segmentkit")
    pictures, app_id = images(range(200, 205)), cluster["app"].id
    latest: dict[str, dict[str, int]] = {}  # replica -> its counters in its latest reply (they only grow)

    async def client(c: int) -> None:
        for r in range(10):
            for j in range(5):
                reply = await handle.answer.remote(message("vision.mask_from_prompt",
                                                           click(pictures[(j + c) % 5], r + c)), app_id)
                assert "result" in reply["response"], reply["response"]
                counters = reply["figures"]["embedding_cache"]
                old = latest.get(reply["replica"], {"hits": -1, "misses": -1})
                if counters["hits"] + counters["misses"] > old["hits"] + old["misses"]:
                    latest[reply["replica"]] = counters

    async def run() -> None:
        await asyncio.gather(*(client(c) for c in range(4)))

    before = {r["replica"]: r["embedding_cache"] for r in stats(cluster)["replicas"]}
    asyncio.run(run())
    zero = {"hits": 0, "misses": 0}
    hits = sum(f["hits"] - before.get(n, zero)["hits"] for n, f in latest.items())
    misses = sum(f["misses"] - before.get(n, zero)["misses"] for n, f in latest.items())
    assert hits + misses == 200
    print(f"\ndefault routing (no affinity): {hits} hits / {misses} misses = {hits / 200:.1%}")


def test_a_replica_dies_mid_run_no_image_request_fails_and_its_session_is_restored(cluster: Any) -> None:
    import httpx

    root = cluster["root"]
    clip, saved = str(root / "clip"), str(root / "session.npz")
    start = {"source": {"path": clip}, "model": "classic"}
    session = ok(post(cluster, "vision.segment_video_start", start))["session"]
    prompt = {"session": session, "frame": 0, "object_id": 1, "box": {"x0": 14, "y0": 10, "x1": 40, "y1": 34}}
    for _ in range(3):  # every call of the session reaches its replica
        ok(post(cluster, "vision.segment_video_add_prompt", prompt))
    ok(post(cluster, "vision.segment_video_save", {"session": session, "path": saved}))
    victim = session.partition(".")[0]  # a replica names the sessions it opens

    pictures, failures, answered = images(range(300, 305)), [], []
    started = threading.Event()

    def client(c: int) -> None:
        with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            for k in range(20):
                body = message("vision.mask_from_prompt", click(pictures[(k + c) % 5], k), k)
                answer = http.post(f"{cluster['url']}/rpc", content=body).json()
                (failures if "error" in answer else answered).append(answer)
                started.set()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(2)]
    for t in threads:
        t.start()
    assert started.wait(120)
    at_kill = len(answered) + len(failures)
    actor = ray.get_actor(f"SERVE_REPLICA::segmentkit#VisionReplica#{victim}", namespace="serve")
    ray.kill(actor, no_restart=True)
    for t in threads:
        t.join(300)
    assert failures == [] and len(answered) == 40
    assert at_kill < 40  # the replica died mid-run

    lost = post(cluster, "vision.segment_video_add_prompt", prompt)
    assert lost["error"]["code"] == ErrorCode.SESSION_ERROR
    assert lost["error"]["data"] == {"code": "session_error", "session": session,
                                     "recover": "vision.segment_video_restore"}
    assert "vision.segment_video_save" in lost["error"]["message"]

    restored = ok(post(cluster, "vision.segment_video_restore", {"path": saved}))["session"]
    assert restored.partition(".")[0] != victim
    reference = ok(local(cluster, "vision.segment_video_restore", {"path": saved}))["session"]
    want = ok(local(cluster, "vision.segment_video_propagate", {"session": reference}))["frames"]
    # over the WebSocket the frames stream as notifications from the replica, then the answer
    from websockets.sync.client import connect

    url = cluster["url"].replace("http://", "ws://") + f"/ws?token={TOKEN}"
    with connect(url, open_timeout=60, max_size=None) as ws:
        ws.send(message("vision.segment_video_propagate", {"session": restored}, 9))
        frames, deadline = [], time.monotonic() + 120
        while time.monotonic() < deadline:
            document = json.loads(ws.recv(timeout=120))
            if document.get("id") == 9:
                break
            frames.append(document["params"]["frame"])
    assert ok(document)["frames_done"] == len(want) == 6
    assert same(frames, None) == same(want, None)
