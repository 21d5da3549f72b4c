"""What SAM 3 does with each kind of prompt set, and the errors it gives for the ones it cannot take."""

import numpy as np
import pytest
import segmentkit as sk
from segmentkit.errors import PromptError, SessionError
from segmentkit.types import MaskPrompt

IMAGE = np.random.default_rng(3).integers(0, 255, (48, 64, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def embedding(prompter):
    return prompter.embed(IMAGE)


def test_text_gives_every_instance_labelled_with_the_phrase(prompter, embedding):
    found = prompter.predict(embedding, [sk.Text("a red square")])
    assert len(found) > 1, "the tiny model finds several instances: the test needs more than one"
    assert found.labels == ["a red square"] * len(found)
    assert np.all(np.diff(found.scores) <= 0), "instances come best first"
    assert found.data["detector_box"].shape == (len(found), 4)


def test_thresholds_per_call(prompter, embedding):
    everything = prompter.predict(embedding, [sk.Text("a red square")], threshold=0.0)
    strict = prompter.predict(embedding, [sk.Text("a red square")], threshold=0.999)
    assert len(everything) == 6  # every query of the tiny detector
    assert len(strict) < len(everything)
    assert np.all(strict.scores > 0.999)


def test_concept_prompt_errors(prompter, embedding):
    with pytest.raises(PromptError, match="not points"):
        prompter.predict(embedding, [sk.Text("dog"), sk.Point(3, 3)])
    with pytest.raises(PromptError, match="one text prompt"):
        prompter.predict(embedding, [sk.Text("dog"), sk.Text("cat")])
    with pytest.raises(PromptError, match="at most one box"):
        prompter.predict(embedding, [sk.Box(1, 1, 9, 9), sk.Box(3, 3, 20, 20)])
    with pytest.raises(PromptError, match="not points"):
        prompter.predict(embedding, [sk.Point(3, 3)], exemplars=True)


def test_text_session_follows_a_concept_and_refuses_clicks(tracker):
    frames = [np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8) for i in range(2)]
    with tracker.start(frames) as session:
        first = session.add_prompts(0, 0, [sk.Text("a red square")])
        assert len(first.masks) > 0 and first.masks.labels == ["a red square"] * len(first.masks)
        assert set(first.masks.object_ids.tolist()) <= set(session.object_ids)
        with pytest.raises(SessionError, match="text concept"):
            session.add_prompts(0, 1, [sk.Box(2, 2, 20, 20)])
        list(session.propagate())
        with pytest.raises(SessionError, match="before propagating"):
            session.add_prompts(0, 0, [sk.Text("a dog")])
        session.reset()
        assert len(session.add_prompts(0, 4, [sk.Box(2, 2, 20, 20)]).masks) == 1
        with pytest.raises(PromptError, match="points, boxes or a text"):
            session.add_prompts(0, 5, [MaskPrompt(np.ones((48, 64), dtype=bool))])


def test_text_can_come_before_the_first_live_frame(tracker):
    frames = [np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8) for i in range(2)]
    with tracker.start(stream=True) as session:
        assert len(session.add_prompts(0, 0, [sk.Text("a red square")]).masks) == 0
        pushed = [session.push_frame(f) for f in frames]
    assert [p.frame_index for p in pushed] == [0, 1]
    assert len(pushed[0].masks) > 0, "the query finds instances on the first pushed frame"


def test_text_query_propagates_both_ways_without_rerunning_its_frame(tracker):
    frames = [np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8) for i in range(3)]
    with tracker.start(frames) as session:
        session.add_prompts(1, 0, [sk.Text("a red square")])
        seen = list(session.propagate(direction="both"))
        assert [fm.frame_index for fm in seen] == [1, 2, 0]
        assert sorted(session.raw._outputs) == [0, 1, 2], "each frame ran through the model once"


def test_a_text_query_is_one_text_prompt_on_its_own(tracker):
    frames = [np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8) for i in range(2)]
    with tracker.start(frames) as session:
        for prompts in ([sk.Text("a dog"), sk.Point(3, 3)], [sk.Text("a dog"), sk.Text("a cat")]):
            with pytest.raises(PromptError, match="one text prompt on its own"):
                session.add_prompts(0, 0, prompts)


def test_the_query_is_logged_and_a_session_refuses_to_save(tracker, tmp_path):
    frames = [np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8) for i in range(2)]
    with tracker.start(frames) as session:
        session.add_prompts(0, 0, [sk.Text("a red square")])
        assert session.prompts == [(0, 0, [sk.Text("a red square")])]
        with pytest.raises(SessionError, match="cannot save"):  # not the inference state called by mistake
            session.save(tmp_path / "s.npz")
