"""The prompter's behaviour: embedding cache, bad input, sizes, precision, the conformance suite."""

from __future__ import annotations

import numpy as np
import pytest
import segmentkit
from segmentkit import Box, Embedding, MaskPrompt, Point, Text
from segmentkit.errors import ImageError, PromptError
from segmentkit.testing.conformance import PrompterContract

MODEL_ID = "sam2.1-hiera-tiny"


@pytest.fixture(scope="module")
def sam2_weights(sam2_weights_small):
    """Behaviour tests run on the small (input size 256) checkpoint: same code, faster."""
    return sam2_weights_small


@pytest.fixture(scope="module")
def prompter(small_prompter):
    return small_prompter


class TestSam2Prompter(PrompterContract):
    level = "geometry"  # random weights: the answers depend on the prompts, but are not right

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, prompter):
        return prompter


def _count_encodes(prompter, monkeypatch) -> list[int]:
    calls = []
    original = prompter.raw.engine.encode
    monkeypatch.setattr(prompter.raw.engine, "encode", lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


def test_embedding_is_cached_by_content(prompter, photo, monkeypatch) -> None:
    prompter.raw._cache.clear()
    calls = _count_encodes(prompter, monkeypatch)
    a = prompter.embed(photo)
    b = prompter.embed(photo.copy())  # same pixels, another array
    c = prompter.embed(photo[::-1].copy())
    assert a is b and a.key == b.key and c.key != a.key
    assert len(calls) == 2


def test_cache_is_bounded_in_bytes(sam2_weights, photo, monkeypatch) -> None:
    one = segmentkit.Registry().load(MODEL_ID, weights=sam2_weights)
    size = one.embed(photo).data.nbytes
    small = segmentkit.Registry().load(MODEL_ID, weights=sam2_weights, cache_bytes=int(size * 1.5))
    calls = _count_encodes(small, monkeypatch)
    small.embed(photo)
    small.embed(photo[::-1].copy())  # evicts the first
    assert len(small.raw._cache) == 1 and small.raw._cache.nbytes <= int(size * 1.5)
    small.embed(photo)
    assert len(calls) == 3
    off = segmentkit.Registry().load(MODEL_ID, weights=sam2_weights, cache_bytes=0)
    off.embed(photo)
    assert len(off.raw._cache) == 0


def test_single_mask_is_the_decoders_choice_among_candidates(prompter, photo) -> None:
    emb = prompter.embed(photo)
    single = prompter.predict(emb, [Point(200, 150)])
    multi = prompter.predict(emb, [Point(200, 150)], multimask=True)
    assert len(single) == 1 and len(multi) == 3
    assert set(multi.data) >= {"iou_pred", "stability", "low_res_logits"}
    assert np.all((multi.data["stability"] >= 0) & (multi.data["stability"] <= 1))
    assert np.all((multi.scores > 0) & (multi.scores < 1))


@pytest.mark.parametrize("prompts, match", [
    ([Point(400.5, 10)], "outside"),
    ([Point(-1, 10)], "outside"),
    ([Box(0, 0, 401, 300)], "outside"),
    ([], "no prompts"),
    ([Text("a dog")], "does not accept text"),
    ([MaskPrompt(np.zeros((64, 64), np.float32)), MaskPrompt(np.zeros((64, 64), np.float32))], "one mask"),
    ([Box(0, 0, 10, 10), Box(5, 5, 20, 20)], "at most one box"),
    ([MaskPrompt(np.zeros((10, 10), bool))], "shape"),
])
def test_bad_prompts(prompter, photo, prompts, match) -> None:
    emb = prompter.embed(photo)
    with pytest.raises(PromptError, match=match):
        prompter.predict(emb, prompts)


def test_bad_batches(prompter, photo, sam2_weights) -> None:
    emb = prompter.embed(photo)
    assert prompter.predict_batch(emb, []) == []
    with pytest.raises(PromptError, match="outside"):  # one bad set fails the call, naming the problem
        prompter.predict_batch(emb, [[Point(10, 10)], [Point(10, 1000)]])
    other = segmentkit.Registry().load(MODEL_ID, weights=sam2_weights)
    with pytest.raises(PromptError, match="another model instance"):
        other.predict(emb, [Point(10, 10)])
    with pytest.raises(PromptError, match="not a SAM 2 embedding"):
        prompter.predict(Embedding(MODEL_ID, emb.image_size, emb.key, data=None), [Point(10, 10)])


def test_prompts_are_checked_against_the_embedded_image(prompter) -> None:
    emb = prompter.embed(np.zeros((20, 30, 3), np.uint8))
    prompter.predict(emb, [Point(30, 20)])  # the far corner is inside
    with pytest.raises(PromptError):
        prompter.predict(emb, [Point(31, 20)])


@pytest.mark.parametrize("size", [(1, 1), (10000, 10), (10, 10000)])
def test_extreme_image_sizes(prompter, size) -> None:
    h, w = size
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    emb = prompter.embed(image)
    masks = prompter.predict(emb, [Point(w / 2, h / 2), Box(0, 0, w, h)], multimask=True)
    assert masks.masks.shape == (3, h, w)
    assert masks.data["low_res_logits"].shape == (3, *prompter.raw.engine.mask_input_size)


def test_bad_images(prompter) -> None:
    with pytest.raises(ImageError):
        prompter.embed(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(ImageError):
        prompter.embed(b"not an image")


def test_bf16_precision_runs_and_stays_close(sam2_weights, prompter, photo, native_bf16) -> None:
    bf16 = segmentkit.Registry().load(MODEL_ID, weights=sam2_weights, precision="bf16")
    ours = bf16.predict(bf16.embed(photo), [Point(200, 150)], multimask=True)
    ref = prompter.predict(prompter.embed(photo), [Point(200, 150)], multimask=True)
    assert ours.masks.shape == ref.masks.shape and ours.data["low_res_logits"].dtype == np.float32
    agree = (ours.masks == ref.masks).mean()
    assert agree > 0.8, f"bf16 masks agree with fp32 on only {agree:.1%} of pixels"

