"""EdgeTAM through segmentkit: prompter, automatic masks and tracker against transformers + timm.

The reference masks were made by ``fixtures/make_edgetam_fixtures.py`` with transformers'
``EdgeTamModel`` / ``EdgeTamVideoModel`` (timm's RepViT), ``Sam2Processor`` /
``Sam2VideoProcessor`` and their ``post_process_masks``, on the tiny checkpoint that
``edgetam_tiny`` rebuilds here without timm. Also the conformance contracts of the three
roles, and the CLI.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import segmentkit
from edgetam_tiny import reference
from segmentkit import Box, Point
from segmentkit.cli.app import load_commands
from segmentkit.cli.common import run_app
from segmentkit.errors import OptionsError
from segmentkit.testing.compare import iou
from segmentkit.testing.conformance import PrompterContract, SegmenterContract, TrackerContract

MODEL = "edgetam"
MIN_IOU = 0.99
BF16_MIN_IOU = 0.9  # measured 0.92-0.99 per candidate on the tiny model
POINT, NEG_POINT, BOX = (30.0, 25.0), (80.0, 60.0), (50.0, 35.0, 90.0, 66.0)  # as the fixture script


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ref():
    return reference()


@pytest.fixture(scope="module")
def prompter(edgetam_weights):
    return segmentkit.Registry().load(MODEL, weights=edgetam_weights)


@pytest.fixture(scope="module")
def tracker(edgetam_weights):
    return segmentkit.Registry().load(MODEL, role="tracker", weights=edgetam_weights)


def assert_masks(ours: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert ours.shape == expected.shape, what
    for k in range(len(expected)):
        assert 0.005 < expected[k].mean() < 0.995 or what.startswith("video"), f"{what} {k}: trivial reference"
        assert iou(ours[k], expected[k]) >= MIN_IOU, f"{what} {k}: IoU {iou(ours[k], expected[k]):.4f}"


@pytest.mark.parametrize("precision", ["fp32", "bf16", "reference"])  # reference: -O engine=reference, fp32
@pytest.mark.parametrize("case", ["point", "box"])
def test_prompts_match_transformers(edgetam_weights, prompter, ref, case, precision, request) -> None:
    if precision == "bf16":
        request.getfixturevalue("native_bf16")
    options = {"fp32": {}, "bf16": {"precision": "bf16"}, "reference": {"engine": "reference"}}[precision]
    model = segmentkit.Registry().load(MODEL, weights=edgetam_weights, **options) if options else prompter
    prompts = [Point(*POINT), Point(*NEG_POINT, positive=False)] if case == "point" else [Box(*BOX)]
    ours = model.predict(model.embed(ref["frames"][0]), prompts, multimask=True)
    if precision != "bf16":
        assert_masks(ours.masks, ref[f"{case}_masks"], case)
        np.testing.assert_allclose(ours.scores, ref[f"{case}_iou"], rtol=0, atol=1e-3)
    else:  # the tiny random model amplifies bf16 rounding (activations ~100): a looser bound
        assert min(iou(o, r) for o, r in zip(ours.masks, ref[f"{case}_masks"])) >= BF16_MIN_IOU


@pytest.mark.parametrize("stream", [False, True], ids=["clip", "stream"])
def test_tracking_matches_transformers(tracker, ref, stream) -> None:
    frames = list(ref["frames"])
    expected = ref["video_masks"]  # (frames, objects, H, W)
    assert 0.01 < expected.mean() < 0.99
    if stream:
        session = tracker.start(stream=True)
        session.push_frame(frames[0])
        session.add_prompts(0, 1, [Point(*POINT)])
        session.add_prompts(0, 2, [Box(*BOX)])
        got = {0: None}
        for frame in frames[1:]:
            fm = session.push_frame(frame)
            got[fm.frame_index] = fm.masks.masks
        session.close()
        got.pop(0)
    else:
        with tracker.start(frames) as session:
            session.add_prompts(0, 1, [Point(*POINT)])
            session.add_prompts(0, 2, [Box(*BOX)])
            got = {fm.frame_index: fm.masks.masks for fm in session.propagate()}
    for frame, masks in got.items():
        assert_masks(masks, expected[frame], f"video frame {frame}")


def test_models_lists_edgetam(capsys) -> None:
    assert run_app(load_commands(), ["models", "--json"]) == 0
    card = next(r["card"] for r in json.loads(capsys.readouterr().out) if r["card"]["id"] == MODEL)
    assert card["license"] == "Apache-2.0"
    assert set(card["tasks"]) == {"prompt", "automatic", "track"}
    assert set(card["prompt_kinds"]) >= {"point", "box"}
    assert card["weights"]["repo_id"] == "yonigozlan/EdgeTAM-hf"


def test_prompt_through_the_cli(edgetam_weights, ref, tmp_path, capsys) -> None:
    from PIL import Image

    image = tmp_path / "frame.png"
    Image.fromarray(ref["frames"][0]).save(image)
    code = run_app(load_commands(), ["prompt", str(image), "--point", f"{POINT[0]:g},{POINT[1]:g}",
                                     "--neg", f"{NEG_POINT[0]:g},{NEG_POINT[1]:g}", "--model", MODEL,
                                     "--weights", str(edgetam_weights), "--out", str(tmp_path / "out"), "--json"])
    assert code == 0
    out = capsys.readouterr().out
    assert MODEL in out


class TestEdgeTamPrompter(PrompterContract):
    level = "geometry"  # random weights

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, prompter):
        return prompter


class TestEdgeTamAutomatic(SegmenterContract):
    level = "geometry"
    task = "automatic"

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, edgetam_weights):
        return segmentkit.Registry().load(MODEL, role="segmenter", weights=edgetam_weights, points_per_side=4,
                                          pred_iou_thresh=0.0, stability_score_thresh=0.0)


class TestEdgeTamTracker(TrackerContract):
    level = "geometry"

    @pytest.fixture
    def model(self, tracker):
        return tracker


def test_bf16_tracking_is_close_to_transformers(edgetam_weights, tracker, ref, native_bf16) -> None:
    """precision=bf16: the memory attention's attention products (blocked bf16) and MLPs in bf16
    run on a copy of it, close to transformers' fp32 forward on the inputs of a real tracked frame;
    the loaded fp32 model, which other sessions share, is untouched."""
    import torch
    from segmentkit_sam2.attention import TRANSFORMERS_NAME

    fast = segmentkit.Registry().load(MODEL, role="tracker", weights=edgetam_weights, precision="bf16")
    loaded, copy = fast.raw.model, fast.raw._fast.memory_attention
    assert copy is not loaded.memory_attention
    assert copy.layers[0].self_attn.config._attn_implementation == TRANSFORMERS_NAME
    assert loaded.memory_attention.layers[0].self_attn.config._attn_implementation != TRANSFORMERS_NAME
    calls = []
    hook = tracker.raw.model.memory_attention.register_forward_pre_hook(
        lambda _, args, kwargs: calls.append((args, kwargs)), with_kwargs=True)
    try:
        frames = list(ref["frames"])
        with tracker.start(frames[:3]) as session:
            session.add_prompts(0, 1, [Point(*POINT)])
            list(session.propagate())
    finally:
        hook.remove()
    args, kwargs = calls[-1]  # the last frame's: memory of two frames and object pointers
    with torch.inference_mode():
        expected = tracker.raw.model.memory_attention(*args, **kwargs)
        error = float((copy(*args, **kwargs) - expected).abs().max() / expected.abs().max())
    assert 0 < error < 0.02, error  # 0: bf16 did not run
    with fast.start(frames) as session:
        session.add_prompts(0, 1, [Point(*POINT)])
        session.add_prompts(0, 2, [Box(*BOX)])
        got = {fm.frame_index: fm.masks.masks for fm in session.propagate()}
    expected_masks = ref["video_masks"]
    assert min(iou(masks[k], expected_masks[frame][k]) for frame, masks in got.items()
               for k in range(len(masks))) >= BF16_MIN_IOU


def test_without_fast_paths(edgetam_weights, ref, without_fast_paths) -> None:
    """On a CPU without bf16 or oneDNN's fused linear: 'auto' is fp32, the public-op RepViT and neck
    give transformers' masks (prompter and tracker), and precision='bf16' is refused with the reason."""
    prompter = segmentkit.Registry().load(MODEL, weights=edgetam_weights)
    tracker = segmentkit.Registry().load(MODEL, role="tracker", weights=edgetam_weights)
    assert prompter.options.precision == tracker.options.precision == "fp32"
    ours = prompter.predict(prompter.embed(ref["frames"][0]), [Box(*BOX)], multimask=True)
    assert_masks(ours.masks, ref["box_masks"], "box")
    frames = list(ref["frames"])
    with tracker.start(frames) as session:
        session.add_prompts(0, 1, [Point(*POINT)])
        session.add_prompts(0, 2, [Box(*BOX)])
        for fm in session.propagate():
            assert_masks(fm.masks.masks, ref["video_masks"][fm.frame_index], f"video frame {fm.frame_index}")
    for role in ("prompter", "tracker"):
        with pytest.raises(OptionsError, match="native bf16"):
            segmentkit.Registry().load(MODEL, role=role, weights=edgetam_weights, precision="bf16")
