"""Fixtures of the browser tests: one Chromium and two `segmentkit serve` processes per session."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from segmentkit.testing.scenes import Scene, synthetic_frames, synthetic_scene

sys.path.insert(0, str(Path(__file__).parent))  # webui_support, with --import-mode=importlib

from webui_support import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    MAX_PIXELS,
    SIZE,
    TINY_PLUGIN,
    UI,
    Server,
    _chromium,
    _missing,
    sync_api,
)


@pytest.fixture(scope="session")
def servers(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """Both servers start together: the tiny one builds its models while the classic tests run."""
    classic = Server(tmp_path_factory.mktemp("serve-classic"), "--max-pixels", str(MAX_PIXELS))
    folder = tmp_path_factory.mktemp("serve-tiny")
    (folder / "sk_webui_tiny.py").write_text(TINY_PLUGIN)
    manifest = folder / "app.json"
    # The last has no weights.
    models = ["classic", "echo-tracker", "gate-prompter", "tiny-sam2", "tiny-segformer", "sam2.1-hiera-tiny"]
    manifest.write_text(json.dumps({
        "app": {"id": "web-ui-tests"},
        "capabilities": {"models": models, "fs": {"user-selected": [str(folder)]}, "device": {"camera": True}},
    }))
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])),
           "SK_WEB_TINY_DIR": str(folder)}
    tiny = Server(folder, "--plugin", "sk_webui_tiny", "--manifest", str(manifest), env=env)
    yield {"classic": classic, "tiny": tiny}
    classic.stop()
    tiny.stop()


@pytest.fixture(scope="session")
def classic_server(servers: dict[str, Server]) -> Server:
    """Every installed model, unrestricted (classic works; hub models have no weights offline)."""
    return servers["classic"].ready()


@pytest.fixture(scope="session")
def tiny_server(servers: dict[str, Server]) -> Server:
    """classic, echo-tracker and gate-prompter (deterministic), tiny-sam2 (prompter + tracker), tiny-segformer
    (19 Cityscapes labels) and sam2.1-hiera-tiny without weights, for an app whose manifest
    grants the camera and its folder."""
    return servers["tiny"].ready()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if sync_api is None:
        _missing("playwright is not installed (pip install -r requirements-test.txt)")
    executable = _chromium()
    if executable is None:
        _missing("no Chromium binary (apt-get install chromium, or set SEGMENTKIT_CHROMIUM)")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _page(browser: Any, request: pytest.FixtureRequest, **context: Any) -> Iterator[UI]:
    ctx = browser.new_context(accept_downloads=True, **context)
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    view = UI(page, request.node.name.removeprefix("test_"))
    yield view
    ctx.close()
    assert not view.errors, f"uncaught errors in the page: {view.errors}"


@pytest.fixture
def ui(browser: Any, request: pytest.FixtureRequest) -> Iterator[UI]:
    """A desktop page, 1280 x 800."""
    yield from _page(browser, request, viewport={"width": 1280, "height": 800})


@pytest.fixture
def phone(browser: Any, request: pytest.FixtureRequest) -> Iterator[UI]:
    """A phone: 390 x 844 CSS pixels at 2 device pixels each, touch, mobile viewport."""
    yield from _page(browser, request, viewport={"width": 390, "height": 844}, device_scale_factor=2,
                     has_touch=True, is_mobile=True)


@pytest.fixture(scope="session")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scene, Path]:
    """A red ellipse on a striped background."""
    s = synthetic_scene(SIZE, seed=3)
    path = tmp_path_factory.mktemp("scene") / "scene.png"
    Image.fromarray(s.image).save(path)
    return s, path


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Scene], Path]:
    """An 8-frame WebM (VP8, 10 fps) of an ellipse moving right, written with PyAV."""
    av = pytest.importorskip("av", reason="PyAV is needed to write the test video")
    frames = synthetic_frames(8, (96, 128), step=3.0)
    path = tmp_path_factory.mktemp("clip") / "clip.webm"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libvpx", rate=10)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        for scene in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(scene.image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return frames, path


@pytest.fixture(scope="session")
def host_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A host web app's origin (its own port): tests/web/host and /components/ (the package's src)."""
    from components_support import host_folder, static_site

    with static_site(host_folder(tmp_path_factory.mktemp("host"))) as origin:
        yield origin
