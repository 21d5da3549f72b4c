"""Capabilities and ``precision="auto"``: probed once, forced by SEGMENTKIT_CAPABILITIES, resolved at load."""

import numpy as np
import pytest
import torch
from segmentkit import ModelCard, ModelSpec, Segmentation, capabilities, hookimpl, pipeline
from segmentkit.errors import OptionsError
from segmentkit.registry import Registry
from segmentkit.runtime import fused_linear
from segmentkit.runtime.fused_linear import FusedLinear, onednn_linear_runs

BUILT_WITH: list[str] = []  # the precision each model was built with


class RecordingModel:
    def __init__(self, card, options):
        BUILT_WITH.append(options.precision)

    def segment(self, image, *, task=None):
        return Segmentation.from_label_map((image[..., 0] > 127).astype(np.int32), {0: "dark", 1: "bright"})


def _registry(precisions=("fp32", "bf16"), runtimes=("torch",)):
    card = ModelCard(id="toy-prec", family="toy", roles=("segmenter",), tasks=("semantic",), license="MIT",
                     runtimes=runtimes, precisions=precisions)
    spec = ModelSpec(card=card, role="segmenter", loader=f"{__name__}:RecordingModel")

    class Plugin:
        @staticmethod
        @hookimpl
        def segmentkit_segmenters():
            return [spec]

    registry = Registry(entry_points=False)
    registry.register(Plugin, name="toy")
    return registry


@pytest.mark.parametrize(("flags", "native"), [({"avx2", "fma"}, False), ({"avx512f", "avx512_bf16"}, True),
                                               ({"avx2", "amx_tile", "amx_bf16"}, True)])
def test_native_bf16_on_the_cpu_follows_its_flags(monkeypatch, force_capabilities, flags, native):
    monkeypatch.delenv(capabilities.ENV, raising=False)
    monkeypatch.setattr(capabilities, "cpu_flags", lambda: frozenset(flags))
    assert capabilities.native_bf16("cpu") is native
    assert capabilities.native_bf16("mps") is False  # not measured: fp32
    force_capabilities(bf16=not native)
    assert capabilities.native_bf16("cpu") is (not native)


def test_the_cpu_flags_come_from_the_machine():
    flags = capabilities.cpu_flags()
    assert flags, "no CPU flags read"
    assert ("avx2" in flags) == bool(torch.cpu._is_avx2_supported())  # torch's own probe agrees
    assert ("avx512_bf16" in flags) == bool(torch.cpu._is_avx512_bf16_supported())


def test_forced_capabilities_parse_and_refuse_nonsense(monkeypatch):
    monkeypatch.setenv(capabilities.ENV, " bf16=on , onednn_linear=OFF")
    assert capabilities.forced() == {"bf16": True, "onednn_linear": False}
    monkeypatch.setenv(capabilities.ENV, "bf16")
    with pytest.raises(OptionsError, match="NAME=on"):
        capabilities.forced()


def test_auto_takes_bf16_only_where_it_is_native_listed_and_on_torch(force_capabilities):
    force_capabilities(bf16=True)
    assert capabilities.resolve_precision("auto", ("fp32", "bf16"), "cpu", "torch", "m") == "bf16"
    assert capabilities.resolve_precision("auto", ("fp32",), "cpu", "torch", "m") == "fp32"
    assert capabilities.resolve_precision("auto", ("fp32", "bf16"), "cpu", "onnxruntime", "m") == "fp32"
    assert capabilities.resolve_precision("auto", ("int8",), "cpu", "torch", "m") == "int8"
    assert capabilities.resolve_precision("bf16", ("fp32", "bf16"), "cpu", "torch", "m") == "bf16"
    force_capabilities(bf16=False)
    assert capabilities.resolve_precision("auto", ("fp32", "bf16"), "cpu", "torch", "m") == "fp32"
    assert capabilities.resolve_precision("fp32", ("fp32", "bf16"), "cpu", "torch", "m") == "fp32"
    with pytest.raises(OptionsError, match=r"'m': precision 'bf16' needs native bf16.*AVX512-BF16 or AMX"):
        capabilities.resolve_precision("bf16", ("fp32", "bf16"), "cpu", "torch", "m")
    with pytest.raises(OptionsError, match="supports precision fp32 here, not 'bf16'"):
        capabilities.resolve_precision("bf16", ("fp32",), "cpu", "torch", "m")


def test_load_resolves_auto_and_the_result_records_it(force_capabilities):
    image = np.zeros((6, 8, 3), np.uint8)
    BUILT_WITH.clear()
    force_capabilities(bf16=True)
    handle = _registry().load("toy-prec", device="cpu")
    assert handle.options.precision == "bf16"
    _, document = pipeline.segment(handle, image)
    assert document.model.precision == "bf16"
    assert _registry(precisions=("fp32",)).load("toy-prec", device="cpu").options.precision == "fp32"
    force_capabilities(bf16=False)
    assert _registry().load("toy-prec", device="cpu").options.precision == "fp32"
    with pytest.raises(OptionsError, match="native bf16"):
        _registry().load("toy-prec", device="cpu", precision="bf16")
    with pytest.raises(OptionsError, match="supports precision fp32, bf16, not 'int8'"):
        _registry().load("toy-prec", device="cpu", precision="int8")
    assert BUILT_WITH == ["bf16", "fp32", "fp32"]  # the refused loads built nothing


def test_a_probe_runs_once_and_an_exception_means_off(monkeypatch):
    monkeypatch.delenv(capabilities.ENV, raising=False)
    calls = []

    def broken() -> bool:
        calls.append(1)
        raise RuntimeError("could not create a primitive descriptor")

    assert capabilities.probe("test_broken_path", broken) is False
    assert capabilities.probe("test_broken_path", broken) is False
    assert calls == [1]
    assert capabilities.probed()["test_broken_path"] is False
    monkeypatch.setenv(capabilities.ENV, "test_broken_path=on")
    assert capabilities.probe("test_broken_path", broken) is True and calls == [1]


def _layer(dtype=torch.float32):
    generator = torch.Generator().manual_seed(1)
    return torch.randn(12, 32, generator=generator), torch.randn(12, generator=generator), \
        torch.randn(3, 7, 32, generator=generator), torch.randn(3, 7, 12, generator=generator)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_fused_linear_agrees_with_the_public_ops_where_it_runs(dtype):
    if not onednn_linear_runs(dtype):
        pytest.skip(f"oneDNN's fused linear does not run on this CPU in {dtype} (probed)")
    weight, bias, x, add = _layer()
    fused, plain = FusedLinear(weight, bias, dtype, fused=True), FusedLinear(weight, bias, dtype, fused=False)
    tol = 1e-5 if dtype == torch.float32 else 5e-2
    for kw in ({}, {"gelu": True}, {"add": add.to(dtype)}):
        torch.testing.assert_close(fused(x, **kw).float(), plain(x, **kw).float(), rtol=tol, atol=tol)


def test_the_public_path_computes_linear_gelu_and_add():
    weight, bias, x, add = _layer()
    plain = FusedLinear(weight, bias, torch.float32, fused=False)
    expected = x @ weight.T + bias
    torch.testing.assert_close(plain(x), expected)
    torch.testing.assert_close(plain(x, gelu=True), torch.nn.functional.gelu(expected))
    torch.testing.assert_close(plain(x, add=add), expected + add)
    with pytest.raises(ValueError, match="not both"):
        plain(x, gelu=True, add=add)


def test_a_cpu_where_the_fused_op_fails_gets_the_public_path(monkeypatch):
    """As on an AMD Zen 3 in bf16: the private op raises for every shape; the probe says no and
    the layer computes through F.linear instead of crashing."""
    monkeypatch.delenv(capabilities.ENV, raising=False)
    monkeypatch.setattr(capabilities, "_RESULTS", {})

    def fails(*_, **__):
        raise RuntimeError("could not create a primitive descriptor for the inner product forward propagation")

    fails.binary = fails
    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", fails, raising=False)
    assert onednn_linear_runs(torch.float32) is False
    weight, bias, x, _ = _layer()
    layer = FusedLinear(weight, bias, torch.float32)
    assert layer.fused is False
    torch.testing.assert_close(layer(x, gelu=True), torch.nn.functional.gelu(x @ weight.T + bias))
    assert capabilities.probed()[f"{fused_linear.PROBE}/float32"] is False
