"""Grounded-SAM 2 on images: composition through the registry, labels, scores, bad text."""

import numpy as np
import pytest
import segmentkit as sk
from segmentkit import ModelCard, ModelOptions, ModelSpec, hookimpl
from segmentkit.errors import PromptError
from segmentkit.registry import default_registry
from segmentkit.roles import Detections

H, W = 96, 128


def scene():
    img = np.full((H, W, 3), 240, np.uint8)
    yy, xx = np.mgrid[:H, :W]
    objects = {
        "a red square": (slice(20, 50), slice(15, 45)),
        "a blue disc": (yy - 60) ** 2 + (xx - 90) ** 2 <= 18**2,
    }
    truth = {}
    for (name, where), colour in zip(objects.items(), [(200, 30, 30), (30, 40, 200)]):
        mask = np.zeros((H, W), bool)
        mask[where] = True
        img[mask] = colour
        truth[name] = mask
    return img, truth


class SceneGrounder:
    """Returns the scene's true boxes for the phrases asked for."""

    def __init__(self, card, options):
        self.card, self.options = card, options

    def detect(self, image, text, **_):
        _, truth = scene()
        phrases = [p.strip() for p in text.split(".") if p.strip()]
        found = [(n, m) for n, m in truth.items() if n in phrases]
        boxes = [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] for _, m in found for ys, xs in [np.nonzero(m)]]
        return Detections(np.array(boxes, np.float32).reshape(-1, 4), [0.8, 0.6][: len(found)],
                          [n for n, _ in found], (H, W),
                          phrase_ids=np.array([phrases.index(n) for n, _ in found]), phrases=phrases)


class ScenePlugin:
    @hookimpl
    def segmentkit_grounders(self):
        card = ModelCard(id="scene-grounder", family="test", roles=("grounder",), tasks=("ground",), license="MIT")
        return [ModelSpec(card=card, role="grounder", loader=f"{__name__}:SceneGrounder", options=ModelOptions)]


@pytest.fixture
def with_scene_grounder():
    name = default_registry().register(ScenePlugin(), name="scene-grounder-plugin")
    yield
    default_registry().unregister(name)


def test_text_to_masks_composes_grounder_and_prompter(with_scene_grounder):
    model = sk.load("grounded-sam2", detector="scene-grounder", sam="classic")
    image, truth = scene()
    masks = model.raw.prompt(image, text="A blue disc. a red square.")
    assert masks.labels == ["a red square", "a blue disc"]
    assert masks.class_ids.tolist() == [1, 0]  # index of the phrase in the query
    np.testing.assert_allclose(masks.scores, [0.8, 0.6])
    np.testing.assert_allclose(masks.data["detector_score"], masks.scores)
    assert masks.data["mask_score"].shape == (2,)
    for mask, label in zip(masks.masks, masks.labels):
        inter, union = (mask & truth[label]).sum(), (mask | truth[label]).sum()
        assert inter / union >= 0.9, label


def test_no_match_is_an_empty_result(with_scene_grounder):
    model = sk.load("grounded-sam2", detector="scene-grounder", sam="classic")
    masks = model.raw.prompt(scene()[0], text="a green tree.")
    assert len(masks) == 0 and masks.image_size == (H, W)


def test_text_only_prompts(with_scene_grounder):
    model = sk.load("grounded-sam2", detector="scene-grounder", sam="classic")
    emb = model.embed(scene()[0])
    with pytest.raises(PromptError, match="does not accept point prompts"):  # the core checks the card's kinds
        model.predict(emb, [sk.Point(3, 3)])
    with pytest.raises(PromptError, match="blank"):
        model.predict(emb, [sk.Text("   ")])


def test_options_name_parts_and_reject_single_weights(tmp_path):
    with pytest.raises(sk.SegmentkitError, match="detector_weights and sam_weights"):
        sk.load("grounded-sam2", weights=tmp_path)
    model = sk.load("grounded-sam2", detector="no-such-grounder", sam="classic")
    with pytest.raises(sk.SegmentkitError, match="no-such-grounder"):
        model.raw.prompt(scene()[0], text="a cat.")


def test_tiny_grounding_dino_end_to_end(dino_dir):
    model = sk.load("grounded-sam2", detector="grounding-dino-tiny", detector_weights=dino_dir, sam="classic",
                    box_threshold=0.9)
    image, _ = scene()
    masks = model.raw.prompt(image, text="a red square. a blue disc.")
    assert len(masks) > 0 and masks.masks.shape[1:] == (H, W)
    assert set(masks.labels) <= {"a red square", "a blue disc"}
    assert (masks.scores > 0.9).all()
    with pytest.raises(PromptError, match="limit of 256"):
        model.raw.prompt(image, text=". ".join(["a red square"] * 100))


def test_with_tiny_sam2_prompter(with_scene_grounder, sam2_dir):
    """With the real SAM 2 prompter (random weights): one full-size mask per detected box."""
    model = sk.load("grounded-sam2", detector="scene-grounder", sam="sam2.1-hiera-tiny", sam_weights=sam2_dir)
    masks = model.raw.prompt(scene()[0], text="a red square. a blue disc.")
    assert masks.masks.shape == (2, H, W) and masks.labels == ["a red square", "a blue disc"]
    assert np.isfinite(masks.data["mask_score"]).all()
