"""GrabCut prompter: masks checked against the hand-drawn truth of synthetic scenes."""

import subprocess
import sys

import cv2
import numpy as np
import pytest
import segmentkit as sk
from segmentkit.errors import OptionsError, PromptError
from segmentkit.testing import iou, synthetic_scene

# Off-centre objects in wide images: a point with x and y swapped lands on background.
SCENES = {
    "ellipse": dict(size=(96, 160), center=(100, 40)),
    "rectangle": dict(size=(96, 160), shape="rectangle", center=(60, 52)),
    "look-alike": dict(size=(96, 160), center=(100, 52), distractor=True),
    "plain": dict(size=(80, 120), background="plain", center=(70, 34), noise=12),
}


@pytest.fixture(params=sorted(SCENES))
def scene(request):
    return synthetic_scene(**SCENES[request.param], seed=3)


def test_box(classic, scene):
    masks = classic.predict(classic.embed(scene.image), [sk.Box(*scene.box)])
    assert masks.masks.shape == (1, *scene.size)
    assert iou(masks.masks[0], scene.mask) >= 0.9


def test_one_positive_point(classic, scene):
    masks = classic.predict(classic.embed(scene.image), [sk.Point(*scene.inside)])
    assert iou(masks.masks[0], scene.mask) >= 0.9


@pytest.mark.parametrize("prompt", ["point", "mask"])
def test_look_alike_elsewhere_is_left_out(classic, prompt):
    scene = synthetic_scene(**SCENES["look-alike"], seed=3)
    prompts = [sk.Point(*scene.inside)] if prompt == "point" else [sk.MaskPrompt(scene.mask)]
    mask = classic.predict(classic.embed(scene.image), prompts).masks[0]
    assert (mask & ~scene.mask).sum() < 0.01 * scene.mask.sum()


@pytest.mark.parametrize("seed", [0, 1])
def test_negative_point_splits_a_touching_look_alike(classic, seed):
    # A block of a close colour touches the object: the negative point on it tells them apart.
    scene = synthetic_scene((96, 160), center=(70, 45), seed=seed)
    _, y0, x1, y1 = (int(v) for v in scene.box)
    block = np.zeros(scene.size, dtype=bool)
    block[y0 + 10:y1 - 10, x1 - 6:x1 + 30] = True
    block &= ~scene.mask
    image = scene.image.copy()
    noise = np.random.default_rng(seed).normal(0, 6, (int(block.sum()), 3))
    image[block] = np.clip(np.array([215, 60, 45]) + noise, 0, 255).astype(np.uint8)
    negative = (x1 + 20.5, (y0 + y1) / 2)
    emb = classic.embed(image)
    masks = classic.predict(emb, [sk.Point(*scene.inside), sk.Point(*negative, positive=False)])
    assert iou(masks.masks[0], scene.mask) >= 0.9
    assert not masks.masks[0][int(negative[1]), int(negative[0])]


def test_positive_and_negative_points(classic, scene):
    prompts = [sk.Point(*scene.inside), sk.Point(*scene.outside, positive=False)]
    masks = classic.predict(classic.embed(scene.image), prompts)
    assert iou(masks.masks[0], scene.mask) >= 0.9


def test_rough_mask_prompt_is_refined(classic, scene):
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (13, 13))
    rough = cv2.erode(scene.mask.astype(np.uint8), kernel).astype(bool)
    assert iou(rough, scene.mask) < 0.8  # the prompt alone is far off
    masks = classic.predict(classic.embed(scene.image), [sk.MaskPrompt(rough)])
    assert iou(masks.masks[0], scene.mask) >= 0.9


def test_low_res_logits_mask_prompt(classic):
    scene = synthetic_scene(**SCENES["look-alike"], seed=3)
    h, w = scene.size
    coarse = cv2.resize(scene.mask.astype(np.float32), (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    logits = np.where(coarse > 0.5, 6.0, -6.0).astype(np.float32)
    masks = classic.predict(classic.embed(scene.image), [sk.MaskPrompt(logits)])
    assert iou(masks.masks[0], scene.mask) >= 0.9


def test_large_image_runs_downscaled_and_returns_full_size(classic):
    scene = synthetic_scene((900, 1500), center=(950, 400), seed=2)
    emb = classic.embed(scene.image)
    assert max(emb.data.whole.shape) == classic.options.max_side
    for prompts in ([sk.Point(*scene.inside)], [sk.Box(*scene.box)]):
        masks = classic.predict(emb, prompts)
        assert masks.masks.shape == (1, 900, 1500)
        assert iou(masks.masks[0], scene.mask) >= 0.9


def test_multimask_candidates_and_scores(classic, scene):
    emb = classic.embed(scene.image)
    for prompts in ([sk.Point(*scene.inside)], [sk.Box(*scene.box)]):
        multi = classic.predict(emb, prompts, multimask=True)
        single = classic.predict(emb, prompts)
        assert len(multi) == 3
        assert np.all((multi.scores >= 0) & (multi.scores <= 1))
        best = int(np.argmax(multi.scores))
        assert np.array_equal(single.masks[0], multi.masks[best])
        assert single.scores[0] == multi.scores[best]


def test_score_ranks_right_masks_above_wrong_ones(classic):
    # The contrast score must prefer the true object over a shifted copy of it.
    from segmentkit_classic.scoring import contrast_score, to_lab

    scene = synthetic_scene((96, 160), center=(100, 40), seed=3)
    lab = to_lab(scene.image)
    shifted = np.roll(scene.mask, 15, axis=1)
    right, wrong = contrast_score(lab, scene.mask), contrast_score(lab, shifted)
    assert 0.5 < right <= 1 and 0 <= wrong < right
    assert contrast_score(lab, np.zeros_like(scene.mask)) == 0.0
    assert contrast_score(lab, np.ones_like(scene.mask)) == 0.0


def test_batch_is_one_result_per_prompt_set(classic, scene):
    emb = classic.embed(scene.image)
    sets = [[sk.Point(*scene.inside)], [sk.Box(*scene.box)], [sk.Point(*scene.outside)]]
    batch = classic.predict_batch(emb, sets, multimask=True)
    assert [len(m) for m in batch] == [3, 3, 3]
    assert iou(batch[0].masks[0], classic.predict(emb, sets[0], multimask=True).masks[0]) == 1.0
    assert iou(batch[2].masks[0], scene.mask) < 0.1  # clicking the background is not the object


def test_box_over_whole_image_still_finds_the_object(classic):
    scene = synthetic_scene((64, 96), seed=4)
    h, w = scene.size
    masks = classic.predict(classic.embed(scene.image), [sk.Box(0, 0, w, h)])
    assert iou(masks.masks[0], scene.mask) >= 0.8


def test_text_prompt_is_refused(classic, scene):
    with pytest.raises(PromptError, match="point, box, mask"):
        classic.predict(classic.embed(scene.image), [sk.Text("a red ellipse")])


def test_two_mask_prompts_are_refused(classic, scene):
    with pytest.raises(PromptError, match="one mask prompt"):
        classic.predict(classic.embed(scene.image), [sk.MaskPrompt(scene.mask), sk.MaskPrompt(scene.mask)])


def test_only_negative_points_give_an_empty_mask(classic, scene):
    masks = classic.predict(classic.embed(scene.image), [sk.Point(*scene.outside, positive=False)])
    assert not masks.masks.any() and masks.scores[0] == 0.0


def test_options():
    model = sk.load("classic", max_side=64, iterations=2, seed=7)
    assert model.options.max_side == 64 and model.options.iterations == 2
    with pytest.raises(OptionsError, match="no_such_option"):
        sk.load("classic", no_such_option=1)
    with pytest.raises(OptionsError, match="CPU only"):
        sk.load("classic", device="cuda")
    with pytest.raises(OptionsError):
        sk.load("classic", runtime="torch")


def test_classic_is_the_default_model():
    assert sk.load().card.id == "classic"
    assert sk.load(role="segmenter").card.id == "classic"
    info = next(m for m in sk.models() if m.card.id == "classic")
    assert info.roles == ("prompter", "segmenter", "tracker")
    assert sk.load(role="tracker").card.id == "classic"
    assert info.card.weights is None and info.card.license == "Apache-2.0"
    assert info.distribution == "segmentkit-classic"


def test_import_and_discovery_do_not_load_opencv_or_skimage():
    code = (
        "import sys, segmentkit_classic, segmentkit\n"
        "segmentkit.models()\n"
        "print(sorted(m for m in ('cv2', 'skimage', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
