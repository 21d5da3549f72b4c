"""The blocked bf16 attention against torch's fused fp32 attention."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from segmentkit_sam2 import attention


@pytest.mark.parametrize("values", [64, 32])  # 32: fewer value channels than the head (SAM 2's cross-attention)
def test_blocks_of_queries_add_up_to_the_fused_attention(monkeypatch, values):
    torch.manual_seed(0)
    q, k = torch.randn(2, 3, 100, 64), torch.randn(2, 3, 70, 64)
    v = torch.randn(2, 1, 70, values)  # one set of values shared by the heads
    monkeypatch.setattr(attention, "_SCORE_BLOCK_BYTES", 30 * 70 * 2)  # 30 queries a block: 4 blocks, the last short
    expected = F.scaled_dot_product_attention(q, k, v.expand(2, 3, -1, -1), scale=0.2)
    got = attention.attend(q * 0.2, k, v, torch.bfloat16)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    error = float((got - expected).abs().max() / expected.abs().max())
    assert 0 < error < 0.02, error
    torch.testing.assert_close(attention.attend(q * 0.2, k, v, torch.float32), expected, rtol=1e-5, atol=1e-5)


def test_the_transformers_adapter_refuses_what_it_does_not_do():
    q = torch.randn(1, 1, 4, 8)
    out, weights = attention.transformers_attention(None, q, q, q, scaling=0.5)
    assert out.shape == (1, 4, 1, 8) and weights is None  # (batch, tokens, heads, channels), as transformers' own
    for bad in (dict(attention_mask=torch.zeros(1, 1, 4, 4)), dict(dropout=0.1), dict(is_causal=True)):
        with pytest.raises(ValueError, match="no mask"):
            attention.transformers_attention(None, q, q, q, **bad)
