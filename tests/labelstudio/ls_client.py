"""Drive a running Label Studio through label-studio-sdk (run with the Label Studio venv's python).

usage: ls_client.py LS_URL TOKEN BACKEND_URL IMAGE X Y OUT_DIR

Creates a BrushLabels + KeyPointLabels project, uploads IMAGE, connects the backend (basic
auth ``ls:secret``), asks for an interactive prediction with a positive keypoint at pixel
(X, Y), stores it as a prediction, reads it back through the SDK, decodes its brush RLE with
the SDK and writes the alpha channel to OUT_DIR/mask.npy (and what it saw to OUT_DIR/run.json).
"""

import json
import sys
from pathlib import Path

import numpy as np
import requests
from label_studio_sdk import LabelStudio
from label_studio_sdk.converter.brush import decode_rle

CONFIG = """<View>
  <Image name="image" value="$image" zoom="true"/>
  <BrushLabels name="tag" toName="image"><Label value="cat" background="#ff0066"/></BrushLabels>
  <KeyPointLabels name="kp" toName="image" smart="true"><Label value="cat" smart="true"/></KeyPointLabels>
</View>"""


def main() -> None:
    ls_url, token, backend, image, x, y, out = sys.argv[1:8]
    x, y, out = float(x), float(y), Path(out)
    ls = LabelStudio(base_url=ls_url, api_key=token)
    project = ls.projects.create(title="segmentkit", label_config=CONFIG)
    with open(image, "rb") as handle:  # a real upload: the task's image is /data/upload/...
        reply = requests.post(
            f"{ls_url}/api/projects/{project.id}/import",
            headers={"Authorization": f"Token {token}"},
            files={"file": (Path(image).name, handle, "image/png")},
            timeout=60,
        )
    reply.raise_for_status()
    task = next(iter(ls.tasks.list(project=project.id)))
    ml = ls.ml.create(
        project=project.id,
        url=backend,
        title="segmentkit",
        is_interactive=True,
        auth_method="BASIC_AUTH",
        basic_auth_user="ls",
        basic_auth_pass="secret",
    )
    width, height = 451, 300
    context = {
        "result": [
            {
                "id": "click1",
                "from_name": "kp",
                "to_name": "image",
                "type": "keypointlabels",
                "origin": "manual",
                "original_width": width,
                "original_height": height,
                "image_rotation": 0,
                "is_positive": True,
                "value": {
                    "x": x * 100 / width,
                    "y": y * 100 / height,
                    "width": 0.5,
                    "keypointlabels": ["cat"],
                },
            }
        ]
    }
    answer = ls.ml.with_raw_response.predict_interactive(id=ml.id, task=task.id, context=context)
    data = answer._response.json()
    if "data" not in data:
        raise SystemExit(f"Label Studio reported: {data}")
    made = data["data"]
    ls.predictions.create(
        task=task.id, result=made["result"], score=made["score"], model_version=made["model_version"]
    )
    stored = list(ls.predictions.list(task=task.id))
    region = next(r for r in stored[0].result if r["type"] == "brushlabels")
    shape = (region["original_height"], region["original_width"], 4)
    mask = decode_rle(region["value"]["rle"]).reshape(shape)[:, :, 3] > 127
    np.save(out / "mask.npy", mask)
    (out / "run.json").write_text(
        json.dumps(
            {
                "task_image": task.data["image"],
                "model_version": stored[0].model_version,
                "labels": region["value"]["brushlabels"],
                "score": region.get("score"),
                "ml_state": ml.state,
            }
        )
    )


if __name__ == "__main__":
    main()
