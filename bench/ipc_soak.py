"""Soak `segmentkit serve` with mixed and hostile traffic over stdio, HTTP and WebSocket.

N clients per transport each send M requests, drawn (seeded) from a mix of ordinary
calls (stats, models, a prompt, a segmentation, a whole video session: start, prompt,
propagate, close) and hostile ones (not JSON, lone surrogates, invalid requests without
an id, coerced types, a 200 k-character RLE, a path outside the grant, a FIFO, a
decompression bomb, a mixed batch). Every request has an expected outcome (a result or
one error code); anything else (a wrong code, no answer, a dropped connection) is an
unexpected error. Servers run on loopback only (one HTTP + WebSocket server, one stdio
server per stdio client), use the weightless ``classic`` plugin and the IPC tests' toy
tracker, and their RSS is sampled over the run.

    python bench/ipc_soak.py                      # 4 clients x 250 requests per transport
    python bench/ipc_soak.py --clients 8 --requests 500

Exit code 1 when there was an unexpected error or RSS grew by more than 5 % between the
first and last quarter of the run.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ipc_load import cpu_name, rss_mb

TESTS = Path(__file__).resolve().parent.parent / "tests"
OK = "result"


def png64(image: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def bomb64(width: int = 20_000, height: int = 10_000) -> str:
    """A PNG header declaring 200 M pixels (Pillow refuses it inside Image.open)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
    return base64.b64encode(png + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")).decode()


class World:
    """Files on disk and the request mix."""

    def __init__(self, tmp: Path):
        from segmentkit.testing.scenes import synthetic_frames, synthetic_scene

        self.granted = tmp / "granted"
        self.clip = self.granted / "clip"
        self.clip.mkdir(parents=True)
        frames = synthetic_frames(6, (48, 64), step=3.0)
        from PIL import Image

        for i, scene in enumerate(frames):
            Image.fromarray(scene.image).save(self.clip / f"{i:04d}.png")
        self.point = {"x": frames[0].inside[0], "y": frames[0].inside[1]}
        scene = synthetic_scene((96, 128), seed=0)
        self.image64 = png64(scene.image)
        self.scene_point = {"x": scene.inside[0], "y": scene.inside[1]}
        (tmp / "secret.png").write_bytes(base64.b64decode(self.image64))
        self.outside = str(tmp / "secret.png")
        self.fifo = str(self.granted / "pipe.png")
        os.mkfifo(self.fifo)
        self.bomb = bomb64()
        self.manifest = tmp / "app.json"
        self.manifest.write_text(json.dumps({
            "app": {"id": "com.example.soak"},
            "capabilities": {"models": ["classic", "toy-color"], "fs": {"user-selected": [str(self.granted)]}}}))

    def kinds(self) -> dict[str, tuple[float, Callable[[], list[tuple[str, str]]]]]:
        """name -> (weight, steps() -> [(raw message, expected outcome)])."""
        def req(method: str, params: dict[str, Any], rid: Any = None) -> str:
            return json.dumps({"jsonrpc": "2.0", "id": rid if rid is not None else method, "method": method,
                               "params": params})

        def session() -> list[tuple[str, str]]:
            return [(req("vision.segment_video_start", {"source": {"path": str(self.clip)}, "model": "toy"}), OK),
                    ("ADD", OK), ("RLE", "-32011"), ("PROPAGATE", OK), ("CLOSE", OK)]

        prompt = {"image": {"base64": self.image64}, "point": self.scene_point, "model": "classic"}
        return {
            "stats": (3, lambda: [(req("vision.stats", {}), OK)]),
            "models": (2, lambda: [(req("vision.models", {}), OK)]),
            "prompt": (4, lambda: [(req("vision.mask_from_prompt", prompt), OK)]),
            "segment": (2, lambda: [(req("vision.segment", {"image": {"base64": self.image64}, "model": "toy"}),
                                       OK)]),
            "session": (1, session),
            "not_json": (1, lambda: [('{"jsonrpc": "2.0", "id": 1, "method": ', "-32700")]),
            "surrogate_id": (1, lambda: [('{"jsonrpc": "2.0", "id": "\\ud800", "method": "vision.stats"}', OK)]),
            "no_id_invalid": (1, lambda: [('{"jsonrpc": "2.0", "method": 1}', "-32600")]),
            "coerced": (1, lambda: [(req("vision.mask_from_prompt", {**prompt, "multimask": "yes"}), "-32602")]),
            "outside": (1, lambda: [(req("vision.segment", {"image": {"path": self.outside}}), "-32002")]),
            "fifo": (1, lambda: [(req("vision.segment", {"image": {"path": self.fifo}, "model": "toy"}),
                                    "-32010")]),
            "bomb": (1, lambda: [(req("vision.segment", {"image": {"base64": self.bomb}, "model": "toy"}),
                                    "-32013")]),
            "batch": (1, lambda: [("[" + req("vision.stats", {}, "\udfff") + ","
                                     '{"jsonrpc": "2.0", "method": "vision.nope"},'
                                     '{"jsonrpc": "2.0", "id": "b", "method": "vision.nope"}]', "batch")]),
        }

    def session_step(self, token: str, sid: str) -> str:
        if token == "ADD":
            return json.dumps({"jsonrpc": "2.0", "id": "add", "method": "vision.segment_video_add_prompt",
                               "params": {"session": sid, "frame": 0, "object_id": 1, "point": self.point}})
        if token == "RLE":
            return json.dumps({"jsonrpc": "2.0", "id": "rle", "method": "vision.segment_video_add_prompt",
                               "params": {"session": sid, "frame": 0, "object_id": 2,
                                          "mask": {"size": [48, 64], "counts": "o" * 200_000}}})
        method = "vision.segment_video_propagate" if token == "PROPAGATE" else "vision.segment_video_close"
        return json.dumps({"jsonrpc": "2.0", "id": token.lower(), "method": method, "params": {"session": sid}})


def outcome(answer: Any) -> str:
    if isinstance(answer, list):  # the batch: surrogate id answered, the notification not, "b" -32601
        ok = [(a.get("id"), "result" in a or a.get("error", {}).get("code")) for a in answer]
        return "batch" if ok == [("\udfff", True), ("b", -32601)] else f"batch {ok}"
    if "result" in answer:
        return OK
    return str(answer["error"]["code"])


# --------------------------------------------------------------------------- transports (one connection per client)


class Stdio:
    def __init__(self, cmd: list[str], env: dict[str, str]):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=env)

    def ask(self, raw: str) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(raw.encode() + b"\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise ConnectionError("stdio server closed its output")
            answer = json.loads(line)
            if not (isinstance(answer, dict) and "method" in answer):  # skip progress notifications
                return answer

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


class Http:
    def __init__(self, url: str, token: str):
        import httpx

        self.url = url.rstrip("/") + "/rpc"
        self.http = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=120)

    def ask(self, raw: str) -> Any:
        return self.http.post(self.url, content=raw.encode(),
                              headers={"content-type": "application/json"}).json()

    def close(self) -> None:
        self.http.close()


class WebSocket:
    def __init__(self, url: str, token: str):
        from websockets.sync.client import connect

        self.stack = contextlib.ExitStack()
        self.ws = self.stack.enter_context(connect(url.replace("http://", "ws://").rstrip("/") + f"/ws?token={token}",
                                                   open_timeout=30, max_size=2**26))

    def ask(self, raw: str) -> Any:
        self.ws.send(raw)
        while True:
            answer = json.loads(self.ws.recv(timeout=120))
            if not (isinstance(answer, dict) and "method" in answer):
                return answer

    def close(self) -> None:
        self.stack.close()


# --------------------------------------------------------------------------- the run


def client_run(world: World, conn: Any, requests: int, seed: int, log: list[Any], lock: threading.Lock) -> None:
    kinds = world.kinds()
    names = sorted(kinds)
    weights = [kinds[n][0] for n in names]
    rng = random.Random(seed)
    sent = 0
    while sent < requests:
        name = rng.choices(names, weights)[0]
        sid = None
        for raw, expected in kinds[name][1]():
            if raw in ("ADD", "RLE", "PROPAGATE", "CLOSE"):
                raw = world.session_step(raw, sid or "")
            t0 = time.perf_counter()
            try:
                answer = conn.ask(raw)
                got = outcome(answer)
            except Exception as exc:
                answer, got = None, f"{type(exc).__name__}: {exc}"
            elapsed = time.perf_counter() - t0
            if name == "session" and sid is None and isinstance(answer, dict) and "result" in answer:
                sid = answer["result"]["session"]
            with lock:
                log.append((time.monotonic(), name, expected, got, elapsed))
            sent += 1


def sample_rss(pids: Callable[[], list[int]], stop: threading.Event, out: list[tuple[float, float]]) -> None:
    while not stop.is_set():
        with contextlib.suppress(OSError, ValueError):
            out.append((time.monotonic(), sum(rss_mb(p) for p in pids())))
        stop.wait(0.25)


def start_http(world: World, tmp: Path, env: dict[str, str], cmd: list[str]) -> tuple[subprocess.Popen[bytes], Any]:
    token_file = tmp / "token.json"
    proc = subprocess.Popen([*cmd, "--port", "0", "--token-file", str(token_file)], env=env,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (token_file.exists() and token_file.read_text()):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("HTTP server did not start")
        time.sleep(0.05)
    return proc, json.loads(token_file.read_text())


def quarter_means(samples: list[tuple[float, float]]) -> tuple[float, float]:
    values = [v for _, v in samples]
    q = max(1, len(values) // 4)
    return statistics.fmean(values[:q]), statistics.fmean(values[-q:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4, help="clients per transport")
    parser.add_argument("--requests", type=int, default=250, help="requests per client")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    script = Path(sys.executable).with_name("segmentkit")
    base = [str(script)] if script.exists() else [sys.executable, "-c", "from segmentkit.cli import main; main()"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]))
    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical CPUs")
    print(f"{args.clients} clients x {args.requests} requests on each of stdio, HTTP, WebSocket (loopback)")
    print(f"load average before: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        world = World(tmp)
        cmd = [*base, "serve", "--plugin", "test_ipc_toy", "--manifest", str(world.manifest)]
        http_proc, info = start_http(world, tmp, env, cmd)
        lock = threading.Lock()
        makers: dict[str, Callable[[], Any]] = {
            "stdio": lambda: Stdio([*cmd, "--stdio"], env),
            "http": lambda: Http(info["url"], info["token"]),
            "websocket": lambda: WebSocket(info["url"], info["token"]),
        }
        conns = {name: [make() for _ in range(args.clients)] for name, make in makers.items()}
        logs: dict[str, list[Any]] = {t: [] for t in makers}
        for group in conns.values():  # warm up: every server loads its models before the clock starts
            for conn in group:
                client_run(world, conn, 20, 999, [], lock)
        stop = threading.Event()
        rss_http: list[tuple[float, float]] = []
        rss_stdio: list[tuple[float, float]] = []
        samplers = [threading.Thread(target=sample_rss, args=(lambda: [http_proc.pid], stop, rss_http)),
                    threading.Thread(target=sample_rss, args=(lambda: [c.proc.pid for c in conns["stdio"]], stop,
                                                              rss_stdio))]
        threads = [threading.Thread(target=client_run, args=(world, conn, args.requests,
                                                             args.seed * 1000 + 10 * i + n, logs[name], lock))
                   for n, (name, group) in enumerate(conns.items()) for i, conn in enumerate(group)]
        start = time.monotonic()
        for t in samplers + threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - start
        stop.set()
        for t in samplers:
            t.join()
        alive = http_proc.poll() is None and all(c.proc.poll() is None for c in conns["stdio"])
        for group in conns.values():
            for conn in group:
                conn.close()
        http_proc.terminate()
        http_proc.wait(timeout=30)

    print(f"load average after:  {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print(f"wall time {wall:.1f} s, every server still up at the end: {alive}\n")
    print(f"{'transport':10} {'requests':>8} {'unexpected':>10} {'p50 ms':>8} {'p99 ms':>8}")
    failed = not alive
    unexpected_all: list[Any] = []
    for name, log in logs.items():
        latencies = sorted(e[4] for e in log)
        unexpected = [e for e in log if e[2] != e[3]]
        unexpected_all += [(name, *e[1:4]) for e in unexpected]
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        print(f"{name:10} {len(log):8d} {len(unexpected):10d} {1000 * statistics.median(latencies):8.1f} "
              f"{1000 * p99:8.1f}")
        failed |= bool(unexpected)
    mix = Counter(e[1] for log in logs.values() for e in log)
    print("\nmix: " + ", ".join(f"{k} {v}" for k, v in sorted(mix.items())))
    for label, samples in (("HTTP+WS server", rss_http), (f"{args.clients} stdio servers", rss_stdio)):
        first, last = quarter_means(samples)
        change = 100 * (last - first) / first
        print(f"RSS {label}: first quarter {first:.1f} MB, last quarter {last:.1f} MB ({change:+.1f} %), "
              f"{len(samples)} samples")
        failed |= abs(change) > 5
    for item in unexpected_all[:10]:
        print(f"  unexpected: {item}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
