"""Parity with transformers' ``Sam2Model`` on the same tiny checkpoint and the same inputs.

The reference is transformers' model forward with prompts mapped by
``Sam2Processor._normalize_coordinates`` and masks upscaled by
``Sam2ImageProcessor.post_process_masks`` (both from transformers' source, see
reference.py); pixel values come from our preprocessing, which test_preprocess.py checks
against hand-computed values (transformers' image processor needs torchvision).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from reference import normalize_coordinates, post_process
from segmentkit import Box, MaskPrompt, Point
from segmentkit_sam2.preprocess import preprocess_image

SIZE = 1024


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


@pytest.fixture(scope="module")
def ref_embeddings(reference_model, photo):
    with torch.inference_mode():
        return reference_model.get_image_embeddings(preprocess_image(photo, SIZE))


def reference(model, embeddings, hw, sets: list[list[Any]], multimask: bool, mask_logits=None):
    """transformers' answer for prompt sets of the same make-up: masks (P, C, H, W), IoU (P, C)."""
    points = [[[p.x, p.y] for p in s if isinstance(p, Point)] for s in sets]
    labels = [[int(p.positive) for p in s if isinstance(p, Point)] for s in sets]
    boxes = [[b.x0, b.y0, b.x1, b.y1] for s in sets for b in s if isinstance(b, Box)]
    kwargs: dict[str, Any] = {}
    if points[0]:
        kwargs["input_points"] = normalize_coordinates(torch.tensor([points]), hw, SIZE)
        kwargs["input_labels"] = torch.tensor([labels])
    if boxes:
        kwargs["input_boxes"] = normalize_coordinates(torch.tensor([boxes]), hw, SIZE, box=True).reshape(1, -1, 4)
    if mask_logits is not None:
        kwargs["input_masks"] = torch.as_tensor(mask_logits)[None, None]
    with torch.inference_mode():
        out = model(image_embeddings=embeddings, multimask_output=multimask, **kwargs)
    logits = post_process(out.pred_masks[0], hw)
    return (logits > 0).numpy(), out.iou_scores[0].numpy()


def assert_same(ours, ref_masks: np.ndarray, ref_iou: np.ndarray) -> None:
    assert ours.masks.shape == ref_masks.shape
    for k in range(len(ref_masks)):
        assert iou(ours.masks[k], ref_masks[k]) >= 0.99, f"candidate {k}: IoU {iou(ours.masks[k], ref_masks[k]):.4f}"
    np.testing.assert_allclose(ours.scores, ref_iou, rtol=0, atol=1e-3)
    np.testing.assert_allclose(ours.data["iou_pred"], ref_iou, rtol=0, atol=1e-3)


CASES = {
    "point": [Point(200, 150)],
    "points-and-negatives": [Point(200, 150), Point(60, 40, positive=False), Point(330, 260)],
    "box": [Box(100, 80, 300, 220)],
    "box-and-points": [Box(100, 80, 300, 220), Point(210, 160), Point(120, 100, positive=False)],
}


@pytest.mark.parametrize("multimask", [False, True], ids=["single", "multimask"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_prompts_match_transformers(prompter, reference_model, ref_embeddings, photo, case, multimask) -> None:
    emb = prompter.embed(photo)
    ours = prompter.predict(emb, CASES[case], multimask=multimask)
    ref_masks, ref_iou = reference(reference_model, ref_embeddings, emb.image_size, [CASES[case]], multimask)
    assert len(ours) == (3 if multimask else 1)
    assert 0.01 < ref_masks.mean() < 0.99, "the reference mask is trivial: the test would prove nothing"
    assert_same(ours, ref_masks[0], ref_iou[0])
    assert ours.data["low_res_logits"].shape == (len(ours), 256, 256)


def test_prompts_change_the_answer(prompter, photo) -> None:
    """Guards the parity tests: different prompts give clearly different masks here."""
    emb = prompter.embed(photo)
    masks = {k: prompter.predict(emb, v).masks[0] for k, v in CASES.items()}
    keys = sorted(masks)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert iou(masks[a], masks[b]) < 0.95, f"{a} and {b} give the same mask"


@pytest.mark.parametrize("with_points", [True, False], ids=["mask-and-point", "mask-alone"])
def test_mask_prompt_matches_transformers(prompter, reference_model, ref_embeddings, photo, with_points) -> None:
    emb = prompter.embed(photo)
    first = prompter.predict(emb, [Point(200, 150)], multimask=True)
    logits = first.data["low_res_logits"][int(np.argmax(first.scores))]  # fed back, as in SAM's demo
    prompts = ([Point(200, 150)] if with_points else []) + [MaskPrompt(logits)]
    ours = prompter.predict(emb, prompts)
    ref_masks, ref_iou = reference(reference_model, ref_embeddings, emb.image_size,
                                   [[p for p in prompts if isinstance(p, Point)]], False, mask_logits=logits)
    assert_same(ours, ref_masks[0], ref_iou[0])
    without = prompter.predict(emb, [Point(200, 150)] if with_points else [Point(1, 1, positive=False)])
    changed = iou(without.masks[0], ours.masks[0]) < 0.99 or abs(float(without.scores[0] - ours.scores[0])) > 1e-3
    assert changed, "the mask prompt had no effect: the test would prove nothing"


@pytest.mark.parametrize("multimask", [False, True], ids=["single", "multimask"])
def test_batched_prompts_match_transformers(prompter, reference_model, ref_embeddings, photo, multimask) -> None:
    emb = prompter.embed(photo)
    sets = [[Point(x, y), Point(399 - x, 299 - y, positive=False)]
            for x, y in [(50, 60), (200, 150), (350, 90), (120, 250)]]
    ours = prompter.predict_batch(emb, sets, multimask=multimask)
    ref_masks, ref_iou = reference(reference_model, ref_embeddings, emb.image_size, sets, multimask)
    assert len(ours) == len(sets)
    for k, masks in enumerate(ours):
        assert_same(masks, ref_masks[k], ref_iou[k])


def test_batched_boxes_match_transformers(prompter, reference_model, ref_embeddings, photo) -> None:
    emb = prompter.embed(photo)
    sets = [[Box(10, 10, 150, 120)], [Box(180, 100, 390, 290)], [Box(0, 0, 400, 300)]]
    ours = prompter.predict_batch(emb, sets, multimask=True)
    ref_masks, ref_iou = reference(reference_model, ref_embeddings, emb.image_size, sets, True)
    for k, masks in enumerate(ours):
        assert_same(masks, ref_masks[k], ref_iou[k])


def test_mixed_batch_equals_single_predictions(prompter, photo) -> None:
    emb = prompter.embed(photo)
    first = prompter.predict(emb, [Point(200, 150)])
    sets = [
        [Point(200, 150)], [Box(100, 80, 300, 220)], [Point(50, 50), Point(300, 200, positive=False)],
        [Point(60, 70)], [MaskPrompt(first.data["low_res_logits"][0]), Point(200, 150)],
        [MaskPrompt(first.masks[0])], [Box(10, 10, 150, 120), Point(60, 60)],
    ]
    batch = prompter.predict_batch(emb, sets, multimask=True)
    for prompts, got in zip(sets, batch):
        single = prompter.predict(emb, prompts, multimask=True)
        for k in range(3):
            assert iou(single.masks[k], got.masks[k]) >= 0.99
        np.testing.assert_allclose(got.scores, single.scores, atol=1e-4)
