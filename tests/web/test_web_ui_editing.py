"""Editing in the web UI: objects, undo, candidates, slow and failing requests, limits, video.

Each test is one defect of issue 18: no undo and no reselecting, candidates that could
only be hidden, a model listed twice, automatic rows with no highlight, size limits found
late, slow requests without time or Cancel, queued clicks, a failed point kept and sent
again, no way to track backwards, video COCO without time. ``gate-prompter`` (in the test
plugin) answers discs of known radii and can be held or made to fail.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from segmentkit.testing.scenes import Scene
from webui_support import (
    MAX_PIXELS,
    SAMPLE,
    SIZE,
    UI,
    Server,
    changed,
    check_drawn,
    decode,
    disc,
    offered,
    open_clip,
)


def _disc(x: float, y: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0 : SIZE[0], 0 : SIZE[1]] + 0.5
    return (xx - x) ** 2 + (yy - y) ** 2 <= r * r


def _drawn(ui: UI, index: int = 0) -> np.ndarray:
    """The pixels of the overlay's mask ``index`` as the page holds them."""
    return np.array(ui.page.evaluate(f"Array.from(window.segmentkit.overlay.masks[{index}].data)"), bool).reshape(SIZE)


def test_objects_select_rename_reorder_hide_delete_undo(classic_server: Server, ui: UI,
                                                        scene: tuple[Scene, Path]) -> None:
    s, path = scene
    ui.open(classic_server.page_url)
    ui.open_image(path)
    before = ui.pixels()
    one = decode(ui.rpc(lambda: ui.click(*s.inside))["result"]["masks"][0]["rle"])
    ui.page.click("#new-object")
    two = decode(ui.rpc(lambda: ui.click(*s.outside))["result"]["masks"][0]["rle"])
    assert ui.mask_rows() == ["object 1", "object 2"]
    assert ui.page.inner_text("#mask-list li.selected .name") == "object 2"

    # A click on object 1's mask selects it (no request); its points show again.
    sent = len(ui.calls)
    ui.click(*s.inside)
    assert ui.page.inner_text("#mask-list li.selected .name") == "object 1"
    assert len(ui.calls) == sent and len(ui.prompts()) == 1

    # Renamed with a class: the list, COCO categories and the objects JSON carry it.
    ui.page.fill("#mask-list li.selected .class-name", "cat")
    ui.page.press("#mask-list li.selected .class-name", "Enter")
    assert ui.mask_rows() == ["cat", "object 2"]
    coco = json.loads(ui.download("#export-coco"))
    assert coco["categories"] == [{"id": 1, "name": "cat"}, {"id": 2, "name": "object"}]
    assert [(a["object_id"], a["category_id"]) for a in coco["annotations"]] == [(1, 1), (2, 2)]
    objects = json.loads(ui.download("#export-objects"))
    assert [(m["object_id"], m["name"]) for m in objects["masks"]] == [(1, "cat"), (2, None)]
    assert np.array_equal(decode(objects["masks"][0]["rle"]), one)
    assert objects["masks"][0]["prompts"] == [{"kind": "point", "x": pytest.approx(s.inside[0], abs=1),
                                               "y": pytest.approx(s.inside[1], abs=1), "positive": True}]

    # Reordered: list and export order follow; undo puts it back.
    ui.page.click("#mask-list li.selected .down")
    assert ui.mask_rows() == ["object 2", "cat"]
    coco = json.loads(ui.download("#export-coco"))
    assert [a["object_id"] for a in coco["annotations"]] == [2, 1]
    ui.page.click("#undo")
    assert ui.mask_rows() == ["cat", "object 2"]

    # Hidden (H), then deleted (×): each undoable, the pixels come back as they were.
    ui.page.focus("canvas.sk-overlay")
    ui.page.keyboard.press("h")
    check_drawn(before, ui.pixels(), two)
    ui.page.keyboard.press("Control+z")
    ui.page.click("#mask-list li[data-object-id='2'] .delete")
    assert ui.mask_rows() == ["cat"]
    check_drawn(before, ui.pixels(), one)
    ui.page.click("#undo")
    assert ui.mask_rows() == ["cat", "object 2"]
    assert np.array_equal(_drawn(ui, 1), two)
    ui.page.click("#undo")  # the rename
    assert ui.mask_rows() == ["object 1", "object 2"]
    ui.page.click("#redo")
    assert ui.mask_rows() == ["cat", "object 2"]

    # Undo of the rename, object 2's point and object 2 itself: no request, object 1 as it was.
    sent = len(ui.calls)
    for _ in range(3):
        ui.page.click("#undo")
    assert ui.mask_rows() == ["object 1"] and len(ui.calls) == sent
    check_drawn(before, ui.pixels(), one)

    # Opening another image with objects asks first; saying no keeps everything.
    ui.accept_dialogs = False
    ui.page.set_input_files("#open-image", str(SAMPLE))
    assert ui.dialogs and "1 object" in ui.dialogs[-1]
    assert ui.canvas_size() == (SIZE[1], SIZE[0]) and ui.mask_rows() == ["object 1"]


def test_candidates_pick_one(tiny_server: Server, ui: UI, scene: tuple[Scene, Path]) -> None:
    s, path = scene
    ui.open(tiny_server.page_url)
    ui.choose("prompter", "gate-prompter")
    ui.open_image(path)
    ui.page.check("#multimask")
    before = ui.pixels()
    answer = ui.rpc(lambda: ui.click(*s.inside))
    assert [m["score"] for m in answer["result"]["masks"]] == pytest.approx([0.3, 0.9, 0.6])
    assert ui.mask_rows() == ["object 1"]
    point = (ui.sent["points"][0]["x"], ui.sent["points"][0]["y"])
    check_drawn(before, ui.pixels(), _disc(*point, 16))  # the best-scoring candidate
    ui.page.check("#mask-list .candidates input >> nth=2")
    check_drawn(before, ui.pixels(), _disc(*point, 22))
    ui.page.focus("canvas.sk-overlay")
    ui.page.keyboard.press("1")
    check_drawn(before, ui.pixels(), _disc(*point, 10))
    ui.page.keyboard.press("Control+z")
    ui.page.keyboard.press("Control+z")
    check_drawn(before, ui.pixels(), _disc(*point, 16))


def test_text_prompt_on_an_image(tiny_server: Server, ui: UI, scene: tuple[Scene, Path]) -> None:
    _, path = scene
    ui.open(tiny_server.page_url)
    assert ui.page.is_hidden("#text-form")  # classic takes no text
    ui.choose("prompter", "gate-prompter")
    assert ui.page.is_visible("#text-form")
    ui.open_image(path)
    before = ui.pixels()
    ui.page.fill("#text", "a ball")
    ui.rpc(lambda: ui.page.click("#text-form button"))
    assert ui.sent["text"] == "a ball" and ui.sent["model"] == "gate-prompter"
    check_drawn(before, ui.pixels(), _disc(SIZE[1] / 2, SIZE[0] / 2, 16))
    assert ui.prompts() == [{"kind": "text", "text": "a ball"}]


def test_slow_request_shows_time_and_cancels_and_failed_point_is_dropped(
        tiny_server: Server, ui: UI, scene: tuple[Scene, Path]) -> None:
    s, path = scene
    hold, fail = tiny_server.folder / "hold", tiny_server.folder / "fail"
    ui.open(tiny_server.page_url)
    ui.choose("prompter", "gate-prompter")
    ui.open_image(path)
    try:
        hold.touch()
        ui.click(*s.inside)
        ui.page.wait_for_selector("#cancel-request:not([hidden])")
        assert re.fullmatch(r"\d+(\.\d)? s", ui.page.inner_text("#elapsed"))
        # Clicks while it runs are refused, not queued.
        ui.click(*s.outside)
        ui.click(30, 30)
        assert [c["method"] for c in ui.calls].count("vision.mask_from_prompt") == 1
        assert "Still working" in ui.page.inner_text("#status")
        assert len(ui.prompts()) == 1
        ui.page.keyboard.press("Escape")
        ui.idle()
        assert ui.page.inner_text("#status").startswith("Cancelled")
        assert ui.mask_rows() == [] and ui.prompts() == [] and ui.page.is_hidden("#error")
        assert ui.page.is_hidden("#cancel-request")
    finally:
        hold.unlink(missing_ok=True)

    # A point the service fails on is dropped, and not sent again with the next one.
    try:
        fail.touch()
        with ui.page.expect_response(lambda r: r.url.endswith("/rpc")):
            ui.click(*s.outside)
        assert "told to fail" in ui.error_text()
        ui.idle()
        assert ui.prompts() == [] and ui.mask_rows() == []
    finally:
        fail.unlink(missing_ok=True)
    ui.rpc(lambda: ui.click(*s.inside))
    assert ui.sent["points"] == [{"x": pytest.approx(s.inside[0], abs=1), "y": pytest.approx(s.inside[1], abs=1),
                                  "positive": True}]
    assert ui.mask_rows() == ["object 1"]


def test_image_size_is_checked_when_it_opens(classic_server: Server, ui: UI, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.new("RGB", (500, 500), (200, 30, 30)).save(big)
    ui.open(classic_server.page_url)
    sent = len(ui.calls)
    ui.page.set_input_files("#open-image", str(big))
    text = ui.error_text()
    assert "500×500 = 250,000 pixels" in text and f"{MAX_PIXELS:,}" in text and "--max-pixels" in text
    assert len(ui.calls) == sent and not ui.page.evaluate("window.segmentkit.overlay.hasImage")


def test_model_picker_lists_each_model_once(classic_server: Server, ui: UI) -> None:
    ui.open(classic_server.page_url)
    values = ui.page.locator("#model option").evaluate_all("els => els.map(e => e.value)")
    assert len(values) == len(set(values)) and values.count("classic") == 1
    ui.page.select_option("#model", "classic")
    modes = ui.page.locator("#mode option").all_inner_texts()
    assert modes == ["Prompt", "Segment · automatic", "Track video"]


def test_automatic_rows_highlight_and_select(classic_server: Server, ui: UI) -> None:
    ui.open(classic_server.page_url)
    ui.choose("segmenter", "classic", "automatic")
    ui.open_image(SAMPLE)
    masks = [decode(m["rle"]) for m in ui.rpc(lambda: ui.page.click("#run-segment"))["result"]["masks"]]
    h, w = masks[0].shape
    base = ui.pixels()

    # Hovering a row emphasises that mask on the canvas, and only it.
    k = int(np.argmax([m.sum() for m in masks]))
    ui.page.hover(f"#mask-list li >> nth={k}")
    assert ui.page.evaluate("window.segmentkit.overlay.highlight") == ui.page.get_attribute(
        f"#mask-list li >> nth={k}", "data-mask-id")
    diff = changed(base, ui.pixels())
    assert diff.any() and not (diff & ~masks[k]).any()

    # Hovering a mask on the canvas marks its row (the smallest mask there); a click selects it.
    j = min((j for j in range(len(masks)) if j != k and masks[j].any()), key=lambda j: masks[j].sum())
    ys, xs = np.nonzero(masks[j])
    x, y = xs[len(xs) // 2] + 0.5, ys[len(ys) // 2] + 0.5
    row = ui.page.get_attribute(f"#mask-list li >> nth={j}", "data-mask-id")
    ui.page.mouse.move(*ui._to_page(x, y))
    assert ui.page.locator("#mask-list li.hover").get_attribute("data-mask-id") == row
    ui.click(x, y)
    assert ui.page.locator("#mask-list li.selected").get_attribute("data-mask-id") == row
    assert ui.page.evaluate("window.segmentkit.overlay.selected") == row
    assert (w, h) == ui.canvas_size()


def test_video_propagates_back_exports_and_undoes(tiny_server: Server, ui: UI,
                                                  clip: tuple[list[Scene], Path]) -> None:
    frames, path = clip
    ui.open(tiny_server.page_url)
    open_clip(ui, path)
    ui.choose("tracker", "echo-tracker")
    ui.page.fill("#frame", "4")
    ui.rpc(lambda: ui.click(*frames[4].inside), method="vision.segment_video_add_prompt")
    point = (ui.sent["points"][0]["x"], ui.sent["points"][0]["y"])

    ui.page.click("#propagate-back")
    ui.settle()
    assert ui.page.inner_text("#status") == "Tracked 5 frames back"
    ui.page.fill("#frame", "0")
    check_drawn(ui.image_pixels(), ui.pixels(), disc(*point))
    ui.page.click("#propagate")
    ui.settle()
    assert ui.page.inner_text("#status") == "Tracked 3 frames"

    ytvis = json.loads(ui.download("#export-ytvis"))
    (video,) = ytvis["videos"]
    assert video["length"] == 8 and video["times"] == pytest.approx([(k + 0.5) / 10 for k in range(8)])
    (track,) = ytvis["annotations"]
    assert track["object_id"] == 1 and ytvis["categories"] == [{"id": 1, "name": "object"}]
    for k, rle in enumerate(track["segmentations"]):
        assert np.array_equal(decode(rle), disc(*point)), f"frame {k}"

    # Object 2 on frame 4; undo replays the prompts without it.
    ui.page.fill("#frame", "4")
    ui.page.click("#new-object")
    ui.rpc(lambda: ui.click(20.5, 80.5), method="vision.segment_video_add_prompt")
    check_drawn(ui.image_pixels(), ui.pixels(), disc(*point) | disc(20.5, 80.5))
    assert ui.mask_rows() == ["object 1", "object 2"]
    ui.page.click("#undo")
    ui.settle()
    check_drawn(ui.image_pixels(), ui.pixels(), disc(*point))
    assert ui.mask_rows() == ["object 1"]
    ui.page.click("#redo")
    ui.settle()
    check_drawn(ui.image_pixels(), ui.pixels(), disc(*point) | disc(20.5, 80.5))

    # Deleting object 2 removes it from the tracker (the service forgets it); undo brings it back.
    ui.rpc(lambda: ui.page.click("#mask-list li[data-object-id='2'] .delete"),
           method="vision.segment_video_remove_object")
    assert ui.sent == {"session": ui.sent["session"], "object_id": 2}
    check_drawn(ui.image_pixels(), ui.pixels(), disc(*point))
    assert ui.mask_rows() == ["object 1"]
    ui.page.click("#undo")
    ui.settle()
    check_drawn(ui.image_pixels(), ui.pixels(), disc(*point) | disc(20.5, 80.5))
    assert ui.mask_rows() == ["object 1", "object 2"]


@pytest.mark.parametrize("model", ["tiny-sam2"])
def test_tiny_sam2_is_offered_once_with_its_modes(tiny_server: Server, ui: UI, model: str) -> None:
    ui.open(tiny_server.page_url)
    if not offered(ui, f"prompter|{model}|"):
        pytest.skip("segmentkit-sam2 is not installed")
    ui.page.select_option("#model", model)
    assert ui.page.locator("#mode option").all_inner_texts() == ["Prompt", "Track video"]
    assert ui.page.locator(f"#model option[value='{model}']").count() == 1
