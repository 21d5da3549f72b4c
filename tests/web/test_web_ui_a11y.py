"""Accessibility of the web UI: axe-core (bundled by axe-playwright-python, injected into
the page; nothing from a CDN) finds no serious or critical violation on a desktop and a
phone, with an image, objects, the selected object's editor and the help dialog showing.
The screenshots ``screen-1280x800.png`` and ``screen-390x844.png`` go to tests/web_artifacts/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from segmentkit.testing.scenes import Scene
from webui_support import ARTIFACTS, UI, Server

axe_playwright = pytest.importorskip("axe_playwright_python.sync_playwright",
                                     reason="pip install axe-playwright-python (requirements-test.txt)")


def _serious(ui: UI) -> list[str]:
    result = axe_playwright.Axe().run(ui.page)
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']]}"
            for v in result.response["violations"] if v["impact"] in ("serious", "critical")]


def _annotate(ui: UI, server: Server, scene: tuple[Scene, Path]) -> None:
    s, path = scene
    ui.open(server.page_url)
    ui.open_image(path)
    ui.page.check("#multimask")
    top = "window.scrollTo(0, 0)"  # a phone scrolls down to the controls, under the image
    ui.page.evaluate(top)
    ui.rpc(lambda: ui.click(*s.inside))
    ui.page.click("#new-object")
    ui.page.evaluate(top)
    ui.rpc(lambda: ui.click(*s.outside))
    ui.page.fill("#mask-list li.selected .class-name", "background")
    ui.page.press("#mask-list li.selected .class-name", "Enter")


def test_desktop_has_no_serious_accessibility_violations(classic_server: Server, ui: UI,
                                                        scene: tuple[Scene, Path]) -> None:
    _annotate(ui, classic_server, scene)
    ui.page.click("#mask-list li >> nth=0 >> .name")  # object 1: its three candidates show
    assert ui.page.locator("#mask-list .candidates input").count() == 3
    ui.page.screenshot(path=str(ARTIFACTS / "screen-1280x800.png"))
    assert _serious(ui) == []
    ui.page.keyboard.press("?")
    assert ui.page.is_visible("#help")
    assert _serious(ui) == []


def test_phone_has_no_serious_accessibility_violations(classic_server: Server, phone: UI,
                                                      scene: tuple[Scene, Path]) -> None:
    _annotate(phone, classic_server, scene)
    phone.page.evaluate("window.scrollTo(0, 0)")
    phone.page.screenshot(path=str(ARTIFACTS / "screen-390x844.png"))
    phone.page.screenshot(path=str(ARTIFACTS / "screen-390x844-full.png"), full_page=True)
    assert _serious(phone) == []
