"""``vision.stats``: the embedding cache's hits and misses, per-method latencies, the lost-session hint.

In-process service over the toy plugin (``test_ipc_toy.py``); the expected counts follow from
the order of the requests (a new image misses, the same pixels hit, an evicted image misses again).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
import time
from typing import Any

import numpy as np
import pytest
import test_ipc_support as support  # registered by tests/conftest.py
from PIL import Image
from segmentkit.embedding_cache import EmbeddingCache
from segmentkit.ipc.errors import ErrorCode
from segmentkit.ipc.limits import Limits
from segmentkit.ipc.manifest import App
from segmentkit.ipc.metrics import Latencies
from segmentkit.ipc.service import Service
from segmentkit.registry import Registry
from segmentkit.testing.scenes import synthetic_scene

toy = support.load_sibling(support.TOY)


def make_service(**limits: Any) -> Service:
    registry = Registry(entry_points=False)
    registry.register(toy, name="toy")
    return Service(registry, [App.local()], limits=Limits(**limits))


def call(service: Service, method: str, params: Any = None) -> dict[str, Any]:
    message = {"jsonrpc": "2.0", "id": 1, "method": method, **({} if params is None else {"params": params})}
    return asyncio.run(service.handle(json.dumps(message), App.local()))


def result(response: dict[str, Any]) -> Any:
    assert "error" not in response, response
    return response["result"]


def b64(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def click(image: np.ndarray, image_id: str | None = None) -> dict[str, Any]:
    params = {"image": {"base64": b64(image)}, "point": {"x": 10, "y": 10}}
    return params if image_id is None else {**params, "image_id": image_id}


def test_stats_count_embedding_hits_and_misses_and_time_each_method() -> None:
    service = make_service(max_embeddings=2)
    a, b, c = (synthetic_scene((48, 64), seed=s).image for s in (1, 2, 3))
    # a miss, a hit (same pixels; a different image_id does not matter), b miss, c miss (evicts a), a miss
    for image, image_id in ((a, None), (a.copy(), "other-name"), (b, None), (c, None), (a, None)):
        result(call(service, "vision.mask_from_prompt", click(image, image_id)))
    bad = {"image": {"base64": "!"}, "point": {"x": 1, "y": 1}}
    assert "error" in call(service, "vision.mask_from_prompt", bad)
    stats = result(call(service, "vision.stats"))
    assert stats["embedding_cache"] == {"hits": 1, "misses": 4, "entries": 2}
    prompt = stats["methods"]["vision.mask_from_prompt"]
    assert prompt["calls"] == 6 and prompt["errors"] == 1
    assert 0 < prompt["p50_ms"] <= prompt["p99_ms"]
    assert stats["replicas"] == []
    assert "vision.stats" not in stats["methods"]  # this call is timed once it has answered


def test_concurrent_misses_of_one_key_embed_once() -> None:
    cache = EmbeddingCache(4)
    embedded: list[int] = []

    def slow_embed() -> str:
        time.sleep(0.05)
        embedded.append(1)
        return "embedding"

    threads = [threading.Thread(target=lambda: cache.get("k", slow_embed)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(embedded) == 1
    assert cache.stats() == {"hits": 3, "misses": 1, "entries": 1}


def test_a_failed_embedding_is_no_entry_and_is_retried() -> None:
    cache = EmbeddingCache(4)

    def broken() -> str:
        raise RuntimeError("encoder failed")

    with pytest.raises(RuntimeError):
        cache.get("k", broken)
    assert cache.get("k", lambda: "ok") == "ok"
    assert cache.stats() == {"hits": 0, "misses": 1, "entries": 1}


def test_latency_percentiles_over_the_window() -> None:
    latencies = Latencies(window=100)
    for ms in range(1, 201):  # only the last 100 (101..200 ms) count
        latencies.observe("m", ms / 1000, True)
    latencies.observe("m", 5.0, False)  # errors are counted, not timed
    stats = latencies.stats()["m"]
    assert stats["calls"] == 201 and stats["errors"] == 1
    assert stats["p50_ms"] == pytest.approx(np.percentile(np.arange(101, 201), 50))
    assert stats["p99_ms"] == pytest.approx(np.percentile(np.arange(101, 201), 99))


def test_an_unknown_session_says_how_to_continue() -> None:
    service = make_service()
    response = call(service, "vision.segment_video_add_prompt",
                    {"session": "gone", "frame": 0, "object_id": 1, "point": {"x": 1, "y": 1}})
    assert response["error"]["code"] == ErrorCode.SESSION_ERROR
    assert response["error"]["data"]["code"] == "session_error"
    assert response["error"]["data"]["recover"] == "vision.segment_video_restore"
    assert "segment_video_save" in response["error"]["message"]
