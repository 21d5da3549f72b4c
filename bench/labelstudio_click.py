"""Benchmark: a Label Studio click through ``serve --label-studio``, with and without the embedding cache.

Full-size Hiera-Tiny SAM 2 config (1024 input) with random weights in the hub layout,
served with ``--weights``; requests go through the Starlette app in-process (TestClient),
image sent as a data URI (chelsea.png). Per repetition: a click on an image the cache has
not seen (encoder + decoder) and a second click on the same image (decoder only). Medians.

    python bench/labelstudio_click.py [--reps 5]
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """<View><Image name="image" value="$image"/>
<BrushLabels name="tag" toName="image"><Label value="cat"/></BrushLabels>
<KeyPointLabels name="kp" toName="image" smart="true"><Label value="cat"/></KeyPointLabels></View>"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    from segmentkit.ipc.service import Service
    from segmentkit.labelstudio.app import create_app
    from segmentkit.labelstudio.engine import Engine
    from segmentkit.registry import Registry
    from segmentkit_sam2.video_testing import build_tiny_video_checkpoint
    from starlette.testclient import TestClient

    base = np.asarray(Image.open(ROOT / "core/segmentkit/samples/chelsea.png").convert("RGB"))
    with tempfile.TemporaryDirectory() as tmp:
        weights = build_tiny_video_checkpoint(Path(tmp) / "ckpt", image_size=1024, full=True)
        service = Service(Registry(), model_options={"sam2.1-hiera-tiny": {"weights": weights}})
        engine = Engine(service, "sam2.1-hiera-tiny")
        cold, warm = [], []
        with TestClient(create_app(engine), base_url="http://127.0.0.1") as client:
            for rep in range(args.reps + 1):  # repetition 0 loads the model: not counted
                image = base.copy()
                image[0, 0] = rep  # new content: the cache has not seen it
                buffer = io.BytesIO()
                Image.fromarray(image).save(buffer, format="PNG")
                uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
                for times, (x, y) in ((cold, (175, 115)), (warm, (300, 120))):
                    region = {"type": "keypointlabels", "is_positive": True,
                              "value": {"x": x / 4.51, "y": y / 3.0, "keypointlabels": ["cat"]}}
                    body = {"tasks": [{"id": 1, "data": {"image": uri}}], "label_config": CONFIG,
                            "params": {"context": {"result": [region]}}}
                    started = time.perf_counter()
                    answer = client.post("/predict", json=body)
                    seconds = time.perf_counter() - started
                    assert answer.status_code == 200, answer.text
                    if rep:
                        times.append(seconds)
        print(f"cpu: {platform.processor() or platform.machine()}, load average: {os.getloadavg()}")
        print(f"cache: {engine.embeddings.misses} misses, {engine.embeddings.hits} hits")
        print(f"click, new image (encoder + decoder): median {statistics.median(cold):.3f} s of {cold}")
        print(f"click, same image (decoder only):     median {statistics.median(warm):.3f} s of {warm}")


if __name__ == "__main__":
    main()
