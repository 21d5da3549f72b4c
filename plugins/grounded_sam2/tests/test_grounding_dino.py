"""Grounding DINO: our pre/post-processing against transformers' processor on the same weights."""

import numpy as np
import pytest
import segmentkit as sk
import torch
from segmentkit.errors import PromptError, WeightsUnavailableError
from segmentkit.testing.conformance import GrounderContract

SIZES = {"shortest_edge": 160, "longest_edge": 256}


@pytest.fixture(scope="module")
def detector(dino_dir):
    return sk.load("grounding-dino-tiny", role="grounder", weights=dino_dir, **SIZES, box_threshold=0.0)


class TestGroundingDinoContract(GrounderContract):
    level = "geometry"  # random weights: boxes of the right form, not the right boxes

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, detector):
        return detector


@pytest.fixture(scope="module")
def photo():
    return np.random.default_rng(1).integers(0, 256, (150, 210, 3), dtype=np.uint8)


def reference(dino_dir, image, text, box_threshold, text_threshold):
    from transformers import AutoTokenizer, GroundingDinoForObjectDetection, GroundingDinoProcessor
    from transformers.models.grounding_dino.image_processing_pil_grounding_dino import GroundingDinoImageProcessorPil

    processor = GroundingDinoProcessor(GroundingDinoImageProcessorPil(size=dict(SIZES)),
                                       AutoTokenizer.from_pretrained(dino_dir))
    model = GroundingDinoForObjectDetection.from_pretrained(dino_dir).eval()
    inputs = processor(images=image, text=text, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    return processor.post_process_grounded_object_detection(
        outputs, inputs.input_ids, threshold=box_threshold, text_threshold=text_threshold,
        target_sizes=[image.shape[:2]],
    )[0]


@pytest.mark.parametrize("threshold", [0.5, 0.9])
def test_parity_with_transformers_post_processing(detector, dino_dir, photo, threshold):
    text = "a cat. a red ball."
    ref = reference(dino_dir, photo, text, threshold, 0.25)
    ours = detector.detect(photo, text, box_threshold=threshold, text_threshold=0.25)
    assert 0 < len(ours) < 30, "the threshold must keep some boxes and drop others"
    assert len(ours) == len(ref["scores"])
    np.testing.assert_allclose(ours.boxes, ref["boxes"].numpy(), atol=1e-3)
    np.testing.assert_allclose(ours.scores, ref["scores"].numpy(), atol=1e-5)
    assert ours.token_labels == list(ref["text_labels"])
    assert set(ours.labels) <= {"a cat", "a red ball"} and ours.phrases == ["a cat", "a red ball"]


def test_query_is_normalised(detector, photo):
    a = detector.detect(photo, "A Cat. a red   BALL", box_threshold=0.5)
    b = detector.detect(photo, "a cat. a red ball.", box_threshold=0.5)
    np.testing.assert_array_equal(a.boxes, b.boxes)


def test_no_match_is_empty_not_an_error(detector, photo):
    result = detector.detect(photo, "a dog.", box_threshold=1.0)
    assert len(result) == 0 and result.boxes.shape == (0, 4)


def test_bad_text(detector, photo):
    with pytest.raises(PromptError, match="no phrase"):
        detector.detect(photo, " . . ")
    with pytest.raises(PromptError, match="over grounding-dino-tiny's limit of 256"):
        detector.detect(photo, ". ".join(["a red ball"] * 100))


def test_corrupt_weights_dir_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(WeightsUnavailableError, match="cannot be loaded"):
        sk.load("grounding-dino-tiny", role="grounder", weights=tmp_path)
