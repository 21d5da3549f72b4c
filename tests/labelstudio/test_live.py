"""Integration: a real Label Studio 1.23.2 asks our backend for an interactive mask.

Label Studio runs from its own venv (its pins fight ours: see docs/label-studio.md), made
by ``.ci/run`` under ``~/.cache/segmentkit-ci/label-studio-1.23.2`` (or
``$SEGMENTKIT_LABEL_STUDIO_VENV``). Without it the test skips, unless
``SEGMENTKIT_REQUIRE_LABEL_STUDIO=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as coco

SAMPLE = Path(__file__).resolve().parents[2] / "core" / "segmentkit" / "samples" / "chelsea.png"
EYE = (175, 115)  # the cat's left eye (pupil) in chelsea.png
VENV = Path(
    os.environ.get(
        "SEGMENTKIT_LABEL_STUDIO_VENV", Path.home() / ".cache" / "segmentkit-ci" / "label-studio-1.23.2"
    )
)
START_TIMEOUT_S = 300
CLI = "import sys\nfrom segmentkit.cli import main\nsys.exit(main())"


def _venv() -> Path:
    if (VENV / "bin" / "label-studio").is_file():
        return VENV
    reason = f"Label Studio venv missing at {VENV} (bash .ci/run creates it)"
    if os.environ.get("SEGMENTKIT_REQUIRE_LABEL_STUDIO", "") not in ("", "0"):
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants (from /proc), MiB."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total / 1024


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> float:
    import httpx

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited with {proc.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory: pytest.TempPathFactory):
    venv = _venv()
    data = tmp_path_factory.mktemp("ls-data")
    port, token = _free_port(), secrets.token_hex(20)
    env = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data),
        "DJANGO_DB": "sqlite",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        # Our backend listens on loopback, and Label Studio refuses loopback ML and webhook URLs by default.
        "ML_BLOCK_LOCAL_IP": "false",
        "SSRF_PROTECTION_ENABLED": "false",
    }
    env.pop("PYTHONPATH", None)
    log = (data / "ls.log").open("wb")
    proc = subprocess.Popen(
        [
            str(venv / "bin" / "label-studio"),
            "start",
            "--no-browser",
            "--internal-host",
            "127.0.0.1",
            "--port",
            str(port),
            "--username",
            "ci@segmentkit.test",
            "--password",
            secrets.token_hex(8),
            "--user-token",
            token,
            "--enable-legacy-api-token",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=data,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        seconds = _wait_http(f"{url}/version", proc, START_TIMEOUT_S)
        figures = {"start_s": round(seconds, 1), "rss_mb": round(_tree_rss_mb(proc.pid))}
        print(
            f"\nLabel Studio 1.23.2 answered /version after {figures['start_s']} s, "
            f"RSS {figures['rss_mb']} MiB"
        )
        yield {"url": url, "token": token, "venv": venv, "figures": figures, "log": data / "ls.log"}
    finally:
        _stop(proc)
        log.close()


@pytest.fixture(scope="module")
def backend(label_studio, tmp_path_factory: pytest.TempPathFactory):
    """``segmentkit serve --label-studio`` (the console command) on loopback, basic auth on."""
    port = _free_port()
    env = {
        **os.environ,
        "LABEL_STUDIO_URL": label_studio["url"],
        "LABEL_STUDIO_API_KEY": label_studio["token"],
        "SEGMENTKIT_BASIC_AUTH": "ls:secret",
    }
    log = (tmp_path_factory.mktemp("backend") / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "serve", "--label-studio", "--model", "classic", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", proc, 120)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)
        log.close()


def _cli_mask(tmp_path: Path) -> np.ndarray:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            CLI,
            "prompt",
            str(SAMPLE),
            "--point",
            f"{EYE[0]},{EYE[1]}",
            "--model",
            "classic",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    (rle,) = [m["rle"] for m in json.loads(out.stdout)["masks"]]
    return coco.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)


def test_interactive_keypoint_in_label_studio_matches_the_cli(label_studio, backend, tmp_path):
    client = Path(__file__).with_name("ls_client.py")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [
            str(label_studio["venv"] / "bin" / "python"),
            str(client),
            label_studio["url"],
            label_studio["token"],
            backend,
            str(SAMPLE),
            str(EYE[0]),
            str(EYE[1]),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 0, (
        f"{run.stdout}\n{run.stderr}\n--- label studio log tail:\n"
        + label_studio["log"].read_text(errors="replace")[-3000:]
    )
    seen = json.loads((tmp_path / "run.json").read_text())
    assert seen["task_image"].startswith("/data/upload/")  # fetched by the backend from Label Studio
    assert seen["model_version"] == "classic@none" and seen["labels"] == ["cat"]
    ours = np.load(tmp_path / "mask.npy")
    reference = _cli_mask(tmp_path)
    assert reference.any() and ours.shape == reference.shape == (300, 451)
    iou = (ours & reference).sum() / (ours | reference).sum()
    assert iou >= 0.999, f"brush mask IoU with the CLI's mask: {iou:.5f}"


def test_brush_rle_is_byte_for_byte_the_sdks(tmp_path: Path) -> None:
    """Our encoder against label_studio_sdk.converter.brush.mask2rle (run in Label Studio's venv)."""
    from segmentkit.labelstudio.brush import mask_to_rle

    venv = _venv()
    rng = np.random.default_rng(0)
    long_run = np.ones((400, 500), dtype=bool)  # runs longer than 2**16 values
    long_run[10, 10] = False
    masks = [rng.random((37, 53)) > 0.5, np.zeros((30, 45), dtype=bool), long_run, _cli_mask(tmp_path)]
    cases = [[m.astype(np.uint8).tolist(), mask_to_rle(m)] for m in masks]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    script = (
        "import json, sys, numpy as np\n"
        "from label_studio_sdk.converter.brush import mask2rle\n"
        "cases = json.load(open(sys.argv[1]))\n"
        "print(json.dumps([mask2rle(np.array(m, np.uint8) * 255) == ours for m, ours in cases]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script, str(tmp_path / "cases.json")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [True] * len(masks)
