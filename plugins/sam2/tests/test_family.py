"""The SAM-family descriptor and ``engine="reference"``.

- ``engine="reference"`` runs transformers' own forward (image: ``get_image_embeddings`` +
  ``model(image_embeddings=...)``; video: the unmodified ``Sam2VideoModel``); the default lean
  engine must agree with it on the same weights and prompts, in every role.
  EdgeTAM (another family, another lean encoder) is checked the same way.
- A family whose descriptor names no lean parts runs transformers' vision encoder and memory
  attention through the same prompter, generator and sessions (what a new family gets before
  it has a lean encoder), and gives the same masks.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import segmentkit as sk
import torch
from segmentkit import Box, MaskPrompt, Point
from segmentkit.errors import SpecError
from segmentkit.registry import Registry
from segmentkit.testing.compare import iou
from segmentkit_sam2 import family as family_module
from segmentkit_sam2.automatic import Sam2AutomaticSegmenter
from segmentkit_sam2.catalog import card
from segmentkit_sam2.family import SAM2, family_of
from segmentkit_sam2.image_encoder import TransformersImageEncoder
from segmentkit_sam2.options import Sam2AutomaticOptions, Sam2Options
from segmentkit_sam2.prompter import Sam2Prompter
from segmentkit_sam2.reference_engine import ReferenceEngine
from segmentkit_sam2.tracker import Sam2Tracker
from segmentkit_sam2.video_options import Sam2TrackerOptions
from segmentkit_sam2.video_testing import build_tiny_video_checkpoint, moving_frames

MODEL_ID = "sam2.1-hiera-tiny"
PLAIN = dataclasses.replace(SAM2, name="sam2-plain", lean_image_encoder=None, lean_memory_attention=None,
                            onnx_export=None)
PROMPT_SETS = [
    [Point(200, 150)],
    [Point(120, 80), Point(300, 220, positive=False)],
    [Box(40, 30, 260, 240)],
    [Box(150, 100, 380, 290), Point(250, 200)],
]


@pytest.fixture
def plain_family(monkeypatch):
    monkeypatch.setitem(family_module.FAMILIES, PLAIN.name, PLAIN)
    return card(MODEL_ID).model_copy(update={"family": PLAIN.name})


def assert_same_masks(a: sk.Masks, b: sk.Masks) -> None:
    assert a.masks.shape == b.masks.shape
    for k in range(len(a)):
        assert iou(a.masks[k], b.masks[k]) >= 0.99, f"mask {k}: IoU {iou(a.masks[k], b.masks[k]):.4f}"
    np.testing.assert_allclose(a.scores, b.scores, rtol=0, atol=1e-3)


def predict_all(prompter, image) -> list[sk.Masks]:
    emb = prompter.embed(image)
    out = [prompter.predict(emb, s, multimask=m) for s in PROMPT_SETS for m in (False, True)]
    out += prompter.predict_batch(emb, PROMPT_SETS[:2] + PROMPT_SETS[:1])  # one batched call
    logits = out[0].data["low_res_logits"][0]
    out += prompter.predict_batch(emb, [[MaskPrompt(logits)], [MaskPrompt(-logits), Point(100, 100)]])
    return out


def test_reference_engine_agrees_with_the_lean_engine(small_prompter, sam2_weights_small, photo):
    reference = Registry().load(MODEL_ID, role="prompter", weights=sam2_weights_small, engine="reference")
    assert isinstance(reference.raw.engine, ReferenceEngine)
    assert not isinstance(small_prompter.raw.engine, ReferenceEngine)
    for ours, ref in zip(predict_all(small_prompter, photo), predict_all(reference, photo), strict=True):
        assert ours.masks.any()
        assert_same_masks(ours, ref)


def test_reference_engine_serves_every_family(edgetam_weights):
    """EdgeTAM (RepViT lean encoder) against its own transformers forward, image and video."""
    frames = moving_frames(6)
    image = frames[0]
    lean = Registry().load("edgetam", weights=edgetam_weights)
    ref = Registry().load("edgetam", weights=edgetam_weights, engine="reference")
    assert isinstance(ref.raw.engine, ReferenceEngine)
    prompts = [[Point(30, 25)], [Box(50, 35, 90, 66)], [Point(30, 25), Point(80, 60, positive=False)]]
    for p in prompts:
        a, b = (m.predict(m.embed(image), p, multimask=True) for m in (lean, ref))
        assert_same_masks(a, b)
    trackers = [Registry().load("edgetam", role="tracker", weights=edgetam_weights, **extra)
                for extra in ({}, {"engine": "reference"})]
    for a, b in zip(*(track(t, frames, stream=False) for t in trackers), strict=True):
        assert a.masks.masks.any() and not a.masks.masks.all()
        for k in range(len(a.object_ids)):
            assert iou(a.masks.masks[k], b.masks.masks[k]) >= 0.99, f"frame {a.frame_index} object {k}"


def test_reference_engine_automatic_masks(sam2_weights_small, photo):
    opts = dict(weights=sam2_weights_small, device="cpu", points_per_side=4, pred_iou_thresh=0.5,
                stability_score_thresh=0.4, box_nms_thresh=1.0)
    lean = Sam2AutomaticSegmenter(card(MODEL_ID), Sam2AutomaticOptions(**opts)).segment(photo).masks
    ref = Sam2AutomaticSegmenter(card(MODEL_ID), Sam2AutomaticOptions(engine="reference", **opts))
    assert len(lean) >= 3
    assert_same_masks(lean, ref.segment(photo).masks)


def test_family_without_lean_parts_uses_transformers_encoder(plain_family, small_prompter, sam2_weights_small,
                                                             photo):
    assert plain_family.runtimes == card(MODEL_ID).runtimes  # the card was copied; the descriptor says:
    assert PLAIN.runtimes == ("torch",)
    plain = Sam2Prompter(plain_family, Sam2Options(weights=sam2_weights_small, device="cpu"))
    assert isinstance(plain.engine._encoder, TransformersImageEncoder)
    for ours, ref in zip(predict_all(small_prompter, photo), predict_all(plain, photo), strict=True):
        assert_same_masks(ours, ref)


@pytest.fixture(scope="module")
def video_checkpoint(tmp_path_factory):
    return build_tiny_video_checkpoint(tmp_path_factory.mktemp("sam2-video-64"), image_size=64)


def track(tracker, frames, stream: bool) -> list[sk.FrameMasks]:
    """Two objects through ``frames``: a propagated file-like session, or a live stream."""
    torch.set_num_threads(1)
    with tracker.start(stream=True) if stream else tracker.start(frames) as session:
        if stream:
            session.push_frame(frames[0])
        session.add_prompts(0, 1, [Point(30, 32)])
        out = [session.add_prompts(0, 2, [Box(55, 35, 85, 65)])]
        return out + [session.push_frame(f) for f in frames[1:]] if stream else list(session.propagate())


@pytest.mark.parametrize("variant, stream", [("reference", False), ("reference", True), ("plain-family", False)])
def test_tracker_engines_agree(video_checkpoint, plain_family, variant, stream):
    frames = moving_frames(10)
    lean = Sam2Tracker(card(MODEL_ID), Sam2TrackerOptions(weights=video_checkpoint, device="cpu"))
    if variant == "reference":
        other = Sam2Tracker(card(MODEL_ID), Sam2TrackerOptions(weights=video_checkpoint, device="cpu",
                                                               engine="reference"))
    else:
        other = Sam2Tracker(plain_family, Sam2TrackerOptions(weights=video_checkpoint, device="cpu"))
    assert other._fast.memory_attention is other.model.memory_attention  # transformers' own parts
    assert "get_image_features" not in vars(other._fast)
    assert lean._fast.memory_attention is not lean.model.memory_attention  # the lean ones
    assert "get_image_features" in vars(lean._fast)
    for a, b in zip(track(lean, frames, stream), track(other, frames, stream), strict=True):
        assert a.frame_index == b.frame_index and a.object_ids == b.object_ids
        assert a.masks.masks.any()
        for k in range(len(a.object_ids)):
            assert iou(a.masks.masks[k], b.masks.masks[k]) >= 0.99, f"frame {a.frame_index} object {k}"


@pytest.mark.parametrize("options", [dict(engine="reference", precision="bf16"),
                                     dict(engine="reference", runtime="onnxruntime"),
                                     dict(engine="fast")])
def test_engine_option_is_checked(sam2_weights_small, options):
    for role in ("prompter", "tracker"):
        with pytest.raises(sk.SegmentkitError, match="engine"):
            Registry().load(MODEL_ID, role=role, weights=sam2_weights_small, **options)


def test_unknown_family_is_a_spec_error():
    with pytest.raises(SpecError, match="family 'nope'"):
        family_of(card(MODEL_ID).model_copy(update={"family": "nope"}))
