"""The plugins' runtime kit (``segmentkit.runtime``): upsample + argmax, pixels, the ONNX export cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from segmentkit.runtime import onnx
from segmentkit.runtime.pixels import IMAGENET, Normalization, resize_uint8, to_tensor
from segmentkit.runtime.upsample import upsample_argmax


def _assert_argmax_of_interpolation(label_maps: list[np.ndarray], logits: torch.Tensor,
                                    size: tuple[int, int]) -> None:
    """Each map is ``post_process_semantic_segmentation``'s argmax of the bilinear upsampling: equal
    nearly everywhere, and where not, a class whose upsampled value is within float rounding of the maximum."""
    upsampled = torch.nn.functional.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)[0]
    expected, best = upsampled.argmax(0), upsampled.amax(0)
    tolerance = 1e-6 * (1 + float(logits.abs().max()))
    for label_map in label_maps:
        assert label_map.dtype == np.int32 and label_map.shape == size
        ours = torch.from_numpy(label_map)
        assert bool((upsampled.gather(0, ours.long()[None])[0] >= best - tolerance).all())
        assert float((ours == expected).float().mean()) >= 0.9999


@pytest.mark.parametrize("size", [(301, 411), (97, 131), (20, 700), (1, 1)])
def test_upsample_argmax_is_argmax_of_interpolation(size):
    torch.manual_seed(0)
    smooth = torch.nn.functional.avg_pool2d(torch.randn(1, 150, 38, 54), 3, stride=1)[0] * 4
    flat = torch.randn(150, 36, 52) * 0.02  # random-weight-like: many classes can win in each cell
    ties = torch.randint(0, 3, (19, 36, 52)).float()  # exact ties everywhere
    for logits in (smooth, flat, ties, torch.zeros(7, 36, 52)):
        chunked = [upsample_argmax(logits.numpy(), size, chunk_elements=c) for c in (1 << 20, 2000)]
        _assert_argmax_of_interpolation(chunked, logits, size)
    assert not upsample_argmax(np.zeros((7, 36, 52)), size).any()  # a tie goes to the lowest id


def test_upsample_argmax_reads_channels_last_logits():
    torch.manual_seed(1)
    logits = torch.randn(150, 40, 30) * 0.02
    strided = logits.permute(1, 2, 0).contiguous().permute(2, 0, 1)  # what the folded model returns
    _assert_argmax_of_interpolation([upsample_argmax(strided.numpy(), (333, 250))], logits, (333, 250))



def test_normalization_matches_the_processors_fused_formula():
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    pixels = to_tensor(image)
    assert pixels.shape == (1, 3, 5, 7) and pixels.dtype == torch.uint8
    mean = np.array(IMAGENET.image_mean, dtype=np.float32) * np.float32(255)
    std = np.array(IMAGENET.image_std, dtype=np.float32) * np.float32(255)
    expected = (image.astype(np.float32) - mean) / std
    np.testing.assert_allclose(IMAGENET(pixels)[0].permute(1, 2, 0).numpy(), expected, rtol=0, atol=1e-6)
    raw = {"do_normalize": False, "rescale_factor": 0.5}
    assert torch.equal(Normalization.from_config(raw)(pixels), pixels.float() * 0.5)
    assert resize_uint8(pixels, (5, 7)) is pixels
    assert resize_uint8(pixels, (10, 14)).shape == (1, 3, 10, 14)


def _writer(calls: list[str], graphs=("a", "b")):
    def export(staging):
        calls.append(staging.name)
        for name in graphs:
            (staging / f"{name}.onnx").write_bytes(name.encode() * 100)
    return export


def test_export_cache_reuses_a_verified_folder_and_rebuilds_a_corrupt_one(tmp_path):
    folder = onnx.export_dir("m", [1, "sha-x", [64, 64], 17], tmp_path)
    assert folder.parent == tmp_path / "m"
    assert onnx.export_dir("m", [1, "sha-x", [64, 64], 18], tmp_path) != folder  # every key field counts
    calls: list[str] = []
    paths = onnx.ensure_exported(folder, ["a", "b"], _writer(calls))
    assert set(paths) == {"a", "b"} and all(p.is_file() for p in paths.values())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["files"]) == {"a.onnx", "b.onnx"}
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no staging folder left
    onnx.ensure_exported(folder, ["a", "b"], _writer(calls))
    assert len(calls) == 1
    data = bytearray(paths["b"].read_bytes())
    data[10] ^= 0xFF
    paths["b"].write_bytes(bytes(data))
    assert not onnx.verify(folder, ["a", "b"])
    onnx.ensure_exported(folder, ["a", "b"], _writer(calls))
    assert len(calls) == 2 and onnx.verify(folder, ["a", "b"])
    assert not onnx.verify(folder, ["a"])  # a manifest for other graphs is not this export


def test_session_options_are_explicit():
    pytest.importorskip("onnxruntime")
    options = onnx.session_options(1)
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert onnx.session_options().intra_op_num_threads == onnx.physical_cores() >= 1
    assert onnx.providers("cpu") == ["CPUExecutionProvider"]


@pytest.mark.parametrize("size", [(301, 411), (20, 700), (7, 9)])
def test_upsample_argmax_with_scales_is_argmax_of_scaled_interpolation(size):
    torch.manual_seed(2)
    probs = torch.nn.functional.avg_pool2d(torch.rand(1, 30, 40, 52), 3, stride=1)[0]
    scale = torch.rand(30) * 0.5 + 0.5
    upsampled = torch.nn.functional.interpolate(probs[None], size=size, mode="bilinear", align_corners=False)[0]
    expected = (upsampled * scale.view(-1, 1, 1)).argmax(0)
    ours = upsample_argmax(probs.numpy(), size, scale=scale.numpy())
    assert float((torch.from_numpy(ours) == expected).float().mean()) >= 0.9999
    assert float((torch.from_numpy(upsample_argmax(probs.numpy(), size)) == expected).float().mean()) < 0.99


