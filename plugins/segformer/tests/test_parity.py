"""SegFormer label maps against transformers (processor + model + post-processing), same weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from segmentkit.runtime.pixels import resize_uint8, to_tensor
from segmentkit_segformer.processing import plan_windows, preprocess

# Enlarged to the 256x256 input: Pillow's resize (the reference here) and torch's agree exactly.
ENLARGED = [(180, 240), (97, 131), (256, 200)]


@pytest.mark.parametrize(("height", "width"), ENLARGED)
def test_label_map_matches_transformers(segmenter, reference, make_image, height, width):
    image = make_image(height, width, seed=height)
    pixels, expected = reference.segment(image)

    ours = preprocess(image, segmenter.raw.preprocessing).numpy()
    np.testing.assert_allclose(ours, pixels, atol=1e-5)  # resize + rescale + normalise, exact
    result = segmenter.segment(image)

    assert result.kind == "semantic" and result.label_map.shape == (height, width)
    assert len(np.unique(expected)) > 10  # random weights still give a non-trivial map
    assert np.mean(result.label_map == expected) >= 0.999
    assert result.id2label == dict(enumerate(segmenter.card.labels))
    assert set(result.labels_present) <= set(segmenter.card.labels)


def test_shrunk_image_close_to_pillow_reference(segmenter, reference, make_image):
    # Shrinking: Pillow and torch's kernels differ by one grey level in places, so the map is
    # compared loosely; a wrong normalisation or resize would drop agreement far lower.
    image = make_image(360, 500, seed=7)
    _, expected = reference.segment(image)
    assert np.mean(segmenter.segment(image).label_map == expected) >= 0.97


def test_sliding_window_matches_hand_averaged_transformers_logits(segmenter, reference, make_image):
    image = make_image(300, 900, seed=3)
    layout = plan_windows(image.shape[:2], segmenter.raw.preprocessing.size, segmenter.options.window_overlap)
    assert layout is not None and len(layout.offsets) >= 3
    # The reference: transformers' processor (no resize) + model on each window, logits averaged here.
    scaled = resize_uint8(to_tensor(image), layout.scaled)[0].permute(1, 2, 0).numpy()
    total = np.zeros((150, layout.scaled[0] // 4, layout.scaled[1] // 4), dtype=np.float64)
    count = np.zeros(total.shape[1:])
    for y, x in layout.offsets:
        crop = scaled[y:y + 256, x:x + 256]
        logits = reference.logits(reference.pixel_values(crop, do_resize=False))[0]
        total[:, y // 4:y // 4 + 64, x // 4:x // 4 + 64] += logits
        count[y // 4:y // 4 + 64, x // 4:x // 4 + 64] += 1
    averaged = (total / count).astype(np.float32)[None]
    expected = reference.label_map(averaged, image.shape[:2])

    result = segmenter.segment(image, sliding_window=True)

    assert result.label_map.shape == image.shape[:2]
    assert np.mean(result.label_map == expected) >= 0.999
    assert np.mean(segmenter.segment(image).label_map == expected) < 0.9  # a different computation


def test_folded_head_logits_match_transformers():
    from segmentkit_segformer.fused import FoldedSegformer
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(0)
    config = SegformerConfig(depths=[1, 1, 1, 1], hidden_sizes=[16, 32, 48, 64], num_attention_heads=[1, 1, 2, 2],
                             decoder_hidden_size=32, num_labels=19)
    model = SegformerForSemanticSegmentation(config).eval()
    with torch.no_grad():  # a batch norm that is not the identity
        bn = model.decode_head.batch_norm
        bn.running_mean.normal_(0, 0.5), bn.running_var.uniform_(0.5, 2)
        bn.weight.normal_(1, 0.3), bn.bias.normal_(0, 0.3)
    pixels = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        expected = model(pixel_values=pixels).logits
        ours = FoldedSegformer(model).eval()(pixels)
    assert ours.shape == expected.shape == (2, 19, 32, 32)
    assert float(expected.std()) > 100 * 1e-6
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-6)
