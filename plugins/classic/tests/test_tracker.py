"""The weightless ``classic`` tracker: contracts, and masks against a moving object's true masks."""

from __future__ import annotations

import numpy as np
import pytest
import segmentkit
from segmentkit.testing.conformance import TrackerContract
from segmentkit.testing.scenes import Scene, synthetic_scene

MIN_IOU = 0.8


class TestClassicTracker(TrackerContract):
    level = "quality"
    @pytest.fixture(scope="class")
    @classmethod
    def model(cls):
        return segmentkit.load("classic", role="tracker")


@pytest.fixture(scope="module")
def tracker():
    return segmentkit.load("classic", role="tracker")


@pytest.fixture(scope="module")
def moving() -> list[Scene]:
    """An ellipse crossing a striped background, 12 px right and 2 px down per frame, with a
    look-alike blob of its colour in a corner (not part of the object)."""
    return [synthetic_scene((96, 192), center=(56 + 12 * i, 44 + 2 * i), seed=i, distractor=True)
            for i in range(8)]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_follows_a_moving_object_forwards_and_backwards(tracker, moving):
    # Carrying the previous mask over without the optical flow drops below 0.8 by frame 6.
    with tracker.start([s.image for s in moving]) as session:
        session.add_prompts(0, 1, [segmentkit.Box(*moving[0].box)])
        forwards = list(session.propagate())
        session.add_prompts(7, 2, [segmentkit.Box(*moving[7].box)])
        backwards = list(session.propagate(7, direction="backward"))
    assert [fm.frame_index for fm in forwards] == list(range(8))
    assert [fm.frame_index for fm in backwards] == list(range(7, -1, -1))
    for fm in forwards:
        assert fm.object_ids == [1]
        assert iou(fm.masks.masks[0], moving[fm.frame_index].mask) >= MIN_IOU, fm.frame_index
    for fm in backwards:  # object 1 walks back from where the forward pass left it
        assert fm.object_ids == [1, 2]
        for mask in fm.masks.masks:
            assert iou(mask, moving[fm.frame_index].mask) >= MIN_IOU, fm.frame_index


def test_an_object_is_absent_before_its_first_key_frame(tracker, moving):
    with tracker.start([s.image for s in moving]) as session:
        session.add_prompts(0, 1, [segmentkit.Box(*moving[0].box)])
        session.add_prompts(3, 2, [segmentkit.Box(*moving[3].box)])
        frames = list(session.propagate())
    assert [fm.object_ids for fm in frames] == [[1, 2]] * 8
    assert [bool(fm.masks.masks[1].any()) for fm in frames] == [False] * 3 + [True] * 5
    assert iou(frames[7].masks.masks[1], moving[7].mask) >= MIN_IOU


def test_point_prompt_and_live_stream(tracker, moving):
    with tracker.start(stream=True) as session:
        assert session.push_frame(moving[0].image).object_ids == []
        first = session.add_prompts(0, 4, [segmentkit.Point(*moving[0].inside)])
        assert iou(first.masks.masks[0], moving[0].mask) >= MIN_IOU
        for scene in moving[1:]:
            fm = session.push_frame(scene.image)
            assert iou(fm.masks.masks[0], scene.mask) >= MIN_IOU, fm.frame_index


def test_a_prompt_later_in_the_video_restarts_the_object(tracker, moving):
    with tracker.start([s.image for s in moving]) as session:
        session.add_prompts(0, 1, [segmentkit.Box(*moving[0].box)])
        session.add_prompts(5, 1, [segmentkit.Box(0, 0, 40, 30)])  # a correction: another region
        masks = {fm.frame_index: fm.masks.masks[0] for fm in session.propagate()}
    assert iou(masks[4], moving[4].mask) >= MIN_IOU
    assert iou(masks[5], moving[5].mask) < 0.2 and masks[5][:30, :40].mean() > 0.2


def test_saved_session_continues_like_an_uninterrupted_one(tracker, moving, tmp_path):
    images = [s.image for s in moving]
    with tracker.start(images) as session:
        session.add_prompts(0, 1, [segmentkit.Box(*moving[0].box)])
        session.add_prompts(2, 5, [segmentkit.Point(*moving[2].inside)])
        whole = [fm.masks.masks for fm in session.propagate()]
    with tracker.start(images) as session:
        session.add_prompts(0, 1, [segmentkit.Box(*moving[0].box)])
        session.add_prompts(2, 5, [segmentkit.Point(*moving[2].inside)])
        first = [fm.masks.masks for fm in session.propagate(max_frames=4)]
        path = session.save(tmp_path / "walk.session")
    with tracker.restore(path, images) as restored:
        rest = [fm.masks.masks for fm in restored.propagate(4)]
        again = [fm.masks.masks for fm in restored.propagate(0)]  # from the key frames' saved masks
    assert len(first) + len(rest) == len(again) == len(whole)
    for got, again_, want in zip(first + rest, again, whole):
        assert np.array_equal(got, want) and np.array_equal(again_, want)
