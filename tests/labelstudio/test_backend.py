"""The Label Studio ML backend in-process (Starlette TestClient): protocol, prompts, outputs, errors.

Masks are compared with the core API on the same model and prompts; brush RLE is decoded
with an independent reference decoder (brush_reference.py).
"""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_ipc_support as support  # registered by tests/conftest.py
from brush_reference import decode
from PIL import Image
from segmentkit.ipc.limits import Limits
from segmentkit.ipc.manifest import App
from segmentkit.ipc.service import Service
from segmentkit.labelstudio.app import create_app
from segmentkit.labelstudio.engine import Engine
from segmentkit.registry import Registry
from segmentkit.testing.scenes import synthetic_scene
from segmentkit.types import Box, Point
from starlette.testclient import TestClient

toy = support.load_sibling(support.TOY)
SAMPLE = Path(__file__).resolve().parents[2] / "core" / "segmentkit" / "samples" / "chelsea.png"
W, H = 451, 300
BRUSH = """<View><Image name="image" value="$image"/>
<BrushLabels name="tag" toName="image"><Label value="cat"/><Label value="dog"/></BrushLabels>
<KeyPointLabels name="kp" toName="image" smart="true">
<Label value="cat"/><Label value="dog"/></KeyPointLabels>
<RectangleLabels name="box" toName="image" smart="true">
<Label value="cat"/><Label value="dog"/></RectangleLabels>
</View>"""


def registry() -> Registry:
    found = Registry()
    found.register(toy, name="toy")
    return found


def client(model: str = "classic", **kwargs: Any) -> TestClient:
    limits = kwargs.pop("limits", None)
    service = Service(
        registry(),
        [kwargs.pop("app", App.local())],
        limits=limits,
        model_options=kwargs.pop("model_options", None),
    )
    engine = Engine(service, model)
    answer = TestClient(create_app(engine, **kwargs), base_url="http://127.0.0.1")
    answer.engine = engine  # type: ignore[attr-defined]
    return answer


def data_uri(path_or_array: Any) -> str:
    if isinstance(path_or_array, np.ndarray):
        buffer = io.BytesIO()
        Image.fromarray(path_or_array).save(buffer, format="PNG")
        data = buffer.getvalue()
    else:
        data = Path(path_or_array).read_bytes()
    return "data:image/png;base64," + base64.b64encode(data).decode()


def keypoint(x: float, y: float, label: str = "cat", positive: bool = True, size=(H, W)) -> dict[str, Any]:
    return {
        "type": "keypointlabels",
        "from_name": "kp",
        "to_name": "image",
        "is_positive": positive,
        "value": {"x": x * 100 / size[1], "y": y * 100 / size[0], "keypointlabels": [label]},
    }


def rectangle(x0: float, y0: float, x1: float, y1: float, label: str = "cat", size=(H, W)) -> dict[str, Any]:
    return {
        "type": "rectanglelabels",
        "from_name": "box",
        "to_name": "image",
        "value": {
            "x": x0 * 100 / size[1],
            "y": y0 * 100 / size[0],
            "width": (x1 - x0) * 100 / size[1],
            "height": (y1 - y0) * 100 / size[0],
            "rectanglelabels": [label],
        },
    }


def predict(c: TestClient, image: str, regions: list[dict[str, Any]] | None, config: str = BRUSH) -> Any:
    context = None if regions is None else {"result": regions}
    return c.post(
        "/predict",
        json={
            "tasks": [{"id": 7, "data": {"image": image}}],
            "label_config": config,
            "params": {"context": context},
        },
    )


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def core_masks(model: str, image: Any, prompt_sets: list[list[Any]], **load: Any) -> np.ndarray:
    prompter = registry().load(model, role="prompter", **load)
    return prompter.predict_objects(prompter.embed(image), prompt_sets).masks


# --------------------------------------------------------------------------- protocol


def test_health_setup_and_webhook_speak_the_protocol() -> None:
    with client() as c:
        assert c.get("/health").json()["status"] == "UP"
        assert c.post("/setup", json={"project": "1.1", "schema": BRUSH}).json() == {
            "model_version": "classic@none"
        }
        answer = c.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 1}})
        assert answer.status_code == 200 and answer.json()["status"] == "not trained here"
        assert "does not train" in answer.json()["detail"]


def test_model_version_names_the_weights_revision() -> None:
    card = registry().resolve("sam2.1-hiera-tiny").spec.card
    with client("sam2.1-hiera-tiny") as c:
        version = c.post("/setup", json={}).json()["model_version"]
    assert version == f"sam2.1-hiera-tiny@{card.weights.revision[:12]}"


def test_basic_auth_is_required_when_set() -> None:
    with client(basic_auth=("ls", "secret")) as c:
        assert c.get("/health").status_code == 401
        assert c.get("/health", auth=("ls", "wrong")).status_code == 401
        assert c.get("/health", auth=("ls", "secret")).status_code == 200


# --------------------------------------------------------------------------- interactive images


def test_keypoint_gives_the_core_mask_as_brush_rle() -> None:
    with client() as c:
        answer = predict(c, data_uri(SAMPLE), [keypoint(175, 115)])
    assert answer.status_code == 200, answer.text
    (prediction,) = answer.json()["results"]
    (region,) = prediction["result"]
    assert region["type"] == "brushlabels" and region["value"]["brushlabels"] == ["cat"]
    assert (region["original_width"], region["original_height"]) == (W, H) and 0 < region["score"] <= 1
    ours = decode(region["value"]["rle"], (H, W))
    want = core_masks("classic", str(SAMPLE), [[Point(175, 115)]])[0]
    assert want.any() and iou(ours, want) >= 0.999


def test_rectangles_and_keypoint_groups_are_separate_objects() -> None:
    regions = [
        rectangle(120, 60, 240, 170, "cat"),
        keypoint(150, 100, "cat"),  # the click refines the box
        keypoint(330, 130, "dog"),
        keypoint(320, 120, "dog", positive=False),
    ]
    with client() as c:
        result = predict(c, data_uri(SAMPLE), regions).json()["results"][0]["result"]
    assert [r["value"]["brushlabels"] for r in result] == [["cat"], ["dog"]]
    want = core_masks(
        "classic",
        str(SAMPLE),
        [[Box(120, 60, 240, 170), Point(150, 100)], [Point(330, 130), Point(320, 120, positive=False)]],
    )
    for region, mask in zip(result, want, strict=True):
        assert iou(decode(region["value"]["rle"], (H, W)), mask) >= 0.999


def test_negative_by_label_counts_as_negative() -> None:
    config = BRUSH.replace(
        '<Label value="dog"/></KeyPointLabels>', '<Label value="background"/></KeyPointLabels>'
    )
    with client() as c:
        result = predict(
            c, data_uri(SAMPLE), [keypoint(330, 130), keypoint(320, 120, "background")], config
        ).json()["results"][0]["result"]
    (region,) = result
    want = core_masks("classic", str(SAMPLE), [[Point(330, 130), Point(320, 120, positive=False)]])[0]
    plain = core_masks("classic", str(SAMPLE), [[Point(330, 130)]])[0]
    assert iou(decode(region["value"]["rle"], (H, W)), want) >= 0.999 and iou(want, plain) < 0.999


def test_polygon_config_gets_polygons() -> None:
    config = BRUSH.replace("BrushLabels", "PolygonLabels")
    with client() as c:
        (region,) = predict(c, data_uri(SAMPLE), [keypoint(175, 115)], config).json()["results"][0]["result"]
    assert region["type"] == "polygonlabels" and region["from_name"] == "tag"
    points = np.asarray(region["value"]["points"]) * [W / 100, H / 100]
    from PIL import ImageDraw

    canvas = Image.new("1", (W, H))
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in points], fill=1)
    want = core_masks("classic", str(SAMPLE), [[Point(175, 115)]])[0]
    assert len(points) >= 3 and iou(np.asarray(canvas), want) > 0.8  # an outline, not the pixels


def test_second_click_on_an_image_reuses_its_embedding() -> None:
    with client() as c:
        first = time.perf_counter()
        one = predict(c, data_uri(SAMPLE), [keypoint(175, 115)]).json()["results"][0]["result"][0]
        second = time.perf_counter()
        two = predict(c, data_uri(SAMPLE), [keypoint(330, 130)]).json()["results"][0]["result"][0]
        third = time.perf_counter()
        cache = c.engine.embeddings
    assert (cache.misses, cache.hits) == (1, 1)
    want = core_masks("classic", str(SAMPLE), [[Point(330, 130)]])[0]
    assert iou(decode(two["value"]["rle"], (H, W)), want) >= 0.999  # the cached embedding is this image's
    assert iou(decode(one["value"]["rle"], (H, W)), want) < 0.5
    print(f"\nclassic click: first {second - first:.3f} s, second {third - second:.3f} s")


def test_text_prompt_needs_a_model_that_reads_text() -> None:
    text = {"type": "textarea", "from_name": "q", "to_name": "image", "value": {"text": ["cat"]}}
    with client() as c:
        answer = predict(c, data_uri(SAMPLE), [text])
        assert answer.status_code == 400 and "text" in answer.json()["error"]
        assert c.get("/health").status_code == 200


# --------------------------------------------------------------------------- pre-annotation


def test_no_context_gives_the_whole_image_result() -> None:
    with client() as c:
        result = predict(c, data_uri(SAMPLE), None).json()["results"][0]["result"]
    automatic = registry().load("classic", role="segmenter").segment(str(SAMPLE)).masks
    kept = [m for m in automatic.masks if m.any()]
    assert len(result) == len(kept) > 1
    for region, mask in zip(result, kept, strict=True):
        assert region["value"]["brushlabels"] == ["cat"]  # class-agnostic: the config's first label
        assert iou(decode(region["value"]["rle"], (H, W)), mask) >= 0.999


TOY_CONFIG = """<View><Image name="image" value="$image"/>
<BrushLabels name="tag" toName="image">{labels}</BrushLabels></View>"""


def test_preannotation_matches_config_labels_to_the_model_labels() -> None:
    scene = synthetic_scene((48, 64), seed=3)
    config = TOY_CONFIG.format(labels='<Label value="Red"/><Label value="blue"/>')
    with client("toy-color") as c:
        result = predict(c, data_uri(scene.image), None, config).json()["results"][0]["result"]
    seg = registry().load("toy-color", role="segmenter").segment(scene.image)
    names = [seg.masks.id2label[int(i)] for i in seg.masks.class_ids]
    want = {n: m for n, m in zip(names, seg.masks.masks, strict=True) if n in ("red", "blue") and m.any()}
    got = {r["value"]["brushlabels"][0]: decode(r["value"]["rle"], (48, 64)) for r in result}
    assert set(got) == {"Red", "blue"} & {n.title() if n == "red" else n for n in want}
    for name, mask in got.items():
        assert np.array_equal(mask, want[name.lower()])


def test_config_labels_the_model_lacks_are_listed() -> None:
    config = TOY_CONFIG.format(labels='<Label value="red"/><Label value="cat"/><Label value="sky"/>')
    with client("toy-color") as c:
        answer = predict(c, data_uri(synthetic_scene((48, 64), seed=3).image), None, config)
        assert answer.status_code == 400
        assert answer.json()["code"] == "bad_label_config" and "cat, sky" in answer.json()["error"]
        assert c.get("/health").status_code == 200


# --------------------------------------------------------------------------- bad input


def test_bad_input_gets_a_clear_error_and_the_server_stays_up(tmp_path: Path) -> None:
    garbage = "data:image/png;base64," + base64.b64encode(b"not an image at all").decode()
    no_control = '<View><Image name="image" value="$image"/><Choices name="c" toName="image"/></View>'
    with client(limits=Limits(max_pixels=10_000)) as c:
        unreadable = predict(c, garbage, [keypoint(5, 5)])
        assert unreadable.status_code == 400 and unreadable.json()["code"] == "bad_image"
        assert "not an image" in unreadable.json()["error"]
        config = predict(c, data_uri(SAMPLE), [keypoint(5, 5)], no_control)
        assert config.status_code == 400 and config.json()["code"] == "bad_label_config"
        assert "BrushLabels" in config.json()["error"]
        large = predict(c, data_uri(SAMPLE), [keypoint(175, 115)])
        assert large.status_code == 413 and large.json()["code"] == "image_too_large"
        assert "10,000" in large.json()["error"] or "10000" in large.json()["error"]
        missing = c.post(
            "/predict",
            json={
                "tasks": [{"id": 1, "data": {"image": "/data/upload/1/x.png"}}],
                "label_config": BRUSH,
                "params": {"context": None},
            },
        )
        assert missing.status_code == 400 and "LABEL_STUDIO_URL" in missing.json()["error"]
        assert c.post("/predict", content=b"{not json").status_code == 400
        assert c.get("/health").status_code == 200


def test_local_files_are_read_inside_the_grants_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inside, outside = tmp_path / "granted", tmp_path / "other"
    support.save_png(inside / "cat.png", np.asarray(Image.open(SAMPLE).convert("RGB")))
    support.save_png(outside / "cat.png", np.asarray(Image.open(SAMPLE).convert("RGB")))
    monkeypatch.setenv("LOCAL_FILES_DOCUMENT_ROOT", str(tmp_path))
    app = App(id="ls", roots=(inside.resolve(),))
    with client(app=app) as c:
        ok = predict(c, "/data/local-files/?d=granted/cat.png", [keypoint(175, 115)])
        denied = predict(c, "/data/local-files/?d=other/cat.png", [keypoint(175, 115)])
    assert ok.status_code == 200 and ok.json()["results"][0]["result"]
    assert denied.status_code == 400 and denied.json()["code"] == "path_denied"


# --------------------------------------------------------------------------- text


class SceneGrounder:
    """A grounder that finds the synthetic scene's true boxes for the phrases it is asked for."""

    def __init__(self, card: Any, options: Any):
        self.card, self.options = card, options

    def detect(self, image: np.ndarray, text: str, **_: Any) -> Any:
        from segmentkit.roles import Detections

        phrases = [p.strip() for p in text.split(".") if p.strip()]
        found = [(name, box) for name, box in TEXT_BOXES.items() if name in phrases]
        return Detections(
            np.array([b for _, b in found], np.float32).reshape(-1, 4),
            [0.9] * len(found),
            [n for n, _ in found],
            image.shape[:2],
            phrase_ids=np.array([phrases.index(n) for n, _ in found]),
            phrases=phrases,
        )


TEXT_BOXES = {"head": (120.0, 40.0, 330.0, 260.0), "eye": (140.0, 80.0, 215.0, 150.0)}


class ScenePlugin:
    from segmentkit import hookimpl

    @hookimpl
    def segmentkit_grounders(self) -> list[Any]:
        from segmentkit import ModelCard, ModelOptions, ModelSpec

        card = ModelCard(
            id="scene-grounder", family="test", roles=("grounder",), tasks=("ground",), license="MIT"
        )
        return [
            ModelSpec(card=card, role="grounder", loader=f"{__name__}:SceneGrounder", options=ModelOptions)
        ]


def test_text_prompt_gives_grounded_masks(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("segmentkit_grounded_sam2")
    from segmentkit.registry import default_registry

    name = default_registry().register(ScenePlugin(), name="ls-scene-grounder")  # grounded-sam2 looks here
    try:
        options = {"grounded-sam2": {"detector": "scene-grounder", "sam": "classic"}}
        text = {"type": "textarea", "from_name": "q", "to_name": "image", "value": {"text": ["eye. head."]}}
        config = BRUSH.replace('<Label value="dog"/></BrushLabels>', '<Label value="head"/></BrushLabels>')
        with client("grounded-sam2", model_options=options) as c:
            answer = predict(c, data_uri(SAMPLE), [text], config)
        assert answer.status_code == 200, answer.text
        result = answer.json()["results"][0]["result"]
        grounded = default_registry().load("grounded-sam2", role="prompter", **options["grounded-sam2"])
        want = grounded.raw.prompt(str(SAMPLE), text="eye. head.")  # the plugin's own text call
        assert len(result) == len(want) == 2
        # "head" is offered by the config; "eye" is not, so it gets the config's first label
        assert want.labels == ["head", "eye"]
        assert [r["value"]["brushlabels"] for r in result] == [["head"], ["cat"]]
        for region, mask in zip(result, want.masks, strict=True):
            assert iou(decode(region["value"]["rle"], (H, W)), mask) >= 0.999
    finally:
        default_registry().unregister(name)
