"""SAM 3 through the faces with no SAM 3 code in them: `segmentkit models`, `segmentkit prompt --text`
(the real executable), IPC `vision.mask_from_prompt {text}`, and the gated-weights error."""

import asyncio
import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError
from PIL import Image
from segmentkit.errors import WeightsUnavailableError
from segmentkit.ipc.manifest import App
from segmentkit.ipc.service import Service
from segmentkit.registry import Registry
from segmentkit.weights import resolve_weights
from segmentkit_sam3 import SAM3_CARD


def run(*args):
    return subprocess.run([shutil.which("segmentkit"), *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    path = tmp_path_factory.mktemp("scene") / "scene.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
    return path


def test_models_lists_sam3_with_its_tasks_and_prompt_kinds():
    result = run("models", "--json")
    assert result.returncode == 0, result.stderr
    (entry,) = [e for e in json.loads(result.stdout) if e["card"]["id"] == "sam3"]
    card = entry["card"]
    assert entry["roles"] == ["prompter", "tracker"] and entry["distribution"] == "segmentkit-sam3"
    assert card["prompt_kinds"] == ["point", "box", "text"] and card["tasks"] == ["prompt", "track"]
    assert card["license"] == "SAM License" and card["weights"]["repo_id"] == "facebook/sam3"


def test_prompt_text_from_the_command_line(sam3_dir, scene):
    result = run("prompt", scene, "--text", "a red square", "--model", "sam3", "--weights", sam3_dir, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout.splitlines()[0])
    assert len(document["masks"]) > 1, "every instance of the phrase, not one mask"
    assert {m["label"] for m in document["masks"]} == {"a red square"}


def test_track_text_from_the_command_line(sam3_dir, tracker, tmp_path, capsys):
    """`segmentkit track --text` gives, frame by frame, what the Python API's text session gives."""
    import segmentkit as sk
    from segmentkit.cli.app import load_commands
    from segmentkit.cli.common import run_app
    from segmentkit.rle import decode

    for i in range(3):
        rgb = np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(tmp_path / f"{i:05d}.png")
    args = ["track", str(tmp_path), "--text", "1:a red square", "--model", "sam3", "--weights", str(sam3_dir), "--json"]
    code = run_app(load_commands(), args)
    out = capsys.readouterr()
    assert code == 0, out.err
    documents = [json.loads(line) for line in out.out.splitlines()]
    with tracker.start(str(tmp_path)) as session:
        session.add_prompts(1, 1, [sk.Text("a red square")])
        api = list(session.propagate(1, direction="both"))
    assert [d["frame_index"] for d in documents] == [fm.frame_index for fm in api] == [1, 2, 0]
    assert any(len(fm.object_ids) for fm in api), "the tiny model finds instances: masks to compare"
    for document, fm in zip(documents, api):
        assert [m["object_id"] for m in document["masks"]] == list(fm.object_ids)
        assert [m["label"] for m in document["masks"]] == fm.masks.labels
        for record, mask in zip(document["masks"], fm.masks.masks):
            assert np.array_equal(decode(record["rle"]), mask)


def test_mask_from_prompt_with_text_over_ipc(sam3_dir, scene):
    import segmentkit_sam3

    registry = Registry(entry_points=False)
    registry.register(segmentkit_sam3, name="sam3")
    service = Service(registry, [App.local()], load_options={"weights": str(sam3_dir)})
    request = {"jsonrpc": "2.0", "id": 1, "method": "vision.mask_from_prompt",
               "params": {"model": "sam3", "image": {"path": str(scene)}, "text": "a red square"}}

    async def ask():
        try:
            return await service.handle(json.dumps(request), App.local())
        finally:
            await service.aclose()

    with ThreadPoolExecutor(1) as pool:  # its own thread: an earlier test may leave this one's event loop running
        answer = pool.submit(asyncio.run, ask()).result()
    assert "result" in answer, answer
    masks = answer["result"]["masks"]
    assert len(masks) > 1 and {m["label"] for m in masks} == {"a red square"}


def _forbidden() -> HfHubHTTPError:
    request = httpx.Request("GET", "https://huggingface.co/api/models/facebook/sam3")
    return HfHubHTTPError("403 Forbidden", response=httpx.Response(403, request=request))


def _gated() -> GatedRepoError:
    gated = GatedRepoError.__new__(GatedRepoError)  # what the hub raises before the licence is accepted
    Exception.__init__(gated, "401 Client Error: cannot access gated repo facebook/sam3")
    return gated


@pytest.mark.parametrize("refusal", [_gated, _forbidden])
def test_gated_repository_error_says_accept_the_licence_and_log_in(monkeypatch, refusal):
    def snapshot_download(repo_id, *, revision, allow_patterns=None, local_files_only=False):
        if local_files_only:
            raise FileNotFoundError("not cached")
        raise refusal()

    monkeypatch.setattr("huggingface_hub.snapshot_download", snapshot_download)
    monkeypatch.delenv("SEGMENTKIT_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(WeightsUnavailableError) as info:
        resolve_weights(SAM3_CARD)
    message = str(info.value)
    assert "https://huggingface.co/facebook/sam3" in message and "accept its licence" in message
    assert "hf auth login" in message and "HF_TOKEN" in message and "segmentkit pull sam3" in message


def test_batch_manifest_with_text_prompts(sam3_dir, scene, tmp_path):
    from segmentkit.batch import run_batch

    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps({"image": str(scene), "text": "a red square"}) + "\n", encoding="utf-8")
    run_batch([manifest], tmp_path / "out", model="sam3", load_options={"weights": str(sam3_dir)}, workers=1)
    (record,) = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    masks = record["result"]["masks"]
    assert len(masks) > 1 and {m["label"] for m in masks} == {"a red square"}
