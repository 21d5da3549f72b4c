"""Benchmark: `segmentkit serve --engine ray`, 1 and 2 replicas, with and without affinity.

A local Ray on this machine serves full-size SAM 2.1 Hiera-Tiny with random weights (the
hub layout, as bench/sam2_image.py builds it; the arithmetic is the real model's). Each
replica has 1 CPU and 1 torch thread and keeps ``--cache`` embeddings. ``--clients``
HTTP clients each click ``--clicks`` times on each of ``--images`` images, interleaved
(client c starts at image c). Each run uses fresh images, so every run starts cold.
Reported per run: clicks/s, p50 / p99 latency, embedding-cache hits and misses.

Then the per-call costs, measured in this process on one thread: the encoder (E, an
image's embedding) and the decoder (D, one click on a cached embedding), plus the
decoder on 8 prompt sets in one call against 8 calls (what ``@serve.batch`` on the
decoder would buy). From them, a paper estimate for N replicas: a replica spends
D + m E per click (m: the miss rate), so N replicas answer N / (D + m E) clicks/s;
with affinity m = images / clicks, without it each replica misses each image once
(m = N images / clicks) when its cache holds them all, and nearly always when it
cannot. Pass a GPU's E and D (``--gpu-encoder-ms``, ``--gpu-decoder-ms``) to get the
same table for GPU replicas; nothing here measures a GPU.

This machine has 2 cores: 2 replicas are CPU-bound and share them with the ingress, the
Ray processes and the clients. Say so with the figures.

    python bench/serve_ray.py [--clients 4] [--images 5] [--clicks 4] [--cache 3]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
MODEL = "sam2.1-hiera-tiny"


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def pictures(seeds: range, size: int = 256) -> list[str]:
    from PIL import Image
    from segmentkit.testing.scenes import synthetic_scene

    out = []
    for seed in seeds:
        buffer = io.BytesIO()
        Image.fromarray(synthetic_scene((size, size), seed=seed).image).save(buffer, format="PNG")
        out.append(base64.b64encode(buffer.getvalue()).decode())
    return out


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def load(url: str, token: str, images: list[str], clients: int, clicks: int) -> dict[str, Any]:
    """Every client clicks ``clicks`` times on each image, interleaved; latencies and errors."""
    import httpx

    latencies: list[float] = []
    errors: list[Any] = []

    def client(c: int) -> None:
        with httpx.Client(timeout=600, headers={"Authorization": f"Bearer {token}"}) as http:
            for k in range(clicks):
                for j in range(len(images)):
                    params = {"image": {"base64": images[(j + c) % len(images)]}, "model": MODEL,
                              "point": {"x": 40 + 9 * ((k + c) % 20), "y": 60 + 5 * (k % 30)}}
                    body = json.dumps({"jsonrpc": "2.0", "id": k, "method": "vision.mask_from_prompt",
                                       "params": params})
                    started = time.perf_counter()
                    answer = http.post(f"{url}/rpc", content=body).json()
                    latencies.append(time.perf_counter() - started)
                    if "error" in answer:
                        errors.append(answer["error"])

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {"clicks": len(latencies), "wall_s": wall, "per_s": len(latencies) / wall, "errors": len(errors),
            "p50_ms": 1000 * percentile(latencies, 50), "p99_ms": 1000 * percentile(latencies, 99)}


def stats(url: str, token: str) -> dict[str, Any]:
    import httpx

    body = {"jsonrpc": "2.0", "id": 1, "method": "vision.stats"}
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{url}/rpc", json=body, headers=headers, timeout=60).json()["result"]


def serve_runs(args: argparse.Namespace, weights: Path) -> list[dict[str, Any]]:
    import ray
    from ray import serve
    from segmentkit.ipc.limits import Limits
    from segmentkit.ipc.manifest import App
    from segmentkit.rayserve.deployment import ServiceSpec, application, free_port

    app, token = App.local(), "bench-token"
    # cache_bytes 0: the SAM 2 plugin's own embedding cache is off, so a miss of the service's cache encodes
    options = {MODEL: {"weights": weights, "cache_bytes": 0}}
    spec = ServiceSpec((app,), Limits(max_embeddings=args.cache), {}, options)
    port = free_port("127.0.0.1")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    url, rows, seed = f"http://127.0.0.1:{port}", [], 1000
    try:
        for replicas, affinity in ((1, True), (2, False), (2, True)):
            deployed = application(spec, {token: app}, replicas=replicas, affinity=affinity)
            serve.run(deployed, name="segmentkit", route_prefix="/")
            warm = pictures(range(seed, seed + 2 * replicas))  # load the model on every replica first
            load(url, token, warm, 2 * replicas, 1)
            seed += 100
            before = stats(url, token)["embedding_cache"]
            row = load(url, token, pictures(range(seed, seed + args.images)), args.clients, args.clicks)
            after = stats(url, token)["embedding_cache"]
            row.update(replicas=replicas, affinity=affinity, hits=after["hits"] - before["hits"],
                       misses=after["misses"] - before["misses"], load=os.getloadavg()[0])
            rows.append(row)
            print(f"  {replicas} replica(s), affinity {'on ' if affinity else 'off'}: "
                  f"{row['per_s']:.2f} clicks/s, "
                  f"p50 {row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms, hits {row['hits']} / misses "
                  f"{row['misses']} ({row['hits'] / row['clicks']:.0%}), errors {row['errors']}, "
                  f"load {row['load']:.1f}", flush=True)
            seed += 100
    finally:
        serve.shutdown()
        ray.shutdown()
    return rows


def costs(weights: Path, reps: int) -> dict[str, float]:
    """Encoder, decoder, and decoder on 8 prompt sets at once vs 8 calls (ms, medians, 1 thread)."""
    import torch
    from segmentkit.registry import Registry
    from segmentkit.types import Point

    torch.set_num_threads(1)
    model = Registry().load(MODEL, role="prompter", weights=weights)
    image = np.ascontiguousarray(__import__("segmentkit.testing.scenes", fromlist=["x"])
                                 .synthetic_scene((256, 256), seed=7).image)
    sets = [[Point(20.0 + 25 * i, 30.0 + 20 * i)] for i in range(8)]

    def timed(fn: Any) -> float:
        fn()  # warm-up
        runs = []
        for _ in range(reps):
            started = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - started)
        return 1000 * statistics.median(runs)

    embedding = model.embed(image)
    return {
        "encoder_ms": timed(lambda: model.raw.embed_array(image)),
        "decoder_ms": timed(lambda: model.predict(embedding, sets[0])),
        "decoder_8_calls_ms": timed(lambda: [model.predict(embedding, s) for s in sets]),
        "decoder_8_batched_ms": timed(lambda: model.predict_batch(embedding, sets)),
    }


def estimate(e_ms: float, d_ms: float, images: int, clicks: int, label: str) -> None:
    print(f"\npaper estimate, {label}: E = {e_ms:.0f} ms, D = {d_ms:.1f} ms, {images} images, "
          f"{clicks} clicks (cache holds every image a replica sees)")
    print("  replicas | affinity: clicks/s (miss rate) | no affinity: clicks/s (miss rate)")
    for n in (1, 2, 4, 8, 16):
        m_aff = images / clicks
        m_rand = min(1.0, n * images / clicks)
        print(f"  {n:8d} | {n / ((d_ms + m_aff * e_ms) / 1000):9.1f} ({m_aff:.1%})          | "
              f"{n / ((d_ms + m_rand * e_ms) / 1000):9.1f} ({m_rand:.1%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--clicks", type=int, default=4, help="Clicks per client on each image.")
    parser.add_argument("--cache", type=int, default=3, help="Embeddings a replica keeps.")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--gpu-encoder-ms", type=float, default=None)
    parser.add_argument("--gpu-decoder-ms", type=float, default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from sam2_image import build_weights

    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; load average at start {os.getloadavg()[0]:.2f}")
    print(f"model: full-size {MODEL} config, random weights; {args.clients} clients x {args.clicks} clicks x "
          f"{args.images} images; {args.cache} embeddings per replica; 1 CPU / 1 thread per replica",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        weights = build_weights("tiny", Path(tmp) / "weights")
        rows = serve_runs(args, weights)
        cost = costs(weights, args.reps)
    gain = cost["decoder_8_calls_ms"] / cost["decoder_8_batched_ms"]
    print(f"\nper call, in-process, 1 thread: encoder {cost['encoder_ms']:.0f} ms, "
          f"decoder {cost['decoder_ms']:.1f} ms; 8 prompt sets: 8 calls {cost['decoder_8_calls_ms']:.0f} ms, "
          f"one batched call {cost['decoder_8_batched_ms']:.0f} ms (x{gain:.2f})")
    total = args.clients * args.clicks * args.images
    estimate(cost["encoder_ms"], cost["decoder_ms"], args.images, total,
             "CPU replicas (1 core each, measured costs)")
    if args.gpu_encoder_ms is not None and args.gpu_decoder_ms is not None:
        estimate(args.gpu_encoder_ms, args.gpu_decoder_ms, args.images, total,
                 "GPU replicas (costs given, not measured)")
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")
    print(json.dumps({"runs": rows, "costs": cost}))


if __name__ == "__main__":
    main()
