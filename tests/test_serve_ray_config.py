"""The `serve deploy` config in docs/ is a valid Ray Serve config whose builder builds the application.

No cluster: the config is validated with Ray Serve's own schema and its application is
built (bound, not deployed). tests/test_serve_ray.py deploys and calls a real one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

if os.environ.get("SEGMENTKIT_REQUIRE_RAY_SERVE") != "1":
    pytest.importorskip("ray.serve", reason='needs Ray Serve: pip install "segmentkit[ray]"')
yaml = pytest.importorskip("yaml")
from ray.serve.schema import ServeDeploySchema  # noqa: E402
from segmentkit.rayserve.deployment import build  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "docs" / "ray-serve.yaml"


def test_the_documented_config_validates_and_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    config = ServeDeploySchema.model_validate(yaml.safe_load(CONFIG.read_text()))
    (app,) = config.applications
    assert app.import_path == "segmentkit.rayserve.deployment:build"
    (replica,) = app.deployments
    assert replica.name == "VisionReplica" and replica.autoscaling_config["max_replicas"] >= 2
    monkeypatch.setenv("SEGMENTKIT_TOKENS", app.runtime_env["env_vars"]["SEGMENTKIT_TOKENS"])
    built = build(app.args)
    assert type(built).__name__ == "Application"


def test_build_refuses_an_app_without_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = tmp_path / "studio.json"
    manifest.write_text(json.dumps({"app": {"id": "studio", "name": "Studio"}, "capabilities": {}}))
    monkeypatch.delenv("SEGMENTKIT_TOKENS", raising=False)
    with pytest.raises(ValueError, match="no token for app"):
        build({"manifests": [str(manifest)]})
    with pytest.raises(ValueError):
        build({"manifests": [str(manifest)], "tokens": {"studio": "t"}, "unknown_option": 1})


@pytest.mark.parametrize(("args", "message"), [
    (["--engine", "ray", "--autoscale", "3:1"], "must be MIN:MAX with 1 <= MIN <= MAX"),
    (["--engine", "spark"], "--engine is local or ray"),
])
def test_the_command_refuses_bad_engine_options_before_starting_ray(args: list[str], message: str) -> None:
    import subprocess

    import test_ipc_support as support  # registered by tests/conftest.py

    done = subprocess.run(support.serve_cmd(*args), env=support.server_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and message in done.stderr
