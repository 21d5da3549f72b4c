"""`import segmentkit` and discovery of every installed plugin import no heavy libraries."""

import json
import subprocess
import sys

HEAVY = ["torch", "transformers", "onnxruntime", "cv2", "decord", "av", "skimage", "scipy",
         "starlette", "uvicorn", "ray"]


def test_import_and_discovery_stay_light():
    code = (
        "import json, sys, segmentkit\n"
        "infos = segmentkit.models()\n"
        "problems = segmentkit.registry.default_registry().problems\n"
        f"print(json.dumps({{'heavy': [m for m in {HEAVY!r} if m in sys.modules],"
        " 'models': len(infos), 'problems': [p.error for p in problems]}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["heavy"] == [], f"imported at discovery: {result['heavy']}"
    assert result["problems"] == []
