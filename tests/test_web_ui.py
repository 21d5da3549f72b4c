"""The web UI in a real browser: Playwright drives headless Chromium against `segmentkit serve`.

Each test opens the page a real ``segmentkit serve --port 0`` process serves on loopback
(the classic model; and, registered with ``--plugin``, tiny random-weight SAM 2 and
SegFormer plus a deterministic stand-in tracker whose masks are known on every frame),
works it with the mouse and file inputs as a person would, and checks what the canvas
shows against masks decoded independently (pycocotools) from the service's own answers.
A screenshot of each flow is written to ``tests/web_artifacts/``.

Needs the ``playwright`` package and a Chromium binary (Debian's ``chromium``); no
browser download. Skipped with the reason when either is missing, unless
``SEGMENTKIT_REQUIRE_BROWSER=1`` (CI) turns that into a failure.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import segmentkit
from PIL import Image
from pycocotools import mask as coco_mask
from segmentkit.testing.scenes import Scene, synthetic_frames, synthetic_scene

try:
    from playwright import sync_api
except ImportError:  # reported by the `browser` fixture
    sync_api = None

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(__file__).parent / "web_artifacts"
SAMPLE = Path(segmentkit.__file__).parent / "samples" / "chelsea.png"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
OFFLINE = {"SEGMENTKIT_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
SIZE = (240, 320)  # (H, W) of the test scene


def _missing(reason: str) -> None:
    """Skip, or fail where the browser tests must run (``SEGMENTKIT_REQUIRE_BROWSER=1``, CI)."""
    if os.environ.get("SEGMENTKIT_REQUIRE_BROWSER", "") not in ("", "0"):
        pytest.fail(f"{reason}, and SEGMENTKIT_REQUIRE_BROWSER is set")
    pytest.skip(reason)


def _chromium() -> str | None:
    for name in (os.environ.get("SEGMENTKIT_CHROMIUM"), "chromium", "chromium-browser", "/usr/bin/chromium"):
        found = name and shutil.which(name)
        if found:
            return found
    return None


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# --------------------------------------------------------------------------- servers


class Server:
    """A `segmentkit serve --port 0` process; ``ready()`` waits for its token file."""

    def __init__(self, folder: Path, *args: str, env: dict[str, str] | None = None):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.log = folder / "serve.log"
        self._token_file = folder / "token.json"
        command = [sys.executable, "-c", "from segmentkit.cli import main; main()", "serve", "--port", "0",
                   "--token-file", str(self._token_file), *args]
        with open(self.log, "wb") as stderr:
            self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr,
                                         env={**os.environ, **OFFLINE, **(env or {})})
        self.url = self.token = ""

    def ready(self, timeout: float = 180.0) -> Server:
        deadline = time.monotonic() + timeout
        while not self._token_file.exists() or not self._token_file.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"segmentkit serve did not start:\n{self.log.read_text(errors='replace')}")
            time.sleep(0.05)
        info = json.loads(self._token_file.read_text())
        self.url, self.token = info["url"], info["token"]
        return self

    @property
    def page_url(self) -> str:
        return f"{self.url}?token={self.token}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# Registered with `segmentkit serve --plugin`. On import (in the server, before it listens)
# it builds tiny random-weight checkpoints and offers them as models, so the test process
# itself never imports torch or transformers.
TINY_PLUGIN = textwrap.dedent('''
    """Tiny random-weight models for the web UI tests."""
    import importlib.util
    import os
    from pathlib import Path

    from segmentkit import ModelSpec, hookimpl

    FOLDER = Path(os.environ["SK_WEB_TINY_DIR"])
    SAM2 = FOLDER / "tiny-sam2" if importlib.util.find_spec("segmentkit_sam2") else None
    SEGFORMER = FOLDER / "tiny-segformer" if importlib.util.find_spec("segmentkit_segformer") else None


    def _build():
        if SAM2 is not None:  # the SAM 2 plugin's own tiny checkpoint (hub layout, sam2_video)
            from segmentkit_sam2.video_testing import build_tiny_video_checkpoint

            build_tiny_video_checkpoint(SAM2, image_size=128, seed=0)
        if SEGFORMER is not None:
            import torch
            from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

            torch.manual_seed(0)
            config = SegformerConfig(num_labels=19, depths=[1, 1, 1, 1], hidden_sizes=[8, 16, 32, 64],
                                     num_attention_heads=[1, 1, 2, 2], decoder_hidden_size=32)
            SegformerForSemanticSegmentation(config).eval().save_pretrained(SEGFORMER)
            SegformerImageProcessor(size={"height": 128, "width": 128}).save_pretrained(SEGFORMER)


    _build()


    def _options(base, weights):
        return type(f"Tiny{base.__name__}", (base,), {"__annotations__": {"weights": Path | None}, "weights": weights})


    def _sam2(role):
        from segmentkit_sam2.catalog import card
        from segmentkit_sam2.options import Sam2Options
        from segmentkit_sam2.video_options import Sam2TrackerOptions

        base, loader = {"prompter": (Sam2Options, "segmentkit_sam2.prompter:Sam2Prompter"),
                        "tracker": (Sam2TrackerOptions, "segmentkit_sam2.tracker:Sam2Tracker")}[role]
        tiny = card("sam2.1-hiera-tiny").model_copy(update={
            "id": "tiny-sam2", "weights": None, "roles": ("prompter", "tracker"), "tasks": ("prompt", "track"),
            "description": "random weights (tests)"})
        return [ModelSpec(card=tiny, role=role, loader=loader, options=_options(base, SAM2))]


    class EchoTracker:
        """A deterministic live tracker: each object is a disc of radius 6 around its latest
        positive point (the frame's centre for a text prompt), carried onto every later frame."""

        def __init__(self, card, options):
            self.card, self.options = card, options

        def start(self, source=None, *, stream=False):
            from segmentkit.errors import SessionError

            if not stream:
                raise SessionError("echo-tracker follows live streams only")
            return EchoSession()


    class EchoSession:
        id = "echo"

        def __init__(self):
            self.frames, self.centres = [], {}  # object id -> (x, y)

        @property
        def num_frames(self):
            return len(self.frames)

        @property
        def frame_size(self):
            return self.frames[0].shape[:2] if self.frames else None

        def _masks(self, frame):
            import numpy as np
            from segmentkit.types import FrameMasks, Masks

            h, w = self.frame_size
            yy, xx = np.mgrid[0:h, 0:w] + 0.5
            ids = sorted(self.centres)
            discs = [(xx - self.centres[i][0]) ** 2 + (yy - self.centres[i][1]) ** 2 <= 36 for i in ids]
            stack = np.array(discs, bool).reshape(len(ids), h, w)
            return FrameMasks(frame, Masks(stack, scores=[0.5] * len(ids), object_ids=ids))

        def add_prompts(self, frame, object_id, prompts):
            from segmentkit.errors import SessionError

            if frame != len(self.frames) - 1:
                raise SessionError(f"echo-tracker takes prompts on its newest frame only, not {frame}")
            point = next((p for p in prompts if p.kind == "point" and p.positive), None)
            h, w = self.frame_size
            self.centres[object_id] = (w / 2, h / 2) if point is None else (point.x, point.y)  # text: centre
            return self._masks(frame)

        def push_frame(self, image):
            from segmentkit.io.image import load_image

            self.frames.append(load_image(image))
            return self._masks(len(self.frames) - 1)

        def propagate(self, start=None, *, direction="forward", max_frames=None):
            from segmentkit.errors import SessionError

            raise SessionError("a live stream is tracked with push_frame")

        def remove_object(self, object_id):
            self.centres.pop(object_id, None)

        def reset(self):
            self.centres.clear()

        def close(self):
            self.frames = []

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()


    def _echo():
        from segmentkit.cards import ModelCard

        card = ModelCard(id="echo-tracker", family="test", roles=("tracker",), tasks=("track",),
                         prompt_kinds=("point", "text"), license="Apache-2.0", runtimes=("numpy",),
                         description="deterministic stand-in tracker (tests)")
        return ModelSpec(card=card, role="tracker", loader="sk_webui_tiny:EchoTracker")


    @hookimpl
    def segmentkit_prompters():
        return _sam2("prompter") if SAM2 else []


    @hookimpl
    def segmentkit_trackers():
        return [_echo()] + (_sam2("tracker") if SAM2 else [])


    @hookimpl
    def segmentkit_segmenters():
        if SEGFORMER is None:
            return []
        from segmentkit_segformer.specs import CARDS, LOADER, SegformerOptions

        base = next(c for c in CARDS if c.id == "segformer-b0-cityscapes")
        tiny = base.model_copy(update={"id": "tiny-segformer", "weights": None, "input_size": 128,
                                       "description": "random weights (tests)"})
        return [ModelSpec(card=tiny, role="segmenter", loader=LOADER, options=_options(SegformerOptions, SEGFORMER))]
''')


@pytest.fixture(scope="session")
def servers(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """Both servers start together: the tiny one builds its models while the classic tests run."""
    classic = Server(tmp_path_factory.mktemp("serve-classic"))
    folder = tmp_path_factory.mktemp("serve-tiny")
    (folder / "sk_webui_tiny.py").write_text(TINY_PLUGIN)
    manifest = folder / "app.json"
    models = ["classic", "echo-tracker", "tiny-sam2", "tiny-segformer", "sam2.1-hiera-tiny"]  # the last: no weights
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
    """classic, echo-tracker (deterministic), tiny-sam2 (prompter + tracker), tiny-segformer
    (19 Cityscapes labels) and sam2.1-hiera-tiny without weights, for an app whose manifest
    grants the camera and its folder."""
    return servers["tiny"].ready()


# --------------------------------------------------------------------------- browser


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


class UI:
    """The page of one test, with helpers that act like a person and read the canvas."""

    def __init__(self, page: Any, name: str):
        self.page = page
        self.name = name
        self.errors: list[str] = []
        self.sent: dict[str, Any] = {}  # params of the request ``rpc`` waited for
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def open(self, url: str, *, ready: bool = True) -> UI:
        self.page.goto(url)
        if ready:
            self.page.wait_for_function("document.querySelectorAll('#model option').length > 0")
        return self

    def idle(self) -> None:
        self.page.wait_for_function("document.body.dataset.busy === '0'")

    def rpc(self, action: Callable[[], None], method: str | None = None) -> dict[str, Any]:
        """Do ``action``; return the JSON-RPC answer to the (first) request it made."""
        def matches(response: Any) -> bool:
            if not response.url.endswith("/rpc") or response.request.method != "POST":
                return False
            return method is None or json.loads(response.request.post_data)["method"] == method

        with self.page.expect_response(matches) as info:
            action()
        self.sent = json.loads(info.value.request.post_data)["params"]
        answer = info.value.json()
        self.idle()
        assert "result" in answer, f"the service answered an error: {answer.get('error')}"
        return answer

    def choose(self, role: str, model: str, task: str = "") -> None:
        self.page.select_option("#model", f"{role}|{model}|{task}")

    def open_image(self, path: Path) -> None:
        self.page.set_input_files("#open-image", str(path))
        self.page.wait_for_function("window.segmentkit.overlay.hasImage")
        self.idle()

    def _to_page(self, x: float, y: float) -> tuple[float, float]:
        box = self.page.locator("canvas.sk-overlay").bounding_box()
        w, h = self.canvas_size()
        return box["x"] + x * box["width"] / w, box["y"] + y * box["height"] / h

    def click(self, x: float, y: float, *, shift: bool = False) -> None:
        px, py = self._to_page(x, y)
        if shift:
            self.page.keyboard.down("Shift")
        self.page.mouse.click(px, py)
        if shift:
            self.page.keyboard.up("Shift")

    def drag(self, x0: float, y0: float, x1: float, y1: float) -> None:
        mouse = self.page.mouse
        mouse.move(*self._to_page(x0, y0))
        mouse.down()
        mouse.move(*self._to_page((x0 + x1) / 2, (y0 + y1) / 2), steps=4)
        mouse.move(*self._to_page(x1, y1), steps=4)
        mouse.up()

    def canvas_size(self) -> tuple[int, int]:
        w, h = self.page.evaluate("[document.querySelector('canvas.sk-overlay').width,"
                                  " document.querySelector('canvas.sk-overlay').height]")
        return int(w), int(h)

    def pixels(self) -> np.ndarray:
        """The overlay canvas as (H, W, 4) uint8, read back from the page."""
        w, h, data = self.page.evaluate("""() => {
            const c = document.querySelector('canvas.sk-overlay');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let s = '';
            for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode.apply(null, d.subarray(i, i + 0x8000));
            return [c.width, c.height, btoa(s)];
        }""")
        return np.frombuffer(base64.b64decode(data), np.uint8).reshape(h, w, 4)

    def image_pixels(self) -> np.ndarray:
        """The picture under the masks (the frame as the browser decoded it), (H, W, 4) uint8."""
        w, h, data = self.page.evaluate("""() => {
            const d = window.segmentkit.overlay.imageData();
            let s = '';
            for (let i = 0; i < d.data.length; i += 0x8000) s += String.fromCharCode.apply(null, d.data.subarray(i, i + 0x8000));
            return [d.width, d.height, btoa(s)];
        }""")
        return np.frombuffer(base64.b64decode(data), np.uint8).reshape(h, w, 4)

    def mask_rows(self) -> list[str]:
        return self.page.locator("#mask-list li .name").all_inner_texts()

    def settle(self) -> None:
        """Wait until the page is idle; fail with the banner's text if it shows an error."""
        self.idle()
        if self.page.is_visible("#error"):
            pytest.fail(f"the page shows an error: {self.page.inner_text('#error-text')}")

    def error_text(self) -> str:
        banner = self.page.locator("#error")
        banner.wait_for(state="visible")
        return banner.inner_text()

    def download(self, button: str) -> bytes:
        with self.page.expect_download() as info:
            self.page.click(button)
        path = info.value.path()
        self.idle()
        return Path(path).read_bytes()

    def shot(self, suffix: str = "") -> None:
        self.page.screenshot(path=str(ARTIFACTS / f"{self.name}{suffix}.png"))


@pytest.fixture
def ui(browser: Any, request: pytest.FixtureRequest) -> Iterator[UI]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    view = UI(page, request.node.name.removeprefix("test_"))
    yield view
    context.close()
    assert not view.errors, f"uncaught errors in the page: {view.errors}"


# --------------------------------------------------------------------------- scenes and checks


@pytest.fixture(scope="session")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scene, Path]:
    """A red ellipse on a striped background."""
    s = synthetic_scene(SIZE, seed=3)
    path = tmp_path_factory.mktemp("scene") / "scene.png"
    Image.fromarray(s.image).save(path)
    return s, path


def decode(rle: dict[str, Any]) -> np.ndarray:
    return coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)


def changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return np.any(before != after, axis=2)


def marker_layer(ui: UI) -> tuple[np.ndarray, float]:
    """Alpha of the marker canvas (screen resolution) and its image-to-marker-pixel scale."""
    w, h, scale, data = ui.page.evaluate("""() => {
        const m = document.querySelector('canvas.sk-overlay-markers');
        const d = m.getContext('2d').getImageData(0, 0, m.width, m.height).data;
        const a = new Uint8Array(d.length / 4);
        for (let i = 0; i < a.length; i++) a[i] = d[i * 4 + 3];
        let s = '';
        for (let i = 0; i < a.length; i += 0x8000) s += String.fromCharCode.apply(null, a.subarray(i, i + 0x8000));
        return [m.width, m.height, m.width / window.segmentkit.overlay.width, btoa(s)];
    }""")
    return np.frombuffer(base64.b64decode(data), np.uint8).reshape(h, w), scale


def check_markers(ui: UI, points: list[tuple[float, float]], boxes: list[tuple[float, ...]] = ()) -> None:
    """Markers are drawn at the prompts (within 12 screen pixels), nowhere else."""
    alpha, scale = marker_layer(ui)
    dpr = ui.page.evaluate("devicePixelRatio")
    yy, xx = np.mgrid[0 : alpha.shape[0], 0 : alpha.shape[1]] + 0.5
    allowed = np.zeros(alpha.shape, bool)
    for x, y in points:
        d2 = (xx - x * scale) ** 2 + (yy - y * scale) ** 2
        allowed |= d2 <= (12 * dpr) ** 2
        assert alpha[d2 <= (4 * dpr) ** 2].min() > 0, f"no marker at {(x, y)}"
    for x0, y0, x1, y1 in boxes:
        pad = 3 * dpr
        outer = (xx >= x0 * scale - pad) & (xx <= x1 * scale + pad) & (yy >= y0 * scale - pad) & (yy <= y1 * scale + pad)
        inner = (xx > x0 * scale + pad) & (xx < x1 * scale - pad) & (yy > y0 * scale + pad) & (yy < y1 * scale - pad)
        allowed |= outer & ~inner
        assert alpha[outer & ~inner].mean() > 0.3, "no box marker"
    assert not alpha[~allowed].any(), "markers drawn away from the prompts"


def boundary(mask: np.ndarray) -> np.ndarray:
    """Mask pixels with a 4-neighbour outside the mask (image borders do not count)."""
    p = np.pad(mask, 1, mode="edge")
    return mask & ~(p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def check_drawn(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> None:
    """The picture changed on (almost) all of ``mask`` and nowhere else."""
    diff = changed(before, after)
    stray = diff & ~mask
    assert stray.sum() == 0, f"{stray.sum()} pixels changed outside the mask"
    assert (diff & mask).sum() >= 0.95 * mask.sum(), "the mask is not drawn over its pixels"


# --------------------------------------------------------------------------- tests: classic


def test_click_point_masks_the_clicked_object(classic_server: Server, ui: UI, scene: tuple[Scene, Path]) -> None:
    s, path = scene
    ui.open(classic_server.page_url)
    assert ui.page.input_value("#model") == "prompter|classic|"
    ui.open_image(path)
    before = ui.pixels()
    assert np.array_equal(before[..., :3], s.image), "the canvas does not show the image as loaded"

    answer = ui.rpc(lambda: ui.click(*s.inside))
    params = json.loads(ui.page.evaluate("JSON.stringify(window.segmentkit.state.prompts)"))
    assert params == [{"kind": "point", "x": pytest.approx(s.inside[0], abs=1.0),
                       "y": pytest.approx(s.inside[1], abs=1.0), "positive": True}]
    mask = decode(answer["result"]["masks"][0]["rle"])
    after = ui.pixels()
    ui.shot()

    # The service found the clicked ellipse ...
    assert iou(mask, s.mask) > 0.85
    # ... and the canvas shows exactly that mask: changed over it, unchanged elsewhere.
    check_drawn(before, after, mask)
    check_markers(ui, [s.inside])
    diff = changed(before, after)
    assert diff[s.mask].mean() > 0.9, "the clicked object is not covered on the canvas"
    yy, xx = np.nonzero(s.mask)
    around = np.zeros(SIZE, bool)
    around[max(0, yy.min() - 8): yy.max() + 9, max(0, xx.min() - 8): xx.max() + 9] = True
    assert not diff[~around].any(), "pixels far from the clicked object changed"
    # The overlay decoded the RLE to the same pixels pycocotools does.
    js = np.array(ui.page.evaluate("Array.from(window.segmentkit.overlay.masks[0].data)"), bool).reshape(SIZE)
    assert np.array_equal(js, mask)
    assert ui.mask_rows() == ["object 1"]


def test_negative_point_box_and_mask_list(classic_server: Server, ui: UI, scene: tuple[Scene, Path]) -> None:
    s, path = scene
    ui.open(classic_server.page_url)
    ui.open_image(path)
    before = ui.pixels()
    x0, y0, x1, y1 = s.box
    box = (x0 - 6, y0 - 6, x1 + 6, y1 + 6)
    answer = ui.rpc(lambda: ui.drag(*box))
    sent = ui.page.evaluate("window.segmentkit.state.prompts")
    assert len(sent) == 1 and sent[0]["kind"] == "box"
    assert [sent[0][k] for k in ("x0", "y0", "x1", "y1")] == pytest.approx(list(box), abs=1.0)
    mask = decode(answer["result"]["masks"][0]["rle"])
    assert iou(mask, s.mask) > 0.85
    check_drawn(before, ui.pixels(), mask)
    check_markers(ui, [], [box])

    # Shift-click outside the object adds a negative point; both prompts go in one request.
    with ui.page.expect_request(lambda r: r.url.endswith("/rpc")) as request:
        answer = ui.rpc(lambda: ui.click(*s.outside, shift=True))
    params = json.loads(request.value.post_data)["params"]
    assert params["points"] == [{"x": pytest.approx(s.outside[0], abs=1.0),
                                 "y": pytest.approx(s.outside[1], abs=1.0), "positive": False}]
    assert [params["box"][k] for k in ("x0", "y0", "x1", "y1")] == pytest.approx(list(box), abs=1.0)
    assert ui.mask_rows() == ["object 1"]
    mask = decode(answer["result"]["masks"][0]["rle"])
    check_drawn(before, ui.pixels(), mask)
    check_markers(ui, [s.outside], [box])
    ui.shot()

    # Opacity 0: the fill is transparent, only the outline differs from the image.
    ui.page.fill("#opacity", "0")
    diff = changed(before, ui.pixels())
    edge = boundary(mask)
    assert not (diff & ~edge).any()
    assert (diff & edge).sum() >= 0.95 * edge.sum()
    ui.page.fill("#opacity", "0.5")

    # Hide, then delete, from the mask list.
    ui.page.click("#mask-list li .toggle")
    assert not changed(before, ui.pixels()).any(), "a hidden mask is still drawn"
    assert "hidden-mask" in ui.page.get_attribute("#mask-list li", "class")
    ui.page.click("#mask-list li .toggle")
    ui.page.click("#mask-list li .delete")
    assert ui.mask_rows() == []
    assert not changed(before, ui.pixels()).any(), "a deleted mask is still drawn"
    assert ui.page.is_disabled("#export-png")


def test_rle_codec_matches_pycocotools(classic_server: Server, ui: UI) -> None:
    """rle.js decodes pycocotools' strings to the same pixels and encodes the same strings."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:600, 0:800]
    cases = [
        np.zeros((5, 7), bool), np.ones((5, 7), bool), np.eye(9, 4, dtype=bool), rng.random((37, 53)) > 0.5,
        rng.random((1, 1)) > 2, (xx - 300) ** 2 / 250**2 + (yy - 280) ** 2 / 190**2 < 1,  # long runs
        ((xx // 97 + yy // 41) % 2 == 0) & (rng.random((600, 800)) > 0.01),  # long and short runs
    ]
    encoded = [coco_mask.encode(np.asfortranarray(m.astype(np.uint8))) for m in cases]
    sent = [{"size": [int(e["size"][0]), int(e["size"][1])], "counts": e["counts"].decode()} for e in encoded]
    ui.open(classic_server.page_url)
    back = ui.page.evaluate("""async (cases) => {
        const rle = await import('/rle.js');
        return cases.map((c) => {
            const data = rle.decodeRle(c);
            let bits = '';
            for (const v of data) bits += v ? '1' : '0';
            return {bits, again: rle.encodeRle(data, c.size[0], c.size[1]).counts};
        });
    }""", sent)
    for mask, rle, out in zip(cases, sent, back):
        got = np.frombuffer(out["bits"].encode(), np.uint8).reshape(mask.shape) == ord("1")
        assert np.array_equal(got, mask)
        assert out["again"] == rle["counts"]
    bad = ui.page.evaluate("""async () => {
        const rle = await import('/rle.js');
        const errors = [];
        for (const c of [{size: [2, 2], counts: '5'}, {size: [2, 2], counts: '1'}, {size: [2, 2], counts: '\\x7f'}]) {
            try { rle.decodeRle(c); errors.push(null); } catch (e) { errors.push(e.message); }
        }
        return errors;
    }""")
    assert all(bad), f"malformed RLE decoded without an error: {bad}"


def test_model_switch_to_automatic_segmenter(classic_server: Server, ui: UI) -> None:
    ui.open(classic_server.page_url)
    ui.open_image(SAMPLE)
    h, w = ui.canvas_size()[::-1]
    before = ui.pixels()
    ui.rpc(lambda: ui.click(w * 0.4, h * 0.45))
    assert ui.mask_rows() == ["object 1"]

    ui.choose("segmenter", "classic", "automatic")
    assert ui.page.is_visible("#segment-tools") and ui.page.is_hidden("#prompt-tools")
    with ui.page.expect_request(lambda r: r.url.endswith("/rpc")) as request:
        answer = ui.rpc(lambda: ui.page.click("#run-segment"))
    call = json.loads(request.value.post_data)
    assert call["method"] == "vision.segment"
    assert (call["params"]["model"], call["params"]["task"]) == ("classic", "automatic")
    masks = [decode(m["rle"]) for m in answer["result"]["masks"]]
    assert len(masks) > 3
    assert len(ui.mask_rows()) == len(masks)
    union = np.any(masks, axis=0)
    check_drawn(before, ui.pixels(), union)
    ui.shot()

    # Back to the prompter: clicks prompt again and add an object to the list.
    ui.choose("prompter", "classic")
    assert ui.page.is_visible("#prompt-tools")
    answer = ui.rpc(lambda: ui.click(w * 0.4, h * 0.45))
    assert len(answer["result"]["masks"]) == 1
    assert len(ui.mask_rows()) == len(masks) + 1


def test_exports_png_coco_and_cutout(classic_server: Server, ui: UI, scene: tuple[Scene, Path]) -> None:
    s, path = scene
    ui.open(classic_server.page_url)
    ui.open_image(path)
    assert ui.page.is_disabled("#export-png")
    first = decode(ui.rpc(lambda: ui.click(*s.inside))["result"]["masks"][0]["rle"])

    png = Image.open(io.BytesIO(ui.download("#export-png")))
    assert (png.format, png.mode, png.size) == ("PNG", "L", (SIZE[1], SIZE[0]))
    assert np.array_equal(np.asarray(png), first.astype(np.uint8) * 255)

    coco = json.loads(ui.download("#export-coco"))
    assert coco["images"] == [{"id": 1, "width": SIZE[1], "height": SIZE[0], "file_name": "scene.png"}]
    assert coco["categories"] == [{"id": 1, "name": "object"}]
    (ann,) = coco["annotations"]
    assert np.array_equal(decode(ann["segmentation"]), first)
    ys, xs = np.nonzero(first)
    assert ann["bbox"] == [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]
    assert (ann["area"], ann["iscrowd"], ann["image_id"]) == (int(first.sum()), 0, 1)

    cut = Image.open(io.BytesIO(ui.download("#export-cutout")))
    assert (cut.mode, cut.size) == ("RGBA", (SIZE[1], SIZE[0]))
    rgba = np.asarray(cut)
    assert np.array_equal(rgba[..., 3], first.astype(np.uint8) * 255)
    assert np.array_equal(rgba[..., :3][first], s.image[first])

    # Two objects: one palette PNG, pixel k + 1 where object k is (the smaller on top).
    ui.page.click("#new-object")
    second = decode(ui.rpc(lambda: ui.click(*s.outside))["result"]["masks"][0]["rle"])
    assert ui.mask_rows() == ["object 1", "object 2"]
    labels = Image.open(io.BytesIO(ui.download("#export-png")))
    assert labels.mode == "P"
    values = np.asarray(labels)
    small, large = (1, 2) if first.sum() <= second.sum() else (2, 1)
    by_value = {1: first, 2: second}
    assert np.array_equal(values == small, by_value[small])
    assert np.array_equal(values == large, by_value[large] & ~by_value[small])
    assert np.array_equal(values == 0, ~(first | second))
    ui.shot()


def test_service_errors_are_shown(classic_server: Server, ui: UI, scene: tuple[Scene, Path],
                                  tmp_path: Path) -> None:
    s, path = scene
    # No token: the models call is refused, and the page says how to get in.
    ui.open(classic_server.url, ready=False)
    text = ui.error_text()
    assert "unauthorized" in text and "token" in text

    # An image the browser shows but the service cannot read (SVG).
    ui.open(classic_server.page_url)
    assert ui.page.is_hidden("#error")
    svg = tmp_path / "drawing.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80">'
                   '<circle cx="60" cy="40" r="30" fill="red"/></svg>')
    ui.open_image(svg)
    with ui.page.expect_response(lambda r: r.url.endswith("/rpc")) as info:
        ui.click(60, 40)
    error = info.value.json()["error"]
    text = ui.error_text()
    assert error["data"]["code"] == "bad_image" and "[bad_image]" in text and error["message"] in text
    assert ui.mask_rows() == []
    ui.shot("-bad-image")

    # The page stays usable: a good image works and the banner goes away.
    ui.open_image(path)
    ui.rpc(lambda: ui.click(*s.inside))
    assert ui.page.is_hidden("#error") and ui.mask_rows() == ["object 1"]

    # The client's typed errors, straight from JavaScript.
    caught = ui.page.evaluate("""async () => {
        const { VisionClient, VisionError } = await import('/vision-client.js');
        const client = VisionClient.fromLocation();
        const out = [];
        for (const [method, params] of [['vision.nope', {}], ['vision.segment', {image: {base64: 'x'}, task: 9}]]) {
            try { await client.call(method, params); out.push(null); }
            catch (e) { out.push({isVisionError: e instanceof VisionError, code: e.code, reason: e.reason}); }
        }
        return out;
    }""")
    assert caught == [{"isVisionError": True, "code": -32601, "reason": "method_not_found"},
                      {"isVisionError": True, "code": -32602, "reason": "invalid_params"}]


# --------------------------------------------------------------------------- tests: tiny models


def _offered(ui: UI, value: str) -> bool:
    return ui.page.locator(f"#model option[value='{value}']").count() == 1


def test_model_without_weights_shows_error(tiny_server: Server, ui: UI, scene: tuple[Scene, Path]) -> None:
    """A model that fails to load: SAM 2 with no checkpoint (the server runs offline)."""
    s, path = scene
    ui.open(tiny_server.page_url)
    if not _offered(ui, "prompter|sam2.1-hiera-tiny|"):
        pytest.skip("segmentkit-sam2 is not installed")
    ui.open_image(path)
    ui.rpc(lambda: ui.click(*s.inside))  # classic, the default prompter
    ui.choose("prompter", "sam2.1-hiera-tiny")
    with ui.page.expect_response(lambda r: r.url.endswith("/rpc")) as info:
        ui.click(*s.inside)
    assert info.value.json()["error"]["data"]["code"] == "weights_unavailable"
    text = ui.error_text()
    assert "[weights_unavailable]" in text and "segmentkit pull sam2.1-hiera-tiny" in text
    assert ui.mask_rows() == ["object 1"]
    ui.shot()


def test_tiny_sam2_prompt_and_candidates(tiny_server: Server, ui: UI, scene: tuple[Scene, Path]) -> None:
    s, path = scene
    ui.open(tiny_server.page_url)
    if not _offered(ui, "prompter|tiny-sam2|"):
        pytest.skip("segmentkit-sam2 is not installed")
    ui.choose("prompter", "tiny-sam2")
    ui.open_image(path)
    before = ui.pixels()
    answer = ui.rpc(lambda: ui.click(*s.inside))
    (out,) = answer["result"]["masks"]
    mask = decode(out["rle"])
    assert 0 < mask.sum() < mask.size  # random weights: some mask, not necessarily the ellipse
    check_drawn(before, ui.pixels(), mask)

    # Three candidates: all listed with their scores, only the best-scoring one drawn.
    ui.page.check("#multimask")
    answer = ui.rpc(lambda: ui.click(s.inside[0] + 20, s.inside[1]))
    masks = answer["result"]["masks"]
    assert len(masks) == 3
    assert ui.mask_rows() == [f"object 1 · {k}/3" for k in (1, 2, 3)]
    scores = ui.page.locator("#mask-list li .score").all_inner_texts()
    assert scores == [f"{m['score']:.2f}" for m in masks]
    best = max(range(3), key=lambda k: masks[k]["score"])
    shown = [not ("hidden-mask" in (c or "")) for c in
             ui.page.locator("#mask-list li").evaluate_all("els => els.map(e => e.className)")]
    assert shown == [k == best for k in range(3)]
    check_drawn(before, ui.pixels(), decode(masks[best]["rle"]))
    check_markers(ui, [s.inside, (s.inside[0] + 20, s.inside[1])])
    ui.shot()


def test_fixed_label_model_shows_label_map_and_legend(tiny_server: Server, ui: UI,
                                                       scene: tuple[Scene, Path]) -> None:
    _, path = scene
    ui.open(tiny_server.page_url)
    if not _offered(ui, "segmenter|tiny-segformer|semantic"):
        pytest.skip("segmentkit-segformer is not installed")
    from segmentkit.label_sets import CITYSCAPES

    ui.choose("segmenter", "tiny-segformer", "semantic")
    assert "19 labels" in ui.page.inner_text("#model-info")
    ui.open_image(path)
    before = ui.pixels()
    answer = ui.rpc(lambda: ui.page.click("#run-segment"))
    segments = answer["result"]["label_map"]["segments"]
    assert len(segments) > 1
    label_map = np.full(SIZE, -1)
    for seg in segments:
        label_map[decode(seg["rle"])] = seg["id"]
    assert (label_map >= 0).all(), "a label map covers every pixel"

    legend = ui.page.locator("#legend li").all_inner_texts()
    assert legend == [CITYSCAPES[seg["id"]] for seg in sorted(segments, key=lambda g: g["id"])]
    assert sorted(ui.mask_rows()) == sorted(CITYSCAPES[seg["id"]] for seg in segments)
    # Every pixel is tinted, each in its class colour: swatches and canvas agree.
    after = ui.pixels()
    assert changed(before, after).mean() > 0.95
    swatches = ui.page.locator("#legend li .swatch").evaluate_all(
        "els => els.map(e => getComputedStyle(e).backgroundColor)")
    for seg, css in zip(sorted(segments, key=lambda g: g["id"]), swatches):
        rgb = np.array([int(v) for v in css[css.index("(") + 1 : -1].split(",")])
        inside = decode(seg["rle"]) & ~boundary(decode(seg["rle"]))
        if inside.any():
            expected = np.rint(0.5 * before[..., :3][inside] + 0.5 * rgb)
            assert np.abs(after[..., :3][inside] - expected).max() <= 2  # 8-bit compositing
    ui.shot()


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


def _open_clip(ui: UI, path: Path, frames: int = 8) -> list[str]:
    """Open the clip at 10 frames per second (the first ``frames``); return the list the
    page's RPC method names go to."""
    calls: list[str] = []
    ui.page.on("request", lambda r: r.url.endswith("/rpc") and calls.append(json.loads(r.post_data)["method"]))
    ui.page.click(".video-options summary")
    ui.page.fill("#fps", "10")
    ui.page.fill("#max-frames", str(frames))
    ui.page.set_input_files("#open-video", str(path))
    ui.page.wait_for_selector("#timeline:not([hidden])")
    ui.settle()
    assert ui.page.inner_text("#frame-label") == f"frame 1 / {frames}"
    assert ui.canvas_size() == (128, 96)
    return calls


def disc(x: float, y: float) -> np.ndarray:
    """echo-tracker's mask: radius 6 around (x, y) on the 96 x 128 clip."""
    yy, xx = np.mgrid[0:96, 0:128] + 0.5
    return (xx - x) ** 2 + (yy - y) ** 2 <= 36


def test_video_prompt_propagate_and_correct(tiny_server: Server, ui: UI, clip: tuple[list[Scene], Path]) -> None:
    """The whole video flow with a deterministic tracker, so every frame's mask is known."""
    frames, path = clip
    ui.open(tiny_server.page_url)
    calls = _open_clip(ui, path)
    ui.choose("tracker", "echo-tracker")
    push, prompt = "vision.segment_video_push_frame", "vision.segment_video_add_prompt"
    before = ui.pixels()
    ui.rpc(lambda: ui.click(*frames[0].inside), method=prompt)
    first = (ui.sent["points"][0]["x"], ui.sent["points"][0]["y"])
    assert first == pytest.approx(frames[0].inside, abs=0.5)
    assert calls == ["vision.segment_video_start", push, prompt]
    assert ui.mask_rows() == ["object 1"]
    check_drawn(before, ui.pixels(), disc(*first))
    check_markers(ui, [first])

    calls.clear()
    ui.page.click("#propagate")
    ui.settle()
    assert ui.page.inner_text("#status") == "Tracked 7 frames"
    assert calls == [push] * 7
    assert ui.page.evaluate("document.querySelector('#progress').value") == 1
    ui.page.fill("#frame", "7")
    assert ui.page.inner_text("#frame-label") == "frame 8 / 8"
    check_drawn(ui.image_pixels(), ui.pixels(), disc(*first))

    # A correction on frame 3, behind the newest frame: the session restarts, frame 0's
    # prompt is replayed, and frames after 3 wait for the next propagation.
    calls.clear()
    ui.page.fill("#frame", "3")
    ui.rpc(lambda: ui.click(*frames[3].inside), method=prompt)
    (marker,) = ui.page.evaluate("window.segmentkit.state.prompts")  # ui.sent is frame 0's replay
    moved = (marker["x"], marker["y"])
    assert moved == pytest.approx(frames[3].inside, abs=0.5)
    assert calls == ["vision.segment_video_close", "vision.segment_video_start", push, prompt, push, push, push,
                     prompt]
    ui.page.fill("#frame", "7")
    assert ui.mask_rows() == []
    ui.page.click("#propagate")
    ui.settle()
    assert ui.page.inner_text("#status") == "Tracked 4 frames"

    # A second object on the newest frame is prompted in place.
    ui.page.click("#new-object")
    calls.clear()
    ui.rpc(lambda: ui.click(20.5, 80.5), method=prompt)
    other = (ui.sent["points"][0]["x"], ui.sent["points"][0]["y"])
    assert calls == [prompt]
    assert ui.mask_rows() == ["object 1", "object 2"]
    ui.shot()

    expected = {f: [disc(*first)] for f in range(3)}
    expected.update({f: [disc(*moved)] for f in range(3, 7)})
    expected[7] = [disc(*moved), disc(*other)]
    coco = json.loads(ui.download("#export-coco"))
    assert [img["frame_index"] for img in coco["images"]] == list(range(8))
    for img in coco["images"]:
        anns = sorted((a for a in coco["annotations"] if a["image_id"] == img["id"]), key=lambda a: a["object_id"])
        assert [a["object_id"] for a in anns] == list(range(1, len(expected[img["frame_index"]]) + 1))
        for ann, mask in zip(anns, expected[img["frame_index"]]):
            assert np.array_equal(decode(ann["segmentation"]), mask), f"frame {img['frame_index']}"

    # Hiding object 1 hides it on every frame.
    ui.page.click("#mask-list li[data-mask-id='object-1'] .toggle")
    check_drawn(ui.image_pixels(), ui.pixels(), disc(*other))
    ui.page.fill("#frame", "5")
    assert not changed(ui.image_pixels(), ui.pixels()).any()

    # A text prompt (the model card lists "text", so the text box shows) for a third object.
    assert ui.page.is_visible("#text-form")
    ui.page.click("#new-object")
    ui.page.fill("#text", "a ball")
    on_frame_5 = (lambda r: r.url.endswith("/rpc") and json.loads(r.post_data)["method"] == prompt
                  and json.loads(r.post_data)["params"]["frame"] == 5)
    with ui.page.expect_request(on_frame_5) as request:
        ui.page.click("#text-form button")
    ui.settle()
    params = json.loads(request.value.post_data)["params"]
    assert params == {"session": params["session"], "frame": 5, "object_id": 3, "text": "a ball"}
    assert ui.mask_rows() == ["object 1", "object 3"]
    check_drawn(ui.image_pixels(), ui.pixels(), disc(64, 48))


def test_video_with_tiny_sam2(tiny_server: Server, ui: UI, clip: tuple[list[Scene], Path]) -> None:
    """A real tracker (random weights): prompt frame 0, propagate, masks drawn on the last frame.
    Four frames keep it quick; the deterministic tracker's test checks every frame's mask."""
    frames, path = clip
    ui.open(tiny_server.page_url)
    if not _offered(ui, "tracker|tiny-sam2|"):
        pytest.skip("segmentkit-sam2 is not installed")
    _open_clip(ui, path, frames=4)
    ui.choose("tracker", "tiny-sam2")
    answer = ui.rpc(lambda: ui.click(*frames[0].inside), method="vision.segment_video_add_prompt")
    assert [m["object_id"] for m in answer["result"]["masks"]] == [1]
    ui.page.click("#propagate")
    ui.settle()
    assert ui.page.inner_text("#status") == "Tracked 3 frames"
    ui.page.fill("#frame", "3")
    (rle,) = ui.page.evaluate("window.segmentkit.state.video.tracker.results.get(3).map((m) => m.rle)")
    check_drawn(ui.image_pixels(), ui.pixels(), decode(rle))
    assert ui.mask_rows() == ["object 1"]
    ui.shot()


def test_client_streams_propagation_over_websocket(tiny_server: Server, ui: UI,
                                                    clip: tuple[list[Scene], Path]) -> None:
    """VideoSession.propagate: one progress notification per frame, then the summary."""
    frames, _ = clip
    folder = tiny_server.folder / "frames"
    folder.mkdir(exist_ok=True)
    for i, scene in enumerate(frames):
        Image.fromarray(scene.image).save(folder / f"{i:05d}.png")
    ui.open(tiny_server.page_url)
    if not _offered(ui, "tracker|tiny-sam2|"):
        pytest.skip("segmentkit-sam2 is not installed")
    x, y = frames[0].inside
    out = ui.page.evaluate("""async ({dir, x, y}) => {
        const { VisionClient } = await import('/vision-client.js');
        const client = VisionClient.fromLocation();
        const session = await client.startVideo({ source: { path: dir }, model: 'tiny-sam2' });
        await session.addPrompt(0, 1, { point: { x, y } });
        const seen = [];
        const result = await session.propagate({
            onFrame: (frame, p) => seen.push([frame.frame, p.done, p.total, frame.masks.map((m) => m.object_id)]),
        });
        await session.close();
        let error = null;
        try { await session.addPrompt(0, 1, { point: { x, y } }); }
        catch (e) { error = { name: e.name, reason: e.reason }; }
        client.close();
        return { frames: session.numFrames, seen, result, error };
    }""", {"dir": str(folder), "x": x, "y": y})
    n = len(frames)
    assert out["frames"] == n
    assert out["seen"] == [[i, i + 1, n, [1]] for i in range(n)]
    assert out["result"] == {"session": out["result"]["session"], "frames_done": n, "cancelled": False,
                             "frames": None}
    assert out["error"] == {"name": "VisionError", "reason": "session_error"}


def test_docs_embedding_example(classic_server: Server, ui: UI, scene: tuple[Scene, Path]) -> None:
    """The minimal embedding example of docs/web-ui.md works as written."""
    s, path = scene
    text = (ROOT / "docs" / "web-ui.md").read_text()
    block = text.split("<!-- embedding-example -->")[1].split("<!-- /embedding-example -->")[0]
    html = block.split("```html")[1].split("```")[0]
    ui.page.goto(f"{classic_server.url}style.css?token={classic_server.token}")  # same origin, token in the URL
    ui.page.set_content(html)
    ui.page.set_input_files("#file", str(path))
    canvas = ui.page.locator("#view canvas.sk-overlay")
    ui.page.wait_for_function("document.querySelector('#view canvas.sk-overlay').width === 320")
    before = ui.pixels()
    box = canvas.bounding_box()
    with ui.page.expect_response(lambda r: r.url.endswith("/rpc")) as info:
        ui.page.mouse.click(box["x"] + s.inside[0] * box["width"] / SIZE[1],
                            box["y"] + s.inside[1] * box["height"] / SIZE[0])
    mask = decode(info.value.json()["result"]["masks"][0]["rle"])
    deadline = time.monotonic() + 10
    while not changed(before, ui.pixels()).any() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert iou(mask, s.mask) > 0.85
    check_drawn(before, ui.pixels(), mask)
    assert ui.page.inner_text("#message") == ""
    ui.shot()
