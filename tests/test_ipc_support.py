"""Shared pieces of the IPC tests: scenes on disk, manifests, real server processes.

(No tests here. Test modules load this file and ``test_ipc_toy.py`` with
:func:`load_sibling`, since the suite runs with ``--import-mode=importlib``.)
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

TESTS = Path(__file__).resolve().parent
TOY = "test_ipc_toy"


def load_sibling(name: str) -> Any:
    """Import ``tests/<name>.py`` once, under ``name`` (so loader strings resolve)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TESTS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def save_png(path: Path, image: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


def write_frames(folder: Path, count: int = 6, size: tuple[int, int] = (48, 64), step: float = 3.0) -> list[Any]:
    """``count`` frames of a moving object as PNGs in ``folder``; returns the scenes."""
    from segmentkit.testing.scenes import synthetic_frames

    scenes = synthetic_frames(count, size, step=step)
    for i, scene in enumerate(scenes):
        save_png(folder / f"{i:04d}.png", scene.image)
    return scenes


def write_manifest(path: Path, app_id: str, models: list[str], paths: list[Path], camera: bool) -> Path:
    document = {"app": {"id": app_id, "name": app_id.title()},
                "capabilities": {"models": models, "fs": {"user-selected": [str(p) for p in paths]},
                                 "device": {"camera": camera}}}
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def server_env(**extra: str) -> dict[str, str]:
    """Environment for a server process that can import the toy plugin."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra)
    return env


def serve_cmd(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("segmentkit")
    base = [str(script)] if script.exists() else [sys.executable, "-c", "from segmentkit.cli import main; main()"]
    return [*base, "serve", "--plugin", TOY, *args]


@contextmanager
def http_server(tmp: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """A real ``segmentkit serve --port 0`` process; yields its token-file document."""
    token_file = tmp / "token.json"
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(serve_cmd("--port", "0", "--token-file", str(token_file), *args),
                            env=env or server_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not token_file.exists() or not token_file.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {(tmp / 'server.log').read_text()}")
            time.sleep(0.05)
        info = json.loads(token_file.read_text())
        info["proc"] = proc
        info["log"] = tmp / "server.log"
        info["base"] = info["url"].rstrip("/")
        yield info
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
