"""Bounded loopback load on `segmentkit serve`: N requests from C concurrent HTTP clients.

Starts a real server (``--port 0``, token file), sends ``--requests`` JSON-RPC requests
split over ``--clients`` threads (one keep-alive HTTP connection each), and reports
throughput, p50 / p99 latency, errors (must be 0) and the server's RSS before and
after. The reference is the same work called in-process (no IPC) in this run; the
ratio shows what the service costs on top of the model.

    python bench/ipc_load.py                       # 1,000 requests, 8 clients, both workloads
    python bench/ipc_load.py --workload prompt --requests 2000
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def scene_png() -> tuple[str, tuple[float, float], np.ndarray]:
    from PIL import Image
    from segmentkit.testing.scenes import synthetic_scene

    scene = synthetic_scene((96, 128), seed=0)
    buffer = io.BytesIO()
    Image.fromarray(scene.image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode(), scene.inside, scene.image


def workloads(image64: str, point: tuple[float, float]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "stats": ("vision.stats", {}),  # the protocol's floor: a tiny answer, no model
        "models": ("vision.models", {}),  # every installed card (tens of KB of JSON)
        "prompt": ("vision.mask_from_prompt",
                   {"image": {"base64": image64}, "point": {"x": point[0], "y": point[1]}, "model": "classic"}),
    }


def in_process(name: str, image: np.ndarray, point: tuple[float, float], count: int) -> float:
    """Requests per second of the same work without IPC (one thread, like one model lock)."""
    import segmentkit as sk
    from segmentkit.types import Point

    if name == "stats":
        return float("nan")  # nothing to compare: the method exists only in the service
    if name == "models":
        def run() -> object:
            return sk.models()
    else:
        model = sk.load("classic", role="prompter")

        def run() -> object:
            return model.predict(model.embed(image), [Point(*point)])
    run()
    start = time.perf_counter()
    for _ in range(count):
        run()
    return count / (time.perf_counter() - start)


def start_server(tmp: Path, workers: int) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    token_file = tmp / "token.json"
    script = Path(sys.executable).with_name("segmentkit")
    base = [str(script)] if script.exists() else [sys.executable, "-c", "from segmentkit.cli import main; main()"]
    proc = subprocess.Popen([*base, "serve", "--port", "0", "--token-file", str(token_file),
                             "--workers", str(workers)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (token_file.exists() and token_file.read_text()):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("server did not start")
        time.sleep(0.05)
    return proc, json.loads(token_file.read_text())


def load(info: dict[str, Any], method: str, params: dict[str, Any], requests: int, clients: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    shares = [requests // clients + (i < requests % clients) for i in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def client(n: int, share: int) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {info['token']}"}, timeout=120) as http:
            barrier.wait()
            for i in range(share):
                body = {"jsonrpc": "2.0", "id": f"{n}-{i}", "method": method, "params": params}
                t0 = time.perf_counter()
                try:
                    answer = http.post(f"{info['url'].rstrip('/')}/rpc", json=body).json()
                    problem = json.dumps(answer["error"]) if "error" in answer else None
                except Exception as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                elapsed = time.perf_counter() - t0
                with lock:
                    latencies.append(elapsed)
                    if problem:
                        errors.append(problem)

    threads = [threading.Thread(target=client, args=(n, s)) for n, s in enumerate(shares)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": len(latencies), "wall_s": wall, "rps": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4, help="server inference threads")
    parser.add_argument("--workload", choices=["stats", "models", "prompt", "all"], default="all")
    args = parser.parse_args()

    image64, point, image = scene_png()
    chosen = workloads(image64, point)
    names = list(chosen) if args.workload == "all" else [args.workload]
    print(f"CPU: {cpu_name()}  ({platform.python_implementation()} {platform.python_version()})")
    print(f"{args.requests} requests from {args.clients} HTTP clients on 127.0.0.1, server --workers {args.workers}")
    print(f"load average before: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        proc, info = start_server(Path(tmp), args.workers)
        try:
            for name in names:
                method, params = chosen[name]
                load(info, method, params, args.clients, args.clients)  # warm up: load the model
                before = rss_mb(proc.pid)
                result = load(info, method, params, args.requests, args.clients)
                after = rss_mb(proc.pid)
                reference = in_process(name, image, point, max(20, min(200, args.requests // 10)))
                print(f"\n[{name}] {method}")
                print(f"  throughput  {result['rps']:8.1f} req/s  ({result['requests']} in {result['wall_s']:.2f} s)")
                print(f"  latency     p50 {result['p50_ms']:.2f} ms   p99 {result['p99_ms']:.2f} ms")
                print(f"  errors      {len(result['errors'])}")
                print(f"  server RSS  {before:.1f} MB before, {after:.1f} MB after ({after - before:+.1f} MB)")
                if not math.isnan(reference):
                    print(f"  in-process  {reference:8.1f} calls/s (same work, one thread, no IPC);"
                          f" IPC / in-process = {result['rps'] / reference:.2f}")
                for problem in result["errors"][:5]:
                    print(f"    error: {problem}")
                failed |= bool(result["errors"])
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
