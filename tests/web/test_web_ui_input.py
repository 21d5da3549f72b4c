"""The web UI by touch on a phone, by keyboard alone, zoomed, and fed by drop and paste.

Each test is one defect of issue 18 seen by a person: a 390 x 844 phone could not see or
tap the image; Tab skipped the Open buttons and the canvas ignored keys; there was no zoom;
files could only come through the file picker. Prompts are checked in image pixels against
the scene, masks against what the service answered (pycocotools).
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from segmentkit.testing.scenes import Scene
from webui_support import SAMPLE, SIZE, UI, Server, check_drawn, check_markers, decode, iou

VIEWPORT_W = 390


def _rect(ui: UI, selector: str) -> dict[str, float]:
    return ui.page.locator(selector).first.bounding_box()


def test_phone_layout_and_touch_gestures(classic_server: Server, phone: UI, scene: tuple[Scene, Path]) -> None:
    s, path = scene
    ui = phone
    ui.open(classic_server.page_url)
    ui.open_image(path)

    # One column, the image first and in view, nothing wider than the screen.
    assert ui.page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT_W
    header, view, tools = _rect(ui, "header"), _rect(ui, "#view"), _rect(ui, ".tools")
    assert header["height"] < 120
    assert view["y"] < tools["y"] and view["width"] > 0.9 * VIEWPORT_W
    canvas = _rect(ui, "canvas.sk-overlay")
    assert canvas["width"] > 0.9 * view["width"] and canvas["y"] + canvas["height"] < 844
    before = ui.pixels()

    # A tap is a positive point: the tapped object is masked.
    answer = ui.rpc(lambda: ui.tap(*s.inside))
    assert ui.sent["points"] == [{"x": pytest.approx(s.inside[0], abs=1.5), "y": pytest.approx(s.inside[1], abs=1.5),
                                  "positive": True}]
    mask = decode(answer["result"]["masks"][0]["rle"])
    assert iou(mask, s.mask) > 0.85
    check_drawn(before, ui.pixels(), mask)

    # A long press is a negative point (sent while the finger is still down); lifting adds nothing.
    ui.rpc(lambda: ui.touch("touchStart", s.outside))
    ui.touch("touchEnd")
    assert ui.sent["points"][-1] == {"x": pytest.approx(s.outside[0], abs=1.5),
                                     "y": pytest.approx(s.outside[1], abs=1.5), "positive": False}
    assert [p["positive"] for p in ui.prompts()] == [True, False]

    # A one-finger drag draws a box.
    x0, y0, x1, y1 = s.box
    box = (x0 - 6, y0 - 6, x1 + 6, y1 + 6)

    def drag() -> None:
        ui.touch("touchStart", box[:2])
        for t in (0.3, 0.6, 1.0):
            ui.touch("touchMove", (box[0] + t * (box[2] - box[0]), box[1] + t * (box[3] - box[1])))
        ui.touch("touchEnd")

    ui.rpc(drag)
    assert [ui.sent["box"][k] for k in ("x0", "y0", "x1", "y1")] == pytest.approx(list(box), abs=1.5)

    # Two fingers spreading apart zoom in around them; prompts stay in image pixels.
    cx, cy = s.inside
    ui.touch("touchStart", (cx - 10, cy), (cx + 10, cy))
    for spread in (20, 30, 40):
        ui.touch("touchMove", (cx - spread, cy), (cx + spread, cy))
    ui.touch("touchEnd")
    zoom = ui.page.evaluate("window.segmentkit.overlay.zoom")
    assert zoom > 1.5
    assert len(ui.prompts()) == 3, "a pinch must not add a prompt"
    ui.page.tap("#new-object")  # below the image: the page scrolls to it, and back
    ui.page.evaluate("window.scrollTo(0, 0)")
    target = (cx + 4, cy + 3)
    ui.rpc(lambda: ui.tap(*target))
    assert ui.sent["points"] == [{"x": pytest.approx(target[0], abs=1.0), "y": pytest.approx(target[1], abs=1.0),
                                  "positive": True}]
    check_markers(ui, [target])
    ui.shot()


def _tab_to(ui: UI, predicate: str, limit: int = 40) -> int:
    """Press Tab until ``predicate`` (JS, on document.activeElement as ``e``) holds; the count."""
    for count in range(1, limit + 1):
        ui.page.keyboard.press("Tab")
        if ui.page.evaluate(f"(() => {{ const e = document.activeElement; return !!({predicate}); }})()"):
            return count
    pytest.fail(f"Tab never reached {predicate}")


def test_keyboard_only(classic_server: Server, ui: UI, scene: tuple[Scene, Path]) -> None:
    """Open an image, place, move, undo and delete prompts, draw a box and get help: keys only."""
    s, path = scene
    ui.page.on("filechooser", lambda chooser: None)  # turns Chromium's chooser interception on early
    ui.open(classic_server.page_url)
    _tab_to(ui, "e.id === 'open-image-button'")
    with ui.page.expect_file_chooser() as chooser:
        ui.page.keyboard.press("Enter")
    chooser.value.set_files(str(path))
    ui.page.wait_for_function("window.segmentkit.overlay.hasImage")
    ui.idle()

    # Tab reaches the image; its cursor starts at the centre; arrows move it.
    _tab_to(ui, "e.classList.contains('sk-overlay')")
    cursor = ui.page.evaluate("window.segmentkit.overlay.cursor")
    assert cursor == {"x": SIZE[1] / 2, "y": SIZE[0] / 2}
    step = round(max(SIZE) / 100)
    keys = ui.page.keyboard
    moves = {"ArrowRight": round((s.inside[0] - cursor["x"]) / step),
             "ArrowDown": round((s.inside[1] - cursor["y"]) / step)}
    for key, n in moves.items():
        key = key if n >= 0 else {"ArrowRight": "ArrowLeft", "ArrowDown": "ArrowUp"}[key]
        for _ in range(abs(n)):
            keys.press(key)
    at = ui.page.evaluate("window.segmentkit.overlay.cursor")
    assert at == {"x": cursor["x"] + moves["ArrowRight"] * step, "y": cursor["y"] + moves["ArrowDown"] * step}

    # Enter places a point there.
    before = ui.pixels()
    first = decode(ui.rpc(lambda: keys.press("Enter"))["result"]["masks"][0]["rle"])
    assert ui.sent["points"] == [{**at, "positive": True}]
    assert iou(first, s.mask) > 0.85
    check_drawn(before, ui.pixels(), first)

    # Arrows now move that point; the model is asked again once they stop.
    def nudge() -> None:
        keys.press("ArrowLeft")
        keys.press("ArrowLeft")

    ui.rpc(nudge)
    assert ui.sent["points"] == [{"x": at["x"] - 2 * step, "y": at["y"], "positive": True}]
    assert ui.page.evaluate("window.segmentkit.overlay.cursor") == {"x": at["x"] - 2 * step, "y": at["y"]}

    # Ctrl+Z takes the move back (no request: the earlier mask comes back as it was); Ctrl+Shift+Z redoes it.
    sent = len(ui.calls)
    keys.press("Control+z")
    assert ui.prompts() == [{"kind": "point", **at, "positive": True}]
    drawn = np.array(ui.page.evaluate("Array.from(window.segmentkit.overlay.masks[0].data)"), bool).reshape(SIZE)
    assert np.array_equal(drawn, first)
    keys.press("Control+Shift+z")
    assert ui.prompts()[0]["x"] == at["x"] - 2 * step
    keys.press("Control+z")
    assert len(ui.calls) == sent

    # M: negative points; Shift+Enter places the other kind (positive) anyway.
    keys.press("m")
    assert ui.page.get_attribute("#mode-neg", "aria-pressed") == "true"
    for _ in range(12):
        keys.press("ArrowDown")
    ui.rpc(lambda: keys.press("Shift+Enter"))
    assert [p["positive"] for p in ui.sent["points"]] == [True, True]
    ui.rpc(lambda: keys.press("Enter"))
    assert [p["positive"] for p in ui.sent["points"]] == [True, True, False]
    keys.press("p")
    assert ui.page.get_attribute("#mode-pos", "aria-pressed") == "true"

    # Delete removes the selected point (the last one), asking again without it.
    ui.rpc(lambda: keys.press("Delete"))
    assert [p["positive"] for p in ui.sent["points"]] == [True, True]

    # N starts object 2; B twice draws its box around the cursor's two positions.
    keys.press("n")
    keys.press("Escape")  # no point selected: arrows move the cursor
    x0, y0, x1, y1 = s.box
    ui.page.evaluate(f"window.segmentkit.overlay.cursor = {{x: {x0 - 3}, y: {y0 - 3}}}")
    keys.press("b")
    for _ in range(round((x1 - x0 + 6) / step)):
        keys.press("ArrowRight")
    for _ in range(round((y1 - y0 + 6) / step)):
        keys.press("ArrowDown")
    ui.rpc(lambda: keys.press("b"))
    assert set(ui.sent) >= {"box"} and "points" not in ui.sent
    assert ui.mask_rows() == ["object 1", "object 2"]

    # ? opens the list of keys (a modal dialog); Esc closes it.
    keys.press("?")
    assert ui.page.is_visible("#help")
    assert "Undo" in ui.page.inner_text("#help-keys") and "New object" in ui.page.inner_text("#help-keys")
    ui.shot("-help")
    keys.press("Escape")
    assert ui.page.is_hidden("#help")


def test_wheel_zoom_keeps_prompts_in_image_pixels(classic_server: Server, ui: UI,
                                                  scene: tuple[Scene, Path]) -> None:
    s, path = scene
    ui.open(classic_server.page_url)
    ui.open_image(path)
    px, py = ui._to_page(*s.inside)
    ui.page.mouse.move(px, py)
    ui.page.mouse.wheel(0, -400)
    ui.page.wait_for_function("window.segmentkit.overlay.zoom > 1.5")
    # The image pixel under the pointer stayed under it.
    assert ui._to_page(*s.inside) == (pytest.approx(px, abs=1.5), pytest.approx(py, abs=1.5))
    answer = ui.rpc(lambda: ui.click(*s.inside))
    assert ui.sent["points"][0]["x"] == pytest.approx(s.inside[0], abs=0.5)
    assert ui.sent["points"][0]["y"] == pytest.approx(s.inside[1], abs=0.5)
    assert iou(decode(answer["result"]["masks"][0]["rle"]), s.mask) > 0.85
    check_markers(ui, [s.inside])
    ui.shot()
    # 0 fits the image again; + zooms with the keys.
    ui.page.focus("canvas.sk-overlay")
    ui.page.keyboard.press("0")
    assert ui.page.evaluate("window.segmentkit.overlay.zoom") == 1
    ui.page.keyboard.press("+")
    assert ui.page.evaluate("window.segmentkit.overlay.zoom") == 1.5
    assert ui.page.inner_text("#zoom-label") == "150 %"
    check_markers(ui, [s.inside])


def test_drop_and_paste_open_images(classic_server: Server, ui: UI, scene: tuple[Scene, Path]) -> None:
    _, path = scene
    ui.open(classic_server.page_url)
    send = """([name, data, how]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const file = new File([bytes], name, { type: 'image/png' });
        const transfer = new DataTransfer();
        transfer.items.add(file);
        if (how === 'drop') {
            document.querySelector('.stage').dispatchEvent(
                new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
        } else {
            document.dispatchEvent(
                new ClipboardEvent('paste', { clipboardData: transfer, bubbles: true, cancelable: true }));
        }
    }"""
    ui.page.evaluate(send, ["scene.png", base64.b64encode(path.read_bytes()).decode(), "drop"])
    ui.page.wait_for_function("window.segmentkit.overlay.width === 320")
    ui.idle()
    assert np.array_equal(ui.image_pixels()[..., :3], np.asarray(Image.open(path).convert("RGB")))
    ui.page.evaluate(send, ["chelsea.png", base64.b64encode(SAMPLE.read_bytes()).decode(), "paste"])
    ui.page.wait_for_function("window.segmentkit.overlay.width === 451")
    ui.idle()
    assert ui.page.evaluate("window.segmentkit.state.media.name") == "chelsea.png"
