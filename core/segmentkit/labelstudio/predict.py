"""One Label Studio task (and the annotator's context) -> one prediction.

- context with keypoints / rectangles / text: interactive masks, one region per object;
- context with video rectangles: every object tracked in one session, boxes per frame;
- no context: the model's whole-image result (pre-annotation), labels matched to the config.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PromptError, TaskError
from .config import Control, LabelConfig, LabelConfigError
from .engine import Engine
from .regions import choose_label, masks_regions, prompt_objects
from .sources import TaskFiles


def predict_task(
    engine: Engine,
    files: TaskFiles,
    config: LabelConfig,
    task: Mapping[str, Any],
    context: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The prediction (``result`` regions, ``score``, ``model_version``) for ``task``."""
    regions = list((context or {}).get("result") or [])
    if any(str(r.get("type", "")).lower() == "videorectangle" for r in regions):
        result = _video(engine, files, config, task, regions)
    else:
        result = _image(engine, files, config, task, regions)
    scores = [r["score"] for r in result if "score" in r]
    return {
        "result": result,
        "score": float(np.mean(scores)) if scores else 0.0,
        "model_version": engine.model_version(),
    }


def _task_ref(config: LabelConfig, task: Mapping[str, Any], to_name: str) -> Any:
    _, key = config.data_key(to_name)
    data = task.get("data") or {}
    if key not in data:
        raise TaskError(f"task {task.get('id')} has no data field {key!r} (the label config's ${key})")
    return data[key]


def _image(
    engine: Engine,
    files: TaskFiles,
    config: LabelConfig,
    task: Mapping[str, Any],
    regions: list[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    output = config.output()
    offered = config.labels_of(output.to_name)
    if not regions:
        check_labels(engine, output, offered)
    rgb = files.image(_task_ref(config, task, output.to_name))
    size = rgb.shape[:2]
    if not regions:
        found = engine.whole_image(rgb)
        keep = [
            i for i, name in enumerate(found.labels) if name is None or not offered or _offered(name, offered)
        ]
        labels = [choose_label(found.labels[i], offered) for i in keep]
        return masks_regions(found.masks[np.asarray(keep, dtype=np.int64)], labels, output)
    objects = prompt_objects(regions, size)
    masks = engine.prompt(rgb, [o.prompts for o in objects])
    ids = masks.object_ids if masks.object_ids is not None else np.arange(1, len(masks) + 1)
    # a grounded mask names the phrase it matched; other masks take their object's label
    named = masks.labels
    labels = [choose_label(named[k] or objects[int(i) - 1].label, offered) for k, i in enumerate(ids)]
    return masks_regions(masks, labels, output)


def _offered(name: str, offered: tuple[str, ...]) -> bool:
    return name.lower() in {label.lower() for label in offered}


def check_labels(engine: Engine, output: Control, offered: tuple[str, ...]) -> None:
    """Refuse a config naming labels the model lacks (models with a fixed label set only)."""
    known = {label.lower() for label in engine.model_labels()}
    missing = [label for label in offered if known and label.lower() not in known]
    if missing:
        raise LabelConfigError(
            f"{output.name!r} names labels model {engine.card().id!r} does not have: {', '.join(missing)} "
            f"(the model's labels: `segmentkit models --json` lists them)"
        )


def _video(
    engine: Engine,
    files: TaskFiles,
    config: LabelConfig,
    task: Mapping[str, Any],
    regions: list[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    from ..io.video import open_video

    control = config.video_output()
    offered = config.labels_of(control.to_name)
    ref = _task_ref(config, task, control.to_name)
    video = [r for r in regions if str(r.get("type", "")).lower() == "videorectangle"]
    with tempfile.TemporaryDirectory(prefix="segmentkit-ls-") as tmp:
        path = files.local_path(ref) if isinstance(ref, str) else None
        if path is None:
            suffix = Path(str(ref).split("?")[0]).suffix or ".mp4"
            path = Path(tmp) / f"video{suffix}"
            path.write_bytes(files.read(str(ref)))
        with open_video(str(path), max_pixels=files.max_pixels) as source:
            height, width = source.frame_size
            keyframes, labels, last = _keyframes(video, (height, width))
            start = min(f for obj in keyframes.values() for f, _ in obj)
            frames = max(1, min(last, len(source)) - start)  # only the frames Label Studio asks for
            tracks: dict[int, list[dict[str, Any]]] = {k: [] for k in keyframes}
            for frame in engine.track(source, keyframes, start, frames):
                for index, object_id in enumerate(frame.object_ids):
                    box = _box(frame.masks.masks[index])
                    if box is not None:
                        tracks[object_id].append(_keyframe(frame.frame_index, box, (height, width)))
    return [
        {
            "id": f"track{object_id}",
            "from_name": control.name,
            "to_name": control.to_name,
            "type": "videorectangle",
            "origin": "prediction",
            "score": 1.0,
            "value": {
                "sequence": sequence,
                "labels": [choose_label(labels[object_id], offered)],
                "framesCount": last,
            },
        }
        for object_id, sequence in tracks.items()
    ]


def _keyframes(
    regions: list[Mapping[str, Any]], size: tuple[int, int]
) -> tuple[dict[int, list[tuple[int, list[Any]]]], dict[int, str | None], int]:
    """object id -> [(frame, [box])], object id -> label, and the last frame Label Studio asks for."""
    from ..types import Box

    height, width = size
    keyframes: dict[int, list[tuple[int, list[Any]]]] = {}
    labels: dict[int, str | None] = {}
    last = 0
    for number, region in enumerate(regions, start=1):
        value = region.get("value") or {}
        last = max(last, int(value.get("framesCount") or 0))
        boxes = []
        for item in value.get("sequence") or []:
            if item.get("enabled") is False:
                continue
            try:
                x, y = float(item["x"]) * width / 100, float(item["y"]) * height / 100
                w, h = float(item["width"]) * width / 100, float(item["height"]) * height / 100
                frame = int(item["frame"]) - 1  # Label Studio counts frames from 1
            except (KeyError, TypeError, ValueError):
                raise PromptError(
                    f"video rectangle {region.get('id')} has a keyframe without frame, x, y, width, height"
                ) from None
            boxes.append(
                (frame, [Box(max(0.0, x), max(0.0, y), min(float(width), x + w), min(float(height), y + h))])
            )
        if boxes:
            keyframes[number] = boxes
            names = value.get("labels") or []
            labels[number] = str(names[0]) if names else None
    if not keyframes:
        raise PromptError("the video rectangles hold no enabled keyframe to track from")
    if last <= 0:
        raise PromptError("the video rectangles do not say framesCount: how many frames to track")
    return keyframes, labels, last


def _box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _keyframe(frame: int, box: tuple[int, int, int, int], size: tuple[int, int]) -> dict[str, Any]:
    height, width = size
    x0, y0, x1, y1 = box
    return {
        "frame": frame + 1,
        "enabled": True,
        "rotation": 0,
        "x": x0 * 100 / width,
        "y": y0 * 100 / height,
        "width": (x1 - x0) * 100 / width,
        "height": (y1 - y0) * 100 / height,
    }
