"""<segmentkit-overlay> in Chromium, on a host page of its own origin (tests/web/host/element.html).

Events are checked against image coordinates computed here from the element's box and
the image size (1x), and against the zoom invariant (the image point under the pointer
stays put; screen offsets shrink by the zoom) when zoomed and panned. Masks are read back
from the canvas and compared with pycocotools' decoding of the RLE that was set.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pycocotools import mask as coco_mask
from webui_support import UI, shadow_pixels

W, H = 200, 100  # the test image; the element is 400 x 300 CSS pixels, so the image fits at x2
GREY = 100


def _open(ui: UI, host_site: str) -> UI:
    ui.page.goto(f"{host_site}/element.html")
    ui.page.wait_for_function("window.ready === true")
    return _show_grey(ui)


def _show_grey(ui: UI) -> UI:
    """Give the element a grey W x H canvas as its image; wait for sk-load."""
    ui.page.evaluate("""([w, h, grey]) => {
        const c = document.createElement('canvas');
        c.width = w; c.height = h;
        const ctx = c.getContext('2d');
        ctx.fillStyle = `rgb(${grey}, ${grey}, ${grey})`;
        ctx.fillRect(0, 0, w, h);
        document.getElementById('el').image = c;
    }""", [W, H, GREY])
    ui.page.wait_for_function("window.events.some((e) => e.type === 'sk-load')")
    return ui


def _events(ui: UI, kind: str | None = None) -> list[dict[str, Any]]:
    out = ui.page.evaluate("window.events.splice(0)")
    return [e for e in out if e["type"] != "sk-load" and (kind is None or e["type"] == kind)]


def _screen(ui: UI, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of image pixel (x, y) at zoom 1: the image is fitted and centred."""
    box = ui.page.locator("#el").bounding_box()
    scale = min(box["width"] / W, box["height"] / H)
    left = box["x"] + (box["width"] - W * scale) / 2
    top = box["y"] + (box["height"] - H * scale) / 2
    return left + x * scale, top + y * scale


def _rle(mask: np.ndarray) -> dict[str, Any]:
    e = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(e["size"][0]), int(e["size"][1])], "counts": e["counts"].decode()}


def _canvas(ui: UI) -> np.ndarray:
    return shadow_pixels(ui, "#el")


def test_click_and_drag_give_image_pixels_at_1x(browser: Any, ui: UI, host_site: str) -> None:
    _open(ui, host_site)
    mouse = ui.page.mouse
    mouse.click(*_screen(ui, 50.25, 30.5))
    ui.page.keyboard.down("Shift")
    mouse.click(*_screen(ui, 150, 80))
    ui.page.keyboard.up("Shift")
    points = [e["detail"] for e in _events(ui, "sk-point")]
    assert points == [
        {"x": pytest.approx(50.25, abs=0.5), "y": pytest.approx(30.5, abs=0.5), "positive": True},
        {"x": pytest.approx(150, abs=0.5), "y": pytest.approx(80, abs=0.5), "positive": False},
    ]
    # A drag in box mode is a box, corners ordered; in point mode it only pans (nothing to pan at 1x).
    ui.page.evaluate("document.getElementById('el').mode = 'box'")
    mouse.move(*_screen(ui, 120, 70))
    mouse.down()
    mouse.move(*_screen(ui, 60, 40), steps=5)
    mouse.move(*_screen(ui, 20, 10), steps=5)
    mouse.up()
    (box,) = [e["detail"] for e in _events(ui)]
    assert [box[k] for k in ("x0", "y0", "x1", "y1")] == pytest.approx([20, 10, 120, 70], abs=0.5)
    ui.page.evaluate("document.getElementById('el').mode = 'point'")
    mouse.move(*_screen(ui, 120, 70))
    mouse.down()
    mouse.move(*_screen(ui, 20, 10), steps=5)
    mouse.up()
    assert _events(ui) == []


def test_events_stay_in_image_pixels_zoomed_and_panned(browser: Any, ui: UI, host_site: str) -> None:
    _open(ui, host_site)
    anchor = (60.0, 40.0)
    px, py = _screen(ui, *anchor)
    ui.page.mouse.move(px, py)
    for _ in range(2):
        ui.page.mouse.wheel(0, -300)
    ui.page.wait_for_function("document.getElementById('el').zoom > 2.5")
    zoom = ui.page.evaluate("document.getElementById('el').zoom")
    scale = 2 * zoom  # CSS pixels per image pixel
    # The image point under the pointer stayed under it; 30 CSS pixels right is 30 / scale image pixels.
    ui.page.mouse.click(px, py)
    ui.page.mouse.click(px + 30, py - 12)
    points = [(e["detail"]["x"], e["detail"]["y"]) for e in _events(ui, "sk-point")]
    assert points[0] == (pytest.approx(anchor[0], abs=0.5), pytest.approx(anchor[1], abs=0.5))
    assert points[1] == (pytest.approx(anchor[0] + 30 / scale, abs=0.5),
                         pytest.approx(anchor[1] - 12 / scale, abs=0.5))
    # A drag in point mode pans: the picture moves with the pointer, clicks follow it.
    ui.page.mouse.move(px, py)
    ui.page.mouse.down()
    ui.page.mouse.move(px - 40, py - 20, steps=6)
    ui.page.mouse.up()
    assert _events(ui) == [], "a pan must not place a point"
    ui.page.mouse.click(px, py)
    ((x, y),) = [(e["detail"]["x"], e["detail"]["y"]) for e in _events(ui, "sk-point")]
    assert (x, y) == (pytest.approx(anchor[0] + 40 / scale, abs=0.5),
                      pytest.approx(anchor[1] + 20 / scale, abs=0.5))
    # A box drawn zoomed is in image pixels too.
    ui.page.evaluate("document.getElementById('el').mode = 'box'")
    ui.page.mouse.move(px, py)
    ui.page.mouse.down()
    ui.page.mouse.move(px + 50, py + 25, steps=6)
    ui.page.mouse.up()
    ((box),) = [e["detail"] for e in _events(ui, "sk-box")]
    assert [box[k] for k in ("x0", "y0", "x1", "y1")] == pytest.approx(
        [x, y, x + 50 / scale, y + 25 / scale], abs=0.5)


def test_masks_are_drawn_exactly_where_their_rle_says(browser: Any, ui: UI, host_site: str) -> None:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:H, 0:W]
    ellipse = (xx - 70) ** 2 / 40**2 + (yy - 50) ** 2 / 25**2 < 1
    speckle = (rng.random((H, W)) > 0.7) & (xx > 130)  # ragged edges, single pixels
    ui.page.goto(f"{host_site}/element.html")
    ui.page.wait_for_function("window.ready === true")
    # Masks set before the image: they are drawn once it is there.
    ui.page.evaluate("""(masks) => {
        const el = document.getElementById('el');
        el.setAttribute('opacity', '1');
        el.setAttribute('no-outlines', '');
        el.masks = masks;
    }""", [{"rle": _rle(ellipse), "label": "ellipse", "objectId": 3}, {"rle": _rle(speckle), "classId": 5}])
    _show_grey(ui)
    got = _canvas(ui)
    palette = ui.page.evaluate("[window.sk.PALETTE[3], window.sk.PALETTE[5]]")
    assert palette == [[0, 130, 200], [145, 30, 180]]  # segmentkit.render's colours
    expected = np.full((H, W, 4), 255, np.uint8)
    expected[..., :3] = GREY
    expected[ellipse, :3] = palette[0]
    expected[speckle, :3] = palette[1]
    assert np.array_equal(got, expected)
    # Outlines on: only mask pixels change, and the ellipse's edge pixels are its colour.
    ui.page.evaluate("document.getElementById('el').removeAttribute('no-outlines')")
    assert np.array_equal(_canvas(ui)[~(ellipse | speckle)], expected[~(ellipse | speckle)])
    # A mask of another size is refused with an event, and nothing is drawn.
    ui.page.evaluate("(rle) => { document.getElementById('el').masks = [{rle}]; }",
                     _rle(np.ones((5, 5), bool)))
    errors = _events(ui, "sk-error")
    assert errors and "5x5" in errors[0]["detail"]["message"]
    plain = np.full((H, W, 4), 255, np.uint8)
    plain[..., :3] = GREY
    assert np.array_equal(_canvas(ui), plain)


def test_keyboard_only(browser: Any, ui: UI, host_site: str) -> None:
    _open(ui, host_site)
    keys = ui.page.keyboard
    ui.page.focus("#before")
    keys.press("Tab")
    assert ui.page.evaluate("document.activeElement.id") == "el"
    canvas = ui.page.get_by_role("img", name="test picture")  # the accessible name, through the shadow root
    assert canvas.count() == 1
    assert canvas.evaluate("(c) => c === document.activeElement.shadowRoot.activeElement")
    keys.press("ArrowRight")  # shows the crosshair at the centre
    for _ in range(3):
        keys.press("ArrowRight")
    keys.press("Shift+ArrowDown")
    keys.press("Enter")
    keys.press("Shift+Enter")
    points = [e["detail"] for e in _events(ui, "sk-point")]
    assert points == [{"x": W / 2 + 3, "y": H / 2 + 10, "positive": True},
                      {"x": W / 2 + 3, "y": H / 2 + 10, "positive": False}]
    # Box mode: Enter at one corner, move, Enter at the other.
    ui.page.evaluate("document.getElementById('el').mode = 'box'")
    keys.press("Enter")
    keys.press("Shift+ArrowLeft")
    keys.press("Shift+ArrowLeft")
    keys.press("Shift+ArrowUp")
    keys.press("Enter")
    assert [e["detail"] for e in _events(ui)] == [
        {"x0": W / 2 - 17, "y0": H / 2, "x1": W / 2 + 3, "y1": H / 2 + 10}]
    # n / p select masks; the live region says which.
    square = np.zeros((H, W), bool)
    square[10:20, 10:20] = True
    two = [{"rle": _rle(square), "label": "a", "objectId": 7}, {"rle": _rle(square)}]
    ui.page.evaluate("(masks) => { document.getElementById('el').masks = masks; }", two)
    keys.press("n")
    keys.press("n")
    keys.press("n")
    keys.press("p")
    assert [e["detail"] for e in _events(ui, "sk-select")] == [
        {"index": 0, "objectId": 7}, {"index": 1, "objectId": None}, {"index": 0, "objectId": 7},
        {"index": 1, "objectId": None}]
    status = ui.page.locator("#el").evaluate(
        "(el) => el.shadowRoot.querySelector('[part=status]').textContent")
    assert status == "2 masks; selected: mask 2"
    # + zooms, 0 fits again; Tab leaves the element in document order.
    keys.press("+")
    assert ui.page.evaluate("document.getElementById('el').zoom") == 1.25
    keys.press("0")
    assert ui.page.evaluate("document.getElementById('el').zoom") == 1
    keys.press("Tab")
    assert ui.page.evaluate("document.activeElement.id") == "after"


def test_touch_tap_long_press_drag_and_pinch(browser: Any, phone: UI, host_site: str) -> None:
    ui = _open(phone, host_site)
    cdp = ui.page.context.new_cdp_session(ui.page)

    def touch(kind: str, *points: tuple[float, float]) -> None:
        fingers = [{"x": x, "y": y, "id": k} for k, (x, y) in enumerate(points)]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": fingers})

    ui.page.touchscreen.tap(*_screen(ui, 40, 30))
    touch("touchStart", _screen(ui, 150, 60))
    ui.page.wait_for_function("window.events.some((e) => e.type === 'sk-point')")
    ui.page.wait_for_timeout(800)  # a long press: a negative point while the finger is down
    touch("touchEnd")
    assert [e["detail"] for e in _events(ui)] == [
        {"x": pytest.approx(40, abs=0.5), "y": pytest.approx(30, abs=0.5), "positive": True},
        {"x": pytest.approx(150, abs=0.5), "y": pytest.approx(60, abs=0.5), "positive": False}]
    ui.page.evaluate("document.getElementById('el').mode = 'box'")
    touch("touchStart", _screen(ui, 30, 20))
    for t in (0.3, 0.6, 1.0):
        touch("touchMove", _screen(ui, 30 + t * 100, 20 + t * 50))
    touch("touchEnd")
    (box,) = [e["detail"] for e in _events(ui)]
    assert [box[k] for k in ("x0", "y0", "x1", "y1")] == pytest.approx([30, 20, 130, 70], abs=0.5)
    cx, cy = _screen(ui, 100, 50)
    touch("touchStart", (cx - 10, cy), (cx + 10, cy))
    for spread in (20, 30, 40):
        touch("touchMove", (cx - spread, cy), (cx + spread, cy))
    touch("touchEnd")
    assert ui.page.evaluate("document.getElementById('el').zoom") > 2.5
    assert _events(ui) == [], "a pinch must not emit a prompt"
