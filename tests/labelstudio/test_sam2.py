"""The Label Studio backend on a tiny random-weight SAM 2 (hub layout, ``--weights``): clicks
through the embedding cache and two objects tracked through a video, against the core API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from brush_reference import decode
from segmentkit.ipc.manifest import App
from segmentkit.ipc.service import Service
from segmentkit.labelstudio.app import create_app
from segmentkit.labelstudio.engine import Engine
from segmentkit.registry import Registry
from segmentkit.types import Box, Point
from starlette.testclient import TestClient

pytest.importorskip("transformers")
MODEL = "sam2.1-hiera-tiny"
SIZE = (72, 96)
VIDEO = """<View><Video name="video" value="$video" framerate="10"/>
<Labels name="videoLabels" toName="video"><Label value="red"/><Label value="yellow"/></Labels>
<VideoRectangle name="box" toName="video"/></View>"""
IMAGE = """<View><Image name="image" value="$image"/>
<BrushLabels name="tag" toName="image"><Label value="thing"/></BrushLabels>
<KeyPointLabels name="kp" toName="image" smart="true"><Label value="thing"/></KeyPointLabels></View>"""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from segmentkit_sam2.video_testing import build_tiny_video_checkpoint

    return build_tiny_video_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    from segmentkit_sam2.video_testing import moving_frames, write_video

    folder = tmp_path_factory.mktemp("videos")
    frames = moving_frames(6, SIZE)
    return write_video(folder / "clip.mp4", frames), frames


def backend(checkpoint: Path, root: Path | None = None) -> tuple[TestClient, Engine]:
    app = App(id="ls", roots=None if root is None else (root.resolve(),))
    engine = Engine(Service(Registry(), [app], model_options={MODEL: {"weights": checkpoint}}), MODEL)
    return TestClient(create_app(engine), base_url="http://127.0.0.1"), engine


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def click(c: TestClient, image: np.ndarray, x: float, y: float) -> dict[str, Any]:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    h, w = image.shape[:2]
    region = {
        "type": "keypointlabels",
        "is_positive": True,
        "value": {"x": x * 100 / w, "y": y * 100 / h, "keypointlabels": ["thing"]},
    }
    answer = c.post(
        "/predict",
        json={
            "tasks": [{"id": 1, "data": {"image": uri}}],
            "label_config": IMAGE,
            "params": {"context": {"result": [region]}},
        },
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_clicks_match_the_core_api_and_reuse_the_embedding(checkpoint: Path, clip) -> None:
    _, frames = clip
    prompter = Registry().load(MODEL, role="prompter", weights=checkpoint)
    c, engine = backend(checkpoint)
    with c:
        assert c.post("/setup", json={}).json()["model_version"] == f"{MODEL}@local"
        times = []
        for image, (x, y) in ((frames[0], (30, 32)), (frames[0], (72, 50)), (frames[3], (40, 30))):
            started = time.perf_counter()
            answer = click(c, image, x, y)
            times.append(time.perf_counter() - started)
            (region,) = answer["results"][0]["result"]
            want = prompter.predict(prompter.embed(image), [Point(x, y)]).masks[0]
            assert 0 < want.sum() < want.size
            assert iou(decode(region["value"]["rle"], SIZE), want) >= 0.999
    assert (engine.embeddings.misses, engine.embeddings.hits) == (2, 1)
    print(
        f"\ntiny SAM 2 clicks: first (load + encode) {times[0]:.3f} s, same image {times[1]:.3f} s, "
        f"new image {times[2]:.3f} s"
    )


def sequence_item(frame: int, box: tuple[float, float, float, float]) -> dict[str, Any]:
    h, w = SIZE
    x0, y0, x1, y1 = box
    return {
        "frame": frame,
        "enabled": True,
        "rotation": 0,
        "time": (frame - 1) / 10,
        "x": x0 * 100 / w,
        "y": y0 * 100 / h,
        "width": (x1 - x0) * 100 / w,
        "height": (y1 - y0) * 100 / h,
    }


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.mark.parametrize("frames_count", [6, 4])
def test_two_objects_tracked_in_one_session(checkpoint: Path, clip, frames_count: int, monkeypatch) -> None:
    path, _ = clip
    monkeypatch.setenv("LOCAL_FILES_DOCUMENT_ROOT", str(path.parent))
    red, yellow = (12.0, 20.0, 48.0, 52.0), (62.0, 38.0, 84.0, 62.0)
    regions = [
        {
            "type": "videorectangle",
            "id": "a",
            "value": {"sequence": [sequence_item(1, red)], "labels": ["red"], "framesCount": frames_count},
        },
        {
            "type": "videorectangle",
            "id": "b",
            "value": {
                "sequence": [sequence_item(1, yellow)],
                "labels": ["yellow"],
                "framesCount": frames_count,
            },
        },
    ]
    c, _ = backend(checkpoint, root=path.parent)
    with c:
        answer = c.post(
            "/predict",
            json={
                "tasks": [{"id": 3, "data": {"video": f"/data/local-files/?d={path.name}"}}],
                "label_config": VIDEO,
                "params": {"context": {"result": regions}},
            },
        )
        assert answer.status_code == 200, answer.text
    result = answer.json()["results"][0]["result"]
    assert [r["value"]["labels"] for r in result] == [["red"], ["yellow"]]
    assert all(r["type"] == "videorectangle" and r["from_name"] == "box" for r in result)

    tracker = Registry().load(MODEL, role="tracker", weights=checkpoint)
    with tracker.start(str(path)) as session:
        session.add_prompts(0, 1, [Box(*red)])
        session.add_prompts(0, 2, [Box(*yellow)])
        expected = list(session.propagate(0, max_frames=frames_count))
    assert len(expected) == frames_count
    h, w = SIZE
    for track, object_id in zip(result, (1, 2), strict=True):
        sequence = track["value"]["sequence"]
        assert [s["frame"] for s in sequence] == list(range(1, frames_count + 1))  # only the frames asked for
        for item, frame in zip(sequence, expected, strict=True):
            mask = frame.masks.masks[frame.object_ids.index(object_id)]
            x0, y0, x1, y1 = mask_box(mask)
            got = (
                item["x"] * w / 100,
                item["y"] * h / 100,
                (item["x"] + item["width"]) * w / 100,
                (item["y"] + item["height"]) * h / 100,
            )
            assert np.allclose(got, (x0, y0, x1, y1), atol=1e-6)
    first = [mask_box(f.masks.masks[i]) for f in expected[:1] for i in range(2)]
    assert first[0] != first[1]  # two different objects, not one twice
