"""Attention as the SAM-family fast paths run it on CPU.

On AMD Zen 4 (no AMX) torch's bf16 matrix products run about 2.5x faster than fp32, while
its fused attention kernel and its batched products gain nothing in bf16 (measured, 2 cores,
4,096 queries x 28,736 keys, head 256: fused fp32 840 ms, fused bf16 no faster, blocked 2-D
bf16 products 340 ms). So bf16 attention runs as 2-D products over blocks of queries:
:func:`attend` for segmentkit's own forwards, :func:`use_bf16_attention` for a copy of one of
transformers' modules (through transformers' ``AttentionInterface``).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F

_SCORE_BLOCK_BYTES = 8 * 2**20  # one block of bf16 attention scores (measured fastest of 8-32 MiB)


def attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """softmax(query key^T) value for (B, H, L, d) queries (already scaled), (B, H, N, d) keys and
    (B, H or 1, N, e) values; fp32 result. fp32, and any dtype off the CPU: torch's fused kernel
    (the fastest fp32 attention on CPU, flash attention on a GPU); bf16 on CPU: a block of queries
    at a time as 2-D products (torch's batched and fused kernels are much slower in bf16 on CPU)."""
    if dtype == torch.float32 or query.device.type != "cpu":
        value = value.expand(*key.shape[:2], -1, -1)
        return F.scaled_dot_product_attention(query.to(dtype), key.to(dtype), value.to(dtype), scale=1.0).float()
    batch, heads, length, _ = query.shape
    rows = max(16, _SCORE_BLOCK_BYTES // (key.shape[-2] * 2))
    out = torch.empty(batch, heads, length, value.shape[-1], dtype=dtype)
    for b in range(batch):
        for h in range(heads):
            q, k_t = query[b, h].to(dtype), key[b, h].to(dtype).t()
            v = value[b, h if value.shape[1] > 1 else 0].to(dtype)
            for start in range(0, length, rows):
                block = slice(start, start + rows)
                torch.mm(torch.softmax(torch.mm(q[block], k_t), dim=-1), v, out=out[b, h, block])
    return out.float()


TRANSFORMERS_NAME = "segmentkit_blocked_bf16"


def transformers_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                           attention_mask: torch.Tensor | None = None, scaling: float | None = None,
                           dropout: float = 0.0, is_causal: bool = False, **_: Any) -> tuple[torch.Tensor, None]:
    """:func:`attend` in bf16 with transformers' attention-function signature (registered as
    ``TRANSFORMERS_NAME``; no mask, no dropout, not causal: the SAM family's inference)."""
    if attention_mask is not None or dropout or is_causal:
        raise ValueError("the blocked bf16 attention takes no mask, no dropout and no causal masking")
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    out = attend(query * scale, key, value, torch.bfloat16).to(query.dtype)
    return out.transpose(1, 2).contiguous(), None


def use_bf16_attention(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``module`` (weights shared) whose attention submodules run :func:`transformers_attention`;
    ``module`` and its config are left as they are."""
    from transformers import AttentionInterface

    AttentionInterface.register(TRANSFORMERS_NAME, transformers_attention)
    return _with_attention(module, TRANSFORMERS_NAME)


def _with_attention(module: torch.nn.Module, implementation: str) -> torch.nn.Module:
    clone = copy.copy(module)
    clone._modules = {name: child if child is None else _with_attention(child, implementation)
                      for name, child in module._modules.items()}
    config = getattr(module, "config", None)
    if config is not None and hasattr(config, "_attn_implementation_internal"):
        clone.config = copy.copy(config)
        clone.config._attn_implementation_internal = implementation  # this copy only (the setter recurses)
    return clone


class CastLinear(torch.nn.Module):
    """A linear layer on copies of ``linear``'s weights in ``dtype`` (the weights themselves
    where they already are); any input dtype, output in ``dtype``."""

    def __init__(self, linear: torch.nn.Linear, dtype: torch.dtype):
        super().__init__()
        self.weight = linear.weight.detach().to(dtype)
        self.bias = None if linear.bias is None else linear.bias.detach().to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(self.weight.dtype), self.weight, self.bias)
