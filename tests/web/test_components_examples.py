"""The example hosts (examples/react, examples/plain-html) in Chromium against a real `segmentkit serve`.

Each example installs @segmentkit/components from its `npm pack` tarball (the lock files
pin that tarball). The React app's production build and the plain page are served from
their own origin; `segmentkit serve --allow-origin <that origin>` answers. A click on the
cat's eye in the sample photo must put a mask on the eye (checked against the eye's box,
and on the canvas against the RLE the service sent), and every request stays on the two
local servers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from components_support import PACKAGE, REACT, ROOT, require_node, static_site
from webui_support import UI, Server, changed, check_drawn, decode, shadow_pixels

PLAIN = ROOT / "examples" / "plain-html"
EYE = (155, 116)  # (x, y) of the left eye's iris in chelsea.png (451 x 300)
EYE_BOX = (125, 80, 215, 155)  # x0, y0, x1, y1 around that eye


@pytest.fixture(scope="module")
def react_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_node(REACT / "node_modules")
    out = tmp_path_factory.mktemp("react") / "dist"
    done = subprocess.run([str(REACT / "node_modules" / ".bin" / "vite"), "build", "--outDir", str(out),
                           "--emptyOutDir"], cwd=REACT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def _click_the_eye(ui: UI, site: str, page: str, tmp_path: Path) -> None:
    server = Server(tmp_path / "serve", "--allow-origin", site).ready()
    try:
        requested: list[str] = []
        ui.page.on("request", lambda r: requested.append(r.url))
        ui.page.goto(f"{site}/{page}?service={quote(server.page_url, safe='')}")
        ui.page.wait_for_function("document.querySelector('segmentkit-overlay')?.imageWidth === 451")
        box = ui.page.locator("segmentkit-overlay").bounding_box()
        scale = min(box["width"] / 451, box["height"] / 300)
        x = box["x"] + (box["width"] - 451 * scale) / 2 + EYE[0] * scale
        y = box["y"] + (box["height"] - 300 * scale) / 2 + EYE[1] * scale
        before = shadow_pixels(ui, "segmentkit-overlay")
        answered = lambda r: r.url.startswith(server.url) and r.url.endswith("/rpc")  # noqa: E731
        with ui.page.expect_response(answered) as info:
            ui.page.mouse.click(x, y)
        sent = json.loads(info.value.request.post_data)["params"]
        assert sent["point"] == {"x": pytest.approx(EYE[0], abs=0.5), "y": pytest.approx(EYE[1], abs=0.5),
                                 "positive": True}
        mask = decode(info.value.json()["result"]["masks"][0]["rle"])
        ui.page.wait_for_function("document.querySelector('#status').textContent.startsWith('Mask of')")
        x0, y0, x1, y1 = EYE_BOX
        assert mask[EYE[1], EYE[0]], "the mask does not cover the clicked pixel"
        assert mask[y0:y1, x0:x1].sum() >= 0.9 * mask.sum(), "the mask spills off the eye"
        assert 0.1 * (x1 - x0) * (y1 - y0) < mask.sum(), "the mask is a speck, not the eye"
        after = shadow_pixels(ui, "segmentkit-overlay")
        assert changed(before, after).any()
        check_drawn(before, after, mask)
        outside = [u for u in requested if not (u.startswith((site, server.url, "data:", "blob:")))]
        assert outside == [], f"the page loaded from outside the local servers: {outside}"
        ui.shot()
    finally:
        server.stop()


def test_react_example_build_masks_the_eye(browser: Any, ui: UI, react_build: Path, tmp_path: Path) -> None:
    with static_site(react_build) as site:
        _click_the_eye(ui, site, "", tmp_path)


def test_plain_html_example_masks_the_eye(browser: Any, ui: UI, tmp_path: Path) -> None:
    require_node(PLAIN / "node_modules")
    with static_site(ROOT) as site:  # the page and the repository's sample photo
        _click_the_eye(ui, site, "examples/plain-html/index.html", tmp_path)


def test_example_locks_pin_the_current_tarball(tmp_path: Path) -> None:
    """The examples test the package as it is: their locks hold the integrity of today's `npm pack`."""
    npm = require_node(PACKAGE / "node_modules")
    done = subprocess.run([npm, "pack", "--pack-destination", str(tmp_path)], cwd=PACKAGE,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    (tarball,) = tmp_path.glob("*.tgz")
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    for example in (REACT, PLAIN):
        lock = json.loads((example / "package-lock.json").read_text())
        pinned = lock["packages"]["node_modules/@segmentkit/components"]["integrity"]
        assert pinned == integrity, (f"{example.relative_to(ROOT)}: the lock pins an older package; run "
                                     "`npm run update-components` there")
