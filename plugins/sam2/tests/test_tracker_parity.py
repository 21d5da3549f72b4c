"""The SAM 2 tracker against transformers' own video tracking, on the same weights and prompts.

The reference is ``Sam2VideoModel`` with its ``Sam2VideoInferenceSession``, prompts given
through ``Sam2VideoProcessor`` and masks post-processed as its docs show. The tiny
checkpoint's memory attention is scaled up so that masks depend on the memory (see
``build_tiny_video_checkpoint``): a tracker that keeps too little memory fails these tests.
The 40-frame clip is longer than the memory window (15 frames), so the session's
trimming is exercised.
"""

from __future__ import annotations

import numpy as np
import pytest
import segmentkit as sk
from segmentkit.errors import OptionsError
from segmentkit.registry import Registry
from segmentkit.testing.compare import iou
from segmentkit_sam2.video_testing import (
    ReferenceTracker,
    build_tiny_video_checkpoint,
    decode_all,
    moving_frames,
    write_video,
)

MODEL = "sam2.1-hiera-tiny"
FRAMES = 40
MIN_IOU = 0.99


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return build_tiny_video_checkpoint(tmp_path_factory.mktemp("sam2-video-tiny"))


@pytest.fixture(scope="module")
def tracker(checkpoint):
    return Registry().load(MODEL, role="tracker", weights=checkpoint)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", moving_frames(FRAMES))
    return path, decode_all(path)


def reference(tracker, frames):
    return ReferenceTracker(tracker.raw.model, frames)


def assert_same(mine: dict[int, sk.FrameMasks], ref: dict[int, dict[int, np.ndarray]]) -> None:
    assert sorted(mine) == sorted(ref), "different frames"
    worst = 1.0
    for frame, masks in ref.items():
        got = mine[frame]
        assert got.object_ids == list(masks), f"frame {frame}: object ids"
        for k, obj in enumerate(got.object_ids):
            worst = min(worst, iou(got.masks.masks[k], masks[obj]))
    assert worst >= MIN_IOU, f"worst per-frame IoU {worst:.4f}"


def by_frame(results) -> dict[int, sk.FrameMasks]:
    return {r.frame_index: r for r in results}


def test_forward(tracker, clip):
    path, frames = clip
    ref = reference(tracker, frames)
    ref.add(0, 1, points=[(30, 32)], labels=[1])
    first_ref = ref.run(0)
    ref_scores = dict(ref.last_scores)
    with tracker.start(path) as session:
        first = session.add_prompts(0, 1, [sk.Point(30, 32)])
        mine = by_frame(session.propagate())
        partial = by_frame(session.propagate(0, max_frames=10))
    assert_same({0: first}, {0: first_ref})
    assert first.masks.scores[0] == pytest.approx(ref_scores[1], abs=1e-5)
    assert 0.05 < first.masks.masks[0].mean() < 0.95  # not a trivial mask
    assert_same(mine, dict(ref.propagate()))
    assert sorted(partial) == list(range(10))
    assert_same(partial, {f: {1: mine[f].masks.masks[0]} for f in range(10)})


def test_reverse_from_last_frame(tracker, clip):
    path, frames = clip
    last = FRAMES - 1
    ref = reference(tracker, frames)
    ref.add(last, 7, box=(20, 10, 70, 55))
    ref.run(last)
    with tracker.start(path) as session:
        session.add_prompts(last, 7, [sk.Box(20, 10, 70, 55)])
        mine = by_frame(session.propagate(last, direction="backward"))
    assert sorted(mine) == list(range(FRAMES))
    assert_same(mine, dict(ref.propagate(last, reverse=True)))


def test_forward_then_reverse_from_the_middle(tracker, clip):
    # The backward pass reads memory the forward pass left next to the prompted frame.
    path, frames = clip
    ref = reference(tracker, frames)
    ref.add(20, 1, points=[(50, 30), (10, 60)], labels=[1, 0])
    ref.run(20)
    with tracker.start(path) as session:
        session.add_prompts(20, 1, [sk.Point(50, 30), sk.Point(10, 60, positive=False)])
        forward = by_frame(session.propagate())
        backward = by_frame(session.propagate(20, direction="backward"))
    assert_same(forward, dict(ref.propagate()))
    assert_same(backward, dict(ref.propagate(20, reverse=True)))


def two_objects(tracker, session, frames):
    """Objects 3 (a click) and 5 (a box) on frame 0 of ``session`` and of a fresh reference."""
    ref = reference(tracker, frames)
    ref.add(0, 3, points=[(30, 32)], labels=[1])
    ref.run(0)
    ref.add(0, 5, box=(58, 38, 84, 62))
    ref.run(0)
    session.add_prompts(0, 3, [sk.Point(30, 32)])
    session.add_prompts(0, 5, [sk.Box(58, 38, 84, 62)])
    return ref


def test_two_objects(tracker, clip):
    path, frames = clip
    with tracker.start(path) as session:
        ref = two_objects(tracker, session, frames)
        mine = by_frame(session.propagate())
    assert all(r.object_ids == [3, 5] for r in mine.values())
    assert_same(mine, dict(ref.propagate()))


def test_prompts_added_mid_video(tracker, clip):
    path, frames = clip
    ref = reference(tracker, frames)
    with tracker.start(path) as session:
        # two prompted frames for one object before tracking, then a new object after a pass
        ref.add(0, 1, points=[(30, 32)], labels=[1])
        ref.run(0)
        ref.add(25, 1, box=(30, 15, 80, 50))
        ref.run(25)
        session.add_prompts(0, 1, [sk.Point(30, 32)])
        session.add_prompts(25, 1, [sk.Box(30, 15, 80, 50)])
        first_pass = by_frame(session.propagate())
        assert_same(first_pass, dict(ref.propagate()))

        ref.add(30, 2, points=[(70, 45)], labels=[1])
        added_ref = ref.run(30)
        added = session.add_prompts(30, 2, [sk.Point(70, 45)])
        assert added.object_ids == [1, 2]
        assert iou(added.masks.masks[1], added_ref[2]) >= MIN_IOU
        again = by_frame(session.propagate())  # from the newly prompted frame: earlier ones cannot change
        assert sorted(again) == list(range(30, FRAMES))
        assert_same(again, dict(ref.propagate(30)))


def test_mask_prompt(tracker, clip):
    path, frames = clip
    h, w = frames[0].shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    mask = ((xx - 29) / 17) ** 2 + ((yy - 32) / 18) ** 2 <= 1
    ref = reference(tracker, frames)
    ref.add(0, 1, mask=mask)
    ref.run(0)
    with tracker.start(path) as session:
        session.add_prompts(0, 1, [sk.MaskPrompt(mask)])
        mine = by_frame(session.propagate())
    assert_same(mine, dict(ref.propagate()))


def test_correction_matches_transformers_and_persists(tracker, clip):
    path, frames = clip
    ref = reference(tracker, frames)
    ref.add(0, 1, points=[(30, 32)], labels=[1])
    ref.run(0)
    list(ref.propagate())
    ref.add(12, 1, points=[(40, 30), (75, 60)], labels=[1, 0])
    corrected_ref = ref.run(12)
    with tracker.start(path) as session:
        session.add_prompts(0, 1, [sk.Point(30, 32)])
        before = by_frame(session.propagate())[12]
        corrected = session.add_prompts(12, 1, [sk.Point(40, 30), sk.Point(75, 60, positive=False)])
        again = by_frame(session.propagate())[12]
    assert iou(corrected.masks.masks[0], corrected_ref[1]) >= MIN_IOU
    assert iou(before.masks.masks[0], corrected.masks.masks[0]) < 0.95  # the click changed it
    # transformers would re-track frame 12 and lose the click; here it stays a prompt frame
    assert np.array_equal(again.masks.masks[0], corrected.masks.masks[0])


def test_streaming(tracker, clip):
    _, frames = clip
    ref = ReferenceTracker(tracker.raw.model, frame_size=frames[0].shape[:2])
    ref_masks, mine = {}, {}
    with tracker.start(stream=True) as session:
        for i, frame in enumerate(frames):
            if i == 0:
                ref.add(0, 1, points=[(30, 32)], labels=[1])
                assert len(session.push_frame(frame).masks) == 0  # no objects yet
                result = session.add_prompts(0, 1, [sk.Point(30, 32)])
            elif i == 12:
                ref.add(12, 2, box=(58, 30, 84, 55))
                session.push_frame(frame)
                result = session.add_prompts(12, 2, [sk.Box(58, 30, 84, 55)])
            else:
                result = session.push_frame(frame)
            ref_masks[i] = ref.push(frame)
            mine[i] = result
        assert session.num_frames == FRAMES
    assert mine[FRAMES - 1].object_ids == [1, 2]
    assert_same(mine, ref_masks)


def test_bf16_fast_path_agrees(checkpoint, tracker, clip, native_bf16):
    """precision=bf16 (bf16 early encoder stages and memory-attention MLP) against transformers in fp32."""
    path, frames = clip
    fast = Registry().load(MODEL, role="tracker", weights=checkpoint, precision="bf16")
    with fast.start(path) as session:
        ref = two_objects(tracker, session, frames)
        mine = by_frame(session.propagate(max_frames=20))
    theirs = dict(ref.propagate(max_frames=20))  # transformers counts the start frame apart
    assert sorted(mine) == list(range(20))
    assert_same(mine, {f: theirs[f] for f in mine})


def test_without_fast_paths(checkpoint, tracker, clip, without_fast_paths):
    """On a CPU without bf16 or oneDNN's fused linear: 'auto' is fp32, the public-op tracker agrees
    with transformers, and precision='bf16' is refused with the reason."""
    path, frames = clip
    plain = Registry().load(MODEL, role="tracker", weights=checkpoint)
    assert plain.options.precision == "fp32"
    with plain.start(path) as session:
        ref = two_objects(tracker, session, frames)
        mine = by_frame(session.propagate(max_frames=12))
    theirs = dict(ref.propagate(max_frames=12))
    assert_same(mine, {f: theirs[f] for f in mine})
    with pytest.raises(OptionsError, match="native bf16"):
        Registry().load(MODEL, role="tracker", weights=checkpoint, precision="bf16")
