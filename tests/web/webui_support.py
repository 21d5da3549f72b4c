"""Helpers of the browser tests: servers, the test plugin, a page driver and canvas checks.

The web UI in a real browser: Playwright drives headless Chromium against `segmentkit serve`.

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
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import segmentkit
from pycocotools import mask as coco_mask

try:
    from playwright import sync_api
except ImportError:  # reported by the `browser` fixture
    sync_api = None

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).parents[1] / "web_artifacts"
SAMPLE = Path(segmentkit.__file__).parent / "samples" / "chelsea.png"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
OFFLINE = {"SEGMENTKIT_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
SIZE = (240, 320)  # (H, W) of the test scene
MAX_PIXELS = 200_000  # the classic server's --max-pixels: the scene and the sample fit, 500 x 500 does not


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
    from segmentkit.sessions import TrackingSession

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
        """A deterministic live tracker: each object is a disc of radius 6 around its first
        positive point (the frame's centre for a text prompt), carried onto every later frame."""

        def __init__(self, card, options):
            self.card, self.options = card, options

        def start(self, source=None, *, stream=False):
            from segmentkit.errors import SessionError
            from segmentkit.io.video import FrameStream

            if not stream:
                raise SessionError("echo-tracker follows live streams only")
            return EchoSession(FrameStream())


    class EchoSession(TrackingSession):
        def __init__(self, frames):
            super().__init__(frames, model_id="echo-tracker")
            self.centres = {}  # object id -> (x, y)

        def _masks(self, frame):
            import numpy as np
            from segmentkit.types import FrameMasks, Masks

            h, w = self.frame_size
            yy, xx = np.mgrid[0:h, 0:w] + 0.5
            ids = self.object_ids
            discs = [(xx - self.centres[i][0]) ** 2 + (yy - self.centres[i][1]) ** 2 <= 36 for i in ids]
            stack = np.array(discs, bool).reshape(len(ids), h, w)
            return FrameMasks(frame, Masks(stack, scores=[0.5] * len(ids), object_ids=ids))

        def _prompt(self, frame, index, prompts):
            from segmentkit.errors import SessionError

            if frame != len(self.frames) - 1:
                raise SessionError(f"echo-tracker takes prompts on its newest frame only, not {frame}")
            point = next((p for p in prompts if p.kind == "point" and p.positive), None)
            h, w = self.frame_size
            self.centres[self.objects.id_of(index)] = (w / 2, h / 2) if point is None else (point.x, point.y)
            return self._masks(frame)

        def _track(self, frame, reverse):
            return self._masks(frame)

        def _remove(self, object_id, index):
            self.centres.pop(object_id, None)

        def _clear(self):
            self.centres.clear()


    def _echo():
        from segmentkit.cards import ModelCard

        card = ModelCard(id="echo-tracker", family="test", roles=("tracker",), tasks=("track",),
                         prompt_kinds=("point", "text"), license="Apache-2.0", runtimes=("numpy",),
                         description="deterministic stand-in tracker (tests)")
        return ModelSpec(card=card, role="tracker", loader="sk_webui_tiny:EchoTracker")


    class GatePrompter:
        """A deterministic prompter the tests can hold and fail: discs of radius 10, 16 and 22
        (scores 0.3, 0.9, 0.6) around the last positive point (the centre for a text or a
        box). While the file ``hold`` exists in FOLDER it waits; while ``fail`` exists it
        raises."""

        RADII, SCORES = (10, 16, 22), (0.3, 0.9, 0.6)

        def __init__(self, card, options):
            self.card, self.options = card, options

        def embed(self, image):
            from segmentkit.io import image_key, load_image
            from segmentkit.roles import Embedding

            rgb = load_image(image)
            return Embedding(model_id=self.card.id, image_size=rgb.shape[:2], key=image_key(rgb))

        def predict(self, embedding, prompts, multimask=False):
            import time

            import numpy as np
            from segmentkit.errors import SegmentkitError
            from segmentkit.types import Masks

            deadline = time.monotonic() + 120
            while (FOLDER / "hold").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            if (FOLDER / "fail").exists():
                raise SegmentkitError("gate-prompter was told to fail")
            h, w = embedding.image_size
            points = [p for p in prompts if p.kind == "point" and p.positive]
            x, y = (points[-1].x, points[-1].y) if points else (w / 2, h / 2)
            yy, xx = np.mgrid[0:h, 0:w] + 0.5
            keep = range(3) if multimask else [1]
            stack = np.array([(xx - x) ** 2 + (yy - y) ** 2 <= self.RADII[k] ** 2 for k in keep])
            return Masks(stack, scores=[self.SCORES[k] for k in keep])

        def predict_batch(self, embedding, prompt_sets, multimask=False):
            return [self.predict(embedding, p, multimask) for p in prompt_sets]


    def _gate():
        from segmentkit.cards import ModelCard

        card = ModelCard(id="gate-prompter", family="test", roles=("prompter",), tasks=("prompt",),
                         prompt_kinds=("point", "box", "text"), license="Apache-2.0", runtimes=("numpy",),
                         description="deterministic prompter the tests hold and fail")
        return ModelSpec(card=card, role="prompter", loader="sk_webui_tiny:GatePrompter")


    @hookimpl
    def segmentkit_prompters():
        return [_gate()] + (_sam2("prompter") if SAM2 else [])


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


# --------------------------------------------------------------------------- browser


class UI:
    """The page of one test, with helpers that act like a person and read the canvas."""

    def __init__(self, page: Any, name: str):
        self.page = page
        self.name = name
        self.errors: list[str] = []
        self.sent: dict[str, Any] = {}  # params of the request ``rpc`` waited for
        self.dialogs: list[str] = []  # messages of confirm() dialogs, answered with ``accept_dialogs``
        self.accept_dialogs = True
        self.calls: list[dict[str, Any]] = []  # every JSON-RPC request the page sent: {method, params}
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("dialog", self._dialog)
        page.on("request", self._request)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.accept() if self.accept_dialogs else dialog.dismiss()

    def _request(self, request: Any) -> None:
        if request.url.endswith("/rpc") and request.method == "POST":
            self.calls.append(json.loads(request.post_data))

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
        """Pick ``model`` in the model list, then its mode (role and task)."""
        self.page.select_option("#model", model)
        self.page.select_option("#mode", f"{role}|{model}|{task}")

    def open_image(self, path: Path) -> None:
        self.page.set_input_files("#open-image", str(path))
        self.page.wait_for_function("window.segmentkit.overlay.hasImage")
        self.idle()

    def _to_page(self, x: float, y: float) -> tuple[float, float]:
        box = self.page.locator("canvas.sk-overlay").bounding_box()
        w, h = self.canvas_size()
        return box["x"] + x * box["width"] / w, box["y"] + y * box["height"] / h

    def click(self, x: float, y: float, *, shift: bool = False, ctrl: bool = False) -> None:
        """Click image pixel (x, y); Shift: negative point; Ctrl: a point even on another object."""
        px, py = self._to_page(x, y)
        held = [key for key, down in (("Shift", shift), ("Control", ctrl)) if down]
        for key in held:
            self.page.keyboard.down(key)
        self.page.mouse.click(px, py)
        for key in held:
            self.page.keyboard.up(key)

    def drag(self, x0: float, y0: float, x1: float, y1: float) -> None:
        mouse = self.page.mouse
        mouse.move(*self._to_page(x0, y0))
        mouse.down()
        mouse.move(*self._to_page((x0 + x1) / 2, (y0 + y1) / 2), steps=4)
        mouse.move(*self._to_page(x1, y1), steps=4)
        mouse.up()

    def touch(self, kind: str, *points: tuple[float, float]) -> None:
        """A raw touch event (touchStart / touchMove / touchEnd) with fingers at image pixels."""
        if not hasattr(self, "_cdp"):
            self._cdp = self.page.context.new_cdp_session(self.page)
        fingers = [dict(zip(("x", "y"), self._to_page(x, y)), id=k) for k, (x, y) in enumerate(points)]
        self._cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": fingers})

    def tap(self, x: float, y: float) -> None:
        self.page.touchscreen.tap(*self._to_page(x, y))

    def prompts(self) -> list[dict[str, Any]]:
        """The prompts of the object being prompted, as the page holds them."""
        return self.page.evaluate("window.segmentkit.prompts()")

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
            for (let i = 0; i < d.data.length; i += 0x8000) {
                s += String.fromCharCode.apply(null, d.data.subarray(i, i + 0x8000));
            }
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


# --------------------------------------------------------------------------- scenes and checks


def shadow_pixels(ui: UI, selector: str) -> np.ndarray:
    """The picture canvas of the <segmentkit-overlay> at ``selector``, (H, W, 4) uint8."""
    w, h, data = ui.page.evaluate("""(selector) => {
        const c = document.querySelector(selector).shadowRoot.querySelector('[part=canvas]');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let s = '';
        for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode.apply(null, d.subarray(i, i + 0x8000));
        return [c.width, c.height, btoa(s)];
    }""", selector)
    return np.frombuffer(base64.b64decode(data), np.uint8).reshape(h, w, 4)


def decode(rle: dict[str, Any]) -> np.ndarray:
    return coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)


def changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return np.any(before != after, axis=2)


def marker_layer(ui: UI) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Alpha of the marker canvas (screen resolution), its image-to-marker-pixel scale and
    where image pixel (0, 0) is on it (the markers cover the whole view)."""
    w, h, scale, origin, data = ui.page.evaluate("""() => {
        const m = document.querySelector('canvas.sk-overlay-markers');
        const d = m.getContext('2d').getImageData(0, 0, m.width, m.height).data;
        const a = new Uint8Array(d.length / 4);
        for (let i = 0; i < a.length; i++) a[i] = d[i * 4 + 3];
        let s = '';
        for (let i = 0; i < a.length; i += 0x8000) s += String.fromCharCode.apply(null, a.subarray(i, i + 0x8000));
        const box = m.getBoundingClientRect();
        const pic = document.querySelector('canvas.sk-overlay').getBoundingClientRect();
        const k = m.width / box.width;
        return [m.width, m.height, pic.width * k / window.segmentkit.overlay.width,
                [(pic.left - box.left) * k, (pic.top - box.top) * k], btoa(s)];
    }""")
    return np.frombuffer(base64.b64decode(data), np.uint8).reshape(h, w), scale, tuple(origin)


def check_markers(ui: UI, points: list[tuple[float, float]], boxes: list[tuple[float, ...]] = ()) -> None:
    """Markers are drawn at the prompts (within 12 screen pixels), nowhere else."""
    alpha, scale, (ox, oy) = marker_layer(ui)
    dpr = ui.page.evaluate("devicePixelRatio")
    yy, xx = np.mgrid[0 : alpha.shape[0], 0 : alpha.shape[1]] + 0.5
    xx, yy = xx - ox, yy - oy
    allowed = np.zeros(alpha.shape, bool)
    for x, y in points:
        d2 = (xx - x * scale) ** 2 + (yy - y * scale) ** 2
        allowed |= d2 <= (12 * dpr) ** 2
        assert alpha[d2 <= (4 * dpr) ** 2].min() > 0, f"no marker at {(x, y)}"
    for x0, y0, x1, y1 in boxes:
        pad = 3 * dpr
        outer = ((xx >= x0 * scale - pad) & (xx <= x1 * scale + pad)
                 & (yy >= y0 * scale - pad) & (yy <= y1 * scale + pad))
        inner = (xx > x0 * scale + pad) & (xx < x1 * scale - pad) & (yy > y0 * scale + pad) & (yy < y1 * scale - pad)
        allowed |= outer & ~inner
        assert alpha[outer & ~inner].mean() > 0.3, "no box marker"
    cursor = ui.page.evaluate("window.segmentkit && window.segmentkit.overlay.cursor")
    if cursor:  # the keyboard cursor's crosshair
        allowed |= (xx - cursor["x"] * scale) ** 2 + (yy - cursor["y"] * scale) ** 2 <= (13 * dpr) ** 2
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




def offered(ui: UI, value: str) -> bool:
    """Whether the page offers mode ``value`` ("role|model|task")."""
    return ui.page.evaluate("(value) => window.segmentkit.state.modes.has(value)", value)


def open_clip(ui: UI, path: Path, frames: int = 8) -> list[str]:
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
    assert ui.page.inner_text("#frame-label") == f"frame 1 / {frames} · 0.05 s"
    assert ui.canvas_size() == (128, 96)
    return calls


def disc(x: float, y: float) -> np.ndarray:
    """echo-tracker's mask: radius 6 around (x, y) on the 96 x 128 clip."""
    yy, xx = np.mgrid[0:96, 0:128] + 0.5
    return (xx - x) ** 2 + (yy - y) ** 2 <= 36
