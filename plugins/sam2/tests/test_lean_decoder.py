"""The lean mask decoder against transformers' ``Sam2MaskDecoder`` on the same weights.

Raw low-res logits and predicted IoUs are compared (not just thresholded masks), for point,
box and mask prompts, single and multimask output, one prompt and batches, and for both
branches of SAM 2's single-mask stability fallback. The sub-pixel layout helpers are checked
against ``ConvTranspose2d`` itself.
"""

from __future__ import annotations

import pytest
import torch
from segmentkit_sam2.lean_decoder import LeanMaskDecoder, _subpixel_weight, _to_subpixel
from segmentkit_sam2.preprocess import upscale_masks


@pytest.fixture(params=["one chunk", "chunks of 2"])
def chunking(request, monkeypatch):
    """Run the decoder on all prompts at once, or on 2 prompts at a time."""
    if request.param == "chunks of 2":
        from segmentkit_sam2 import lean_decoder

        monkeypatch.setattr(lean_decoder, "_CHUNK_ELEMENTS", 2 * 4 * 16 * 16 * 32)  # tiny model: L=16x16, C=32
    return request.param


@pytest.fixture(scope="module")
def plain_model(sam2_weights_small):
    """The tiny model as saved (non-trivial masks: for comparisons of thresholded masks)."""
    from transformers import Sam2Model

    return Sam2Model.from_pretrained(sam2_weights_small).eval()


@pytest.fixture(scope="module")
def model(sam2_weights_small):
    """The tiny model with random biases in the decoder (transformers initialises them to zero,
    which would hide any bias the lean decoder drops or misplaces)."""
    from transformers import Sam2Model

    model = Sam2Model.from_pretrained(sam2_weights_small).eval()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, param in model.mask_decoder.named_parameters():
            # the transformer's and the upscaling's biases (the output heads keep theirs: their
            # scaling in the checkpoint keeps logits and IoUs in a useful range)
            if name.endswith("bias") and name.startswith(("transformer.", "upscale_")):
                param.copy_(torch.randn(param.shape, generator=g) * 0.2)
    return model


@pytest.fixture(scope="module")
def features(model):
    return image_features(model)


def image_features(model):
    """The embedding and high-res maps of a seeded random image, as the engine stores them."""
    torch.manual_seed(0)
    size = model.config.prompt_encoder_config.image_size
    with torch.inference_mode():
        feats = model.get_image_features(torch.randn(1, 3, size, size), return_dict=True).fpn_hidden_states
        sizes = [tuple(s) for s in model.config.vision_config.backbone_feature_sizes]
        maps = [m.permute(1, 2, 0).reshape(1, -1, *s) for m, s in zip(feats, sizes)]
        maps[-1] = maps[-1] + model.no_memory_embedding.reshape(1, -1, 1, 1)
    return maps[2], (maps[0], maps[1])


def reference(model, features, points, labels, boxes, masks, multimask):
    """transformers' prompt encoder + mask decoder, called as ``Sam2Model.forward`` does."""
    embedding, (hr0, hr1) = features
    with torch.inference_mode():
        sparse, dense = model.prompt_encoder(input_points=points, input_labels=labels, input_boxes=boxes,
                                             input_masks=masks)
        batch = sparse.shape[0]
        pe = model.get_image_wide_positional_embeddings().expand(batch, -1, -1, -1)
        low, iou, _, _ = model.mask_decoder(
            image_embeddings=embedding.expand(batch, -1, -1, -1), image_positional_embeddings=pe,
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask,
            high_resolution_features=[hr0.expand(batch, -1, -1, -1), hr1.expand(batch, -1, -1, -1)],
        )
    return sparse, dense, low.flatten(0, 1), iou.flatten(0, 1)


def lean_decode(model, features, sparse, dense, objects, multimask, with_mask):
    embedding, high_res = features
    with torch.inference_mode():
        lean = LeanMaskDecoder(model, model.get_image_wide_positional_embeddings())
    image = lean.prepare(embedding, high_res)
    per_object = dense.repeat_interleave(objects, dim=0) if with_mask else None
    return lean(image, sparse.flatten(0, 1), per_object, multimask=multimask)


def prompts(objects: int, size: int, seed: int, kind: str):
    g = torch.Generator().manual_seed(seed)
    points = torch.rand(1, objects, 3, 2, generator=g) * size
    labels = torch.randint(0, 2, (1, objects, 3), generator=g)
    x0y0 = torch.rand(1, objects, 2, generator=g) * size / 2
    boxes = torch.cat([x0y0, x0y0 + size / 3], dim=-1)
    if kind == "points":
        return points, labels, None
    if kind == "box":
        return None, None, boxes
    return points, labels, boxes


@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("kind,objects", [("points", 1), ("points", 5), ("box", 3), ("box+points", 4)])
def test_matches_transformers_decoder(model, features, kind, objects, multimask, chunking):
    size = model.config.prompt_encoder_config.image_size
    points, labels, boxes = prompts(objects, size, seed=objects, kind=kind)
    sparse, dense, ref_low, ref_iou = reference(model, features, points, labels, boxes, None, multimask)
    low, iou = lean_decode(model, features, sparse, dense, objects, multimask, with_mask=False)
    assert low.shape == ref_low.shape and iou.shape == ref_iou.shape
    assert ref_low.abs().max() > 1.0  # non-trivial logits
    torch.testing.assert_close(low, ref_low, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(iou, ref_iou, atol=1e-5, rtol=1e-5)


def test_mask_prompts_match_transformers(model, features, chunking):
    size = model.config.prompt_encoder_config.image_size
    low_size = model.prompt_encoder.mask_input_size
    g = torch.Generator().manual_seed(7)
    masks = torch.randn(3, 1, *low_size, generator=g) * 8
    points = torch.rand(3, 1, 2, 2, generator=g) * size
    labels = torch.ones(3, 1, 2, dtype=torch.int64)
    for multimask in (False, True):
        sparse, dense, ref_low, ref_iou = reference(model, features, points, labels, None, masks, multimask)
        low, iou = lean_decode(model, features, sparse, dense, 1, multimask, with_mask=True)
        torch.testing.assert_close(low, ref_low, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(iou, ref_iou, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("threshold", [0.0, 1.01])  # every mask stable / none: both fallback branches
def test_stability_fallback_both_ways(model, features, threshold, monkeypatch):
    monkeypatch.setattr(model.mask_decoder, "dynamic_multimask_stability_thresh", threshold)
    monkeypatch.setattr(model.mask_decoder.config, "dynamic_multimask_stability_thresh", threshold)
    size = model.config.prompt_encoder_config.image_size
    points, labels, _ = prompts(6, size, seed=11, kind="points")
    sparse, dense, ref_low, ref_iou = reference(model, features, points, labels, None, None, False)
    low, iou = lean_decode(model, features, sparse, dense, 6, False, with_mask=False)
    torch.testing.assert_close(low, ref_low, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(iou, ref_iou, atol=1e-5, rtol=1e-5)


def test_subpixel_layout_equals_transposed_convolutions():
    torch.manual_seed(0)
    conv1 = torch.nn.ConvTranspose2d(12, 6, kernel_size=2, stride=2)
    conv2 = torch.nn.ConvTranspose2d(6, 4, kernel_size=2, stride=2)
    x = torch.randn(1, 12, 5, 7)
    with torch.no_grad():
        expected = conv2(conv1(x))  # (1, 4, 20, 28)
        rows = x[0].flatten(1).t() @ _subpixel_weight(conv1) + conv1.bias.repeat(4)  # (35, 4 * 6)
        out = rows.reshape(-1, 6) @ _subpixel_weight(conv2) + conv2.bias.repeat(4)  # (140, 4 * 4)
    got = out.reshape(5, 7, 2, 2, 2, 2, 4).permute(6, 0, 2, 4, 1, 3, 5).reshape(4, 20, 28)
    torch.testing.assert_close(got, expected[0], atol=1e-5, rtol=1e-5)
    # the stored high-res features use the same layout: round trip through _to_subpixel
    feature = torch.arange(4 * 20 * 28, dtype=torch.float32).reshape(4, 20, 28)
    laid_out = _to_subpixel(feature, 2).reshape(5, 7, 2, 2, 2, 2, 4).permute(6, 0, 2, 4, 1, 3, 5).reshape(4, 20, 28)
    assert torch.equal(laid_out, feature)


@pytest.mark.parametrize("quantile", [None, 0.25, 0.5, 0.75, 1.0])  # None: threshold 0, every candidate
def test_candidates_above_equal_the_filtered_multimask_output(model, features, quantile, chunking):
    size = model.config.prompt_encoder_config.image_size
    embedding, high_res = features
    points, labels, _ = prompts(12, size, seed=5, kind="points")
    with torch.inference_mode():
        lean = LeanMaskDecoder(model, model.get_image_wide_positional_embeddings())
        sparse, _ = model.prompt_encoder(input_points=points, input_labels=labels, input_boxes=None, input_masks=None)
    image = lean.prepare(embedding, high_res)
    masks, iou = lean(image, sparse.flatten(0, 1), None, multimask=True)  # (12, 3, h, w), (12, 3)
    min_iou = 0.0 if quantile is None else float(torch.quantile(iou.max(dim=1).values, quantile))
    keep = iou > min_iou
    if quantile is not None and quantile < 1.0:
        assert 0 < int(keep.any(dim=1).sum()) < 12, "the threshold should drop some prompts and keep others"
    got_masks, got_iou, got_rows = lean.candidates_above(image, sparse.flatten(0, 1), min_iou)
    torch.testing.assert_close(got_masks, masks[keep], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_iou, iou[keep])
    assert torch.equal(got_rows, keep.nonzero()[:, 0])


def test_bf16_products_keep_the_masks(plain_model):
    """bf16 image-side products (fp32 accumulation): same final masks (IoU >= 0.99), close IoU scores."""
    model = plain_model
    features = image_features(model)
    size = model.config.prompt_encoder_config.image_size
    embedding, high_res = features
    points, labels, _ = prompts(8, size, seed=3, kind="points")
    sparse, _, ref_low, ref_iou = reference(model, features, points, labels, None, None, True)
    with torch.inference_mode():
        lean = LeanMaskDecoder(model, model.get_image_wide_positional_embeddings(), gemm_dtype=torch.bfloat16)
    low, iou = lean(lean.prepare(embedding, high_res), sparse.flatten(0, 1), None, multimask=True)
    assert low.dtype == torch.float32 and not torch.equal(low, ref_low)  # really a different path
    ours, ref = upscale_masks(low, (300, 400)) > 0, upscale_masks(ref_low, (300, 400)) > 0  # final masks
    ious = (ours & ref).flatten(2).sum(-1) / (ours | ref).flatten(2).sum(-1).clamp(min=1)
    assert float(ious.min()) >= 0.99
    torch.testing.assert_close(iou, ref_iou, atol=5e-3, rtol=0)


def test_reassociated_attention_equals_transformers_attention(model):
    """Both cross-attentions with the image side reassociated, against transformers'
    ``Sam2Attention`` on random tokens and image (every bias term matters here; the image-to-token
    one returns the image tokens plus the attention, as the block's residual add needs)."""
    with torch.inference_mode():
        lean = LeanMaskDecoder(model, model.get_image_wide_positional_embeddings())
    layer = model.mask_decoder.transformer.layers[1]
    g = torch.Generator().manual_seed(4)
    channels = lean.pos.shape[1]
    tokens = torch.randn(3, 7, channels, generator=g)
    token_keys = tokens + torch.randn(3, 7, channels, generator=g)
    image = torch.randn(3, lean.pos.shape[0], channels, generator=g)
    image_pos = image + lean.pos
    with torch.inference_mode():
        t2i, i2t = layer.cross_attn_token_to_image, layer.cross_attn_image_to_token
        ref = t2i(query=token_keys[:, None], key=image_pos[:, None], value=image[:, None])[0][:, 0]
        ours = lean._token_to_image(t2i, token_keys, image, image_pos)
        torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)
        ref = i2t(query=image_pos[:, None], key=token_keys[:, None], value=tokens[:, None])[0][:, 0]
        # the residual (the image tokens) is added by the product
        ours = lean._image_to_token(i2t, lean._image_query_scores(i2t, image_pos, token_keys), tokens, image)
        torch.testing.assert_close(ours, image + ref, atol=1e-4, rtol=1e-4)
