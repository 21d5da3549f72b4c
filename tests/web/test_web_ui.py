"""The web UI in a real browser: Playwright drives headless Chromium against `segmentkit serve`.

Each test opens the page a real ``segmentkit serve --port 0`` process serves on loopback
(the classic model; and, registered with ``--plugin``, tiny random-weight SAM 2 and
SegFormer plus deterministic stand-in models whose masks are known), works it with the
mouse and file inputs as a person would, and checks what the canvas shows against masks
decoded independently (pycocotools) from the service's own answers. Fixtures are in
``conftest.py``, helpers in ``webui_support.py``; a screenshot of each flow is written to
``tests/web_artifacts/``.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask
from segmentkit.testing.scenes import Scene
from webui_support import (
    ROOT,
    SAMPLE,
    SIZE,
    UI,
    Server,
    boundary,
    changed,
    check_drawn,
    check_markers,
    decode,
    disc,
    iou,
    offered,
    open_clip,
    shadow_pixels,
)

# --------------------------------------------------------------------------- tests: classic


def test_click_point_masks_the_clicked_object(classic_server: Server, ui: UI, scene: tuple[Scene, Path]) -> None:
    s, path = scene
    ui.open(classic_server.page_url)
    assert (ui.page.input_value("#model"), ui.page.input_value("#mode")) == ("classic", "prompter|classic|")
    ui.open_image(path)
    before = ui.pixels()
    assert np.array_equal(before[..., :3], s.image), "the canvas does not show the image as loaded"

    answer = ui.rpc(lambda: ui.click(*s.inside))
    params = ui.page.evaluate("window.segmentkit.prompts()")
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
    sent = ui.page.evaluate("window.segmentkit.prompts()")
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
        const rle = await import('/components/codecs/rle.js');
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
        const rle = await import('/components/codecs/rle.js');
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
    prompted = decode(ui.rpc(lambda: ui.click(w * 0.4, h * 0.45))["result"]["masks"][0]["rle"])
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
    # The prompted object is kept (issue 18: "Segment image" silently replaced it).
    assert ui.mask_rows() == ["object 1"] + [f"mask {k + 1}" for k in range(len(masks))]
    check_drawn(before, ui.pixels(), np.any(masks, axis=0) | prompted)
    assert "kept" in ui.page.inner_text("#status")
    ui.shot()

    # Back to the prompter: a click on object 1 selects it; Ctrl-click prompts a new object there.
    ui.choose("prompter", "classic")
    assert ui.page.is_visible("#prompt-tools")
    ui.click(w * 0.4, h * 0.45)
    assert ui.page.inner_text("#mask-list li.selected .name") == "object 1"
    ui.page.click("#new-object")
    answer = ui.rpc(lambda: ui.click(w * 0.4, h * 0.45, ctrl=True))
    assert len(answer["result"]["masks"]) == 1
    assert len(ui.mask_rows()) == len(masks) + 2 and ui.mask_rows()[-1] == f"object {len(masks) + 2}"


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
        const { VisionClient, VisionError } = await import('/components/client/vision-client.js');
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


def test_model_without_weights_shows_error(tiny_server: Server, ui: UI, scene: tuple[Scene, Path]) -> None:
    """A model that fails to load: SAM 2 with no checkpoint (the server runs offline)."""
    s, path = scene
    ui.open(tiny_server.page_url)
    if not offered(ui, "prompter|sam2.1-hiera-tiny|"):
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
    if not offered(ui, "prompter|tiny-sam2|"):
        pytest.skip("segmentkit-sam2 is not installed")
    ui.choose("prompter", "tiny-sam2")
    ui.open_image(path)
    before = ui.pixels()
    answer = ui.rpc(lambda: ui.click(*s.inside))
    (out,) = answer["result"]["masks"]
    mask = decode(out["rle"])
    assert 0 < mask.sum() < mask.size  # random weights: some mask, not necessarily the ellipse
    check_drawn(before, ui.pixels(), mask)

    # Three candidates: one object, its candidates listed with their scores, the best one drawn.
    ui.page.check("#multimask")
    answer = ui.rpc(lambda: ui.click(s.inside[0] + 20, s.inside[1], ctrl=True))
    masks = answer["result"]["masks"]
    assert len(masks) == 3
    assert ui.mask_rows() == ["object 1"]
    options = ui.page.locator("#mask-list .candidates label").all_inner_texts()
    assert [o.strip() for o in options] == [f"{k + 1}: score {m['score']:.2f}" for k, m in enumerate(masks)]
    best = max(range(3), key=lambda k: masks[k]["score"])
    checked = ui.page.locator("#mask-list .candidates input").evaluate_all("els => els.map(e => e.checked)")
    assert checked == [k == best for k in range(3)]
    check_drawn(before, ui.pixels(), decode(masks[best]["rle"]))
    check_markers(ui, [s.inside, (s.inside[0] + 20, s.inside[1])])
    ui.shot()


def test_fixed_label_model_shows_label_map_and_legend(tiny_server: Server, ui: UI,
                                                       scene: tuple[Scene, Path]) -> None:
    _, path = scene
    ui.open(tiny_server.page_url)
    if not offered(ui, "segmenter|tiny-segformer|semantic"):
        pytest.skip("segmentkit-segformer is not installed")
    from segmentkit.label_sets import CITYSCAPES

    ui.choose("segmenter", "tiny-segformer", "semantic")
    assert "19 labels" in ui.page.inner_text("#model-info")
    ui.open_image(path)
    before = ui.pixels()
    answer = ui.rpc(lambda: ui.page.click("#run-segment"))
    segments = [{"id": m["class_id"], "rle": m["rle"]} for m in answer["result"]["masks"]]  # one per class
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


def test_video_prompt_propagate_and_correct(tiny_server: Server, ui: UI, clip: tuple[list[Scene], Path]) -> None:
    """The whole video flow with a deterministic tracker, so every frame's mask is known."""
    frames, path = clip
    ui.open(tiny_server.page_url)
    calls = open_clip(ui, path)
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
    assert ui.page.inner_text("#frame-label") == "frame 8 / 8 · 0.75 s"
    check_drawn(ui.image_pixels(), ui.pixels(), disc(*first))

    # A correction on frame 3, behind the newest frame: the session restarts, frame 0's
    # prompt is replayed, and frames after 3 wait for the next propagation.
    calls.clear()
    ui.page.fill("#frame", "3")
    ui.rpc(lambda: ui.click(*frames[3].inside), method=prompt)
    (marker,) = ui.page.evaluate("window.segmentkit.prompts()")  # ui.sent is frame 0's replay
    moved = (marker["x"], marker["y"])
    assert moved == pytest.approx(frames[3].inside, abs=0.5)
    assert calls == ["vision.segment_video_close", "vision.segment_video_start", push, prompt, push, push, push,
                     prompt]
    ui.page.fill("#frame", "7")
    assert ui.mask_rows() == ["object 1"] and ui.page.evaluate("window.segmentkit.overlay.masks.length") == 0
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
    assert [img["time"] for img in coco["images"]] == pytest.approx([(k + 0.5) / 10 for k in range(8)])
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
    def on_frame_5(r) -> bool:
        return (r.url.endswith("/rpc") and json.loads(r.post_data)["method"] == prompt
                and json.loads(r.post_data)["params"]["frame"] == 5)

    with ui.page.expect_request(on_frame_5) as request:
        ui.page.click("#text-form button")
    ui.settle()
    params = json.loads(request.value.post_data)["params"]
    assert params == {"session": params["session"], "frame": 5, "object_id": 3, "text": "a ball"}
    assert ui.mask_rows() == ["object 1", "object 2", "object 3"]
    check_drawn(ui.image_pixels(), ui.pixels(), disc(64, 48))


def test_video_with_tiny_sam2(tiny_server: Server, ui: UI, clip: tuple[list[Scene], Path]) -> None:
    """A real tracker (random weights): prompt frame 0, propagate, masks drawn on the last frame.
    Four frames keep it quick; the deterministic tracker's test checks every frame's mask."""
    frames, path = clip
    ui.open(tiny_server.page_url)
    if not offered(ui, "tracker|tiny-sam2|"):
        pytest.skip("segmentkit-sam2 is not installed")
    open_clip(ui, path, frames=4)
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
    if not offered(ui, "tracker|tiny-sam2|"):
        pytest.skip("segmentkit-sam2 is not installed")
    x, y = frames[0].inside
    out = ui.page.evaluate("""async ({dir, x, y}) => {
        const { VisionClient } = await import('/components/client/vision-client.js');
        const client = VisionClient.fromLocation();
        const session = await client.startVideo({ source: { path: dir }, model: 'tiny-sam2' });
        await session.addPrompt(0, 1, { point: { x, y } });
        const seen = [];
        const result = await session.propagate({
            onFrame: (frame, p) => seen.push([frame.frame_index, p.done, p.total, frame.masks.map((m) => m.object_id)]),
        });
        const back = [];
        await session.propagate({
            start: session.numFrames - 1, direction: 'backward', onFrame: (f) => back.push(f.frame_index),
        });
        await session.close();
        let error = null;
        try { await session.addPrompt(0, 1, { point: { x, y } }); }
        catch (e) { error = { name: e.name, reason: e.reason }; }
        client.close();
        return { frames: session.numFrames, seen, back, result, error };
    }""", {"dir": str(folder), "x": x, "y": y})
    n = len(frames)
    assert out["frames"] == n
    assert out["seen"] == [[i, i + 1, n, [1]] for i in range(n)]
    assert out["back"] == list(range(n - 1, -1, -1))
    assert out["result"] == {"session": out["result"]["session"], "frames_done": n, "cancelled": False,
                             "frames": None}
    assert out["error"] == {"name": "VisionError", "reason": "session_error"}


def test_docs_embedding_example(classic_server: Server, ui: UI, scene: tuple[Scene, Path]) -> None:
    """The minimal embedding example of docs/web-ui.md works as written."""
    s, path = scene
    text = (ROOT / "docs" / "web-ui.md").read_text()
    block = text.split("<!-- embedding-example -->")[1].split("<!-- /embedding-example -->")[0]
    html = block.split("```html")[1].split("```")[0]
    # The page as if the service served it: same origin, token in the URL.
    ui.page.route(f"{classic_server.url}embed.html*", lambda route: route.fulfill(body=html, content_type="text/html"))
    ui.page.goto(f"{classic_server.url}embed.html?token={classic_server.token}")
    ui.page.set_input_files("#file", str(path))
    canvas = ui.page.locator("#view [part=canvas]")  # the element's shadow root
    ui.page.wait_for_function("document.querySelector('#view').imageWidth === 320")
    before = shadow_pixels(ui, "#view")
    box = canvas.bounding_box()
    with ui.page.expect_response(lambda r: r.url.endswith("/rpc")) as info:
        ui.page.mouse.click(box["x"] + s.inside[0] * box["width"] / SIZE[1],
                            box["y"] + s.inside[1] * box["height"] / SIZE[0])
    mask = decode(info.value.json()["result"]["masks"][0]["rle"])
    deadline = time.monotonic() + 10
    while not changed(before, shadow_pixels(ui, "#view")).any() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert iou(mask, s.mask) > 0.85
    check_drawn(before, shadow_pixels(ui, "#view"), mask)
    assert ui.page.inner_text("#message") == ""
    ui.shot()
