"""A linear layer with GELU or a residual add fused into oneDNN's kernel, where this CPU runs it.

torch's oneDNN linear (``torch.ops.mkldnn._linear_pointwise``) fuses the MLP's GELU or the
residual add into the GEMM: about 15 % faster than MKL's GEMM on SAM 2's encoder shapes on
AMD Zen 4. It is a private operator, and it is not there or does not run everywhere: on a CPU
without native bf16 (AMD Zen 3) it fails for every bf16 shape. So whether it runs is probed
once per process and dtype on a tiny input (:func:`onednn_linear_runs`, checked against
``F.linear``); where it does not, :class:`FusedLinear` runs torch's public ops instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..capabilities import probe

PROBE = "onednn_linear"


def onednn_linear_runs(dtype: torch.dtype) -> bool:
    """Whether oneDNN's fused linear (plain, GELU, residual add) runs on this CPU in ``dtype`` and
    agrees with ``F.linear`` (``SEGMENTKIT_CAPABILITIES=onednn_linear=off`` turns it off)."""
    return probe(PROBE, lambda: _check(dtype), variant=str(dtype).removeprefix("torch."))


def _check(dtype: torch.dtype) -> bool:
    if not torch.backends.mkldnn.is_available() or not hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        return False
    generator = torch.Generator().manual_seed(0)
    x, add = (torch.randn(5, 16, generator=generator) for _ in range(2))
    weight, bias = torch.randn(8, 16, generator=generator), torch.randn(8, generator=generator)
    fused = FusedLinear(weight, bias, dtype, fused=True)
    plain = FusedLinear(weight, bias, dtype, fused=False)
    tolerance = 1e-4 if dtype == torch.float32 else 0.1
    add = add[:, :8]
    return all(
        torch.allclose(fused(x, **kw).float(), plain(x, **kw).float(), atol=tolerance, rtol=tolerance)
        for kw in ({}, {"gelu": True}, {"add": add})
    )


class FusedLinear:
    """One linear layer's weights in the compute dtype; ``gelu=True`` applies GELU to the output,
    or ``add=`` adds a residual (one of the two). Inputs of any leading shape (channels last)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype, *,
                 fused: bool | None = None):
        self.weight = weight.detach().to(dtype).contiguous()
        self.bias = None if bias is None else bias.detach().to(dtype).contiguous()
        on_cpu = self.weight.device.type == "cpu"
        self.fused = on_cpu and (onednn_linear_runs(dtype) if fused is None else fused)

    @classmethod
    def of(cls, module: torch.nn.Linear, dtype: torch.dtype, *, fused: bool | None = None) -> FusedLinear:
        return cls(module.weight, module.bias, dtype, fused=fused)

    def __call__(self, x: torch.Tensor, *, gelu: bool = False, add: torch.Tensor | None = None) -> torch.Tensor:
        if gelu and add is not None:
            raise ValueError("FusedLinear fuses GELU or a residual add, not both")
        flat = x.to(self.weight.dtype).reshape(-1, x.shape[-1])
        if self.fused and add is not None:
            out = torch.ops.mkldnn._linear_pointwise.binary(flat, add.reshape(flat.shape[0], -1), self.weight,
                                                            self.bias, "add")
        elif self.fused:
            out = torch.ops.mkldnn._linear_pointwise(flat, self.weight, self.bias, "gelu" if gelu else "none",
                                                     [], "none" if gelu else "")
        else:
            out = F.linear(flat, self.weight, self.bias)
            out = F.gelu(out) if gelu else out
            out = out + add.reshape(out.shape) if add is not None else out
        return out.reshape(*x.shape[:-1], out.shape[-1])
