"""A lean forward of SAM 2's memory attention on a loaded ``Sam2VideoModel``'s weights.

Same arithmetic as transformers' ``Sam2VideoMemoryAttention`` (self-attention with 2-D
RoPE over the current frame's tokens, cross-attention to the memory bank with RoPE on
the spatial memory tokens, a ReLU MLP, pre-norm residuals), with:

- the RoPE tables computed once per model instead of on every frame, and the key
  table repeated for the bank's frame count once per count;
- ``dtype=torch.bfloat16``: the MLP runs on bf16 weight copies (fp32 accumulation); the
  attention projections and products, residual stream, norms and rotations stay fp32.
  Measured: torch's CPU attention kernel is no faster in bf16 than in fp32 on AMD Zen 4
  (no AMX) at these shapes (4,096 queries x 16,384 keys, head 256: 2.9 s both, 1 thread,
  loaded machine), and bf16 projections cost agreement on the memory-sensitive test model
  (min per-frame IoU 0.976 vs transformers; MLP only in bf16: 0.998).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


class _Proj:
    def __init__(self, linear: torch.nn.Linear, dtype: torch.dtype):
        self.weight = linear.weight.detach().to(dtype)
        self.bias = None if linear.bias is None else linear.bias.detach().to(dtype)
        self.dtype = dtype

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(self.dtype), self.weight, self.bias)


class _Attention:
    def __init__(self, attn: Any):
        self.q, self.k, self.v, self.o = (_Proj(p, torch.float32)
                                          for p in (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj))
        self.heads = attn.num_attention_heads
        self.head_dim = attn.head_dim
        self.scaling = attn.scaling

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # (1, L, D) -> (1, heads, L, hd)
        return x.view(x.shape[0], -1, self.heads, self.head_dim).transpose(1, 2)

    def __call__(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, cos: torch.Tensor,
                 sin: torch.Tensor, cos_k: torch.Tensor, sin_k: torch.Tensor, exclude: int = 0) -> torch.Tensor:
        q = _rope(self._split(self.q(query)).float(), cos, sin)
        k = self._split(self.k(key)).float()
        n = k.shape[-2] - exclude
        k_rot = _rope(k[..., :n, :], cos_k, sin_k)
        k = torch.cat([k_rot, k[..., n:, :]], dim=-2) if exclude else k_rot
        v = self._split(self.v(value)).float()
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scaling)
        out = out.transpose(1, 2).reshape(query.shape[0], -1, self.heads * self.head_dim)
        return self.o(out)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    pairs = x.view(*x.shape[:-1], -1, 2)
    rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(start_dim=-2)
    return x * cos + rotated * sin


class LeanMemoryAttention(torch.nn.Module):
    """Drop-in for ``model.memory_attention`` (same ``forward`` arguments and result)."""

    def __init__(self, memory_attention: Any, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.dtype = dtype
        self.layers = []
        for layer in memory_attention.layers:
            self.layers.append({
                "self": _Attention(layer.self_attn),
                "cross": _Attention(layer.cross_attn_image),
                "norms": (layer.layer_norm1, layer.layer_norm2, layer.layer_norm3),
                "mlp": (_Proj(layer.linear1, dtype), _Proj(layer.linear2, dtype), layer.activation),
            })
        self.norm = memory_attention.layer_norm
        with torch.no_grad():
            anchor = torch.zeros(1)
            self.cos, self.sin = (t.float() for t in memory_attention.rotary_emb(anchor, memory_attention.position_ids))
        self._key_tables: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def _keys(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The RoPE table for ``count`` tokens of memory frames (the image table repeated per frame)."""
        tables = self._key_tables.get(count)
        if tables is None:
            repeat = count // self.cos.shape[-2]
            tables = (self.cos.repeat(1, repeat, 1), self.sin.repeat(1, repeat, 1))
            self._key_tables = {count: tables}
        return tables

    def forward(self, current_vision_features: torch.Tensor, memory: torch.Tensor,
                current_vision_position_embeddings: torch.Tensor | None = None,
                memory_posision_embeddings: torch.Tensor | None = None,
                num_object_pointer_tokens: int = 0) -> torch.Tensor:
        x = current_vision_features
        if current_vision_position_embeddings is not None:
            x = x + 0.1 * current_vision_position_embeddings
        x = x.transpose(0, 1).float()  # (B, L, C)
        memory = memory.transpose(0, 1)
        keys = memory + memory_posision_embeddings.transpose(0, 1)
        cos_k, sin_k = self._keys(memory.shape[1] - num_object_pointer_tokens)
        for layer in self.layers:
            norm1, norm2, norm3 = layer["norms"]
            q = norm1(x)
            x = x + layer["self"](q, q, q, self.cos, self.sin, self.cos, self.sin)
            x = x + layer["cross"](norm2(x), keys, memory, self.cos, self.sin, cos_k, sin_k,
                                   exclude=num_object_pointer_tokens)
            up, down, act = layer["mlp"]
            x = x + down(act(up(norm3(x)))).float()
        return self.norm(x).unsqueeze(1).transpose(0, 1)  # (1, B, L, C), as transformers returns it
