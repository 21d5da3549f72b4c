"""A lean forward of SAM 2's memory attention on a loaded ``Sam2VideoModel``'s weights.

Same arithmetic as transformers' ``Sam2VideoMemoryAttention`` (self-attention with 2-D
RoPE over the current frame's tokens, cross-attention to the memory bank with RoPE on
the spatial memory tokens, a ReLU MLP, pre-norm residuals), with:

- the RoPE tables computed once per model instead of on every frame, and the key
  table repeated for the bank's frame count once per count;
- each memory frame's cross-attention keys projected and rotated once, when the frame enters
  the bank (:class:`BankProjections`), not on every frame that reads it: the keys' temporal
  position term changes as the frame ages, and since projection and rotation are linear it is
  added per frame as one rotated (tokens x 256) table;
- ``dtype=torch.bfloat16``: the attention products (scores, softmax, weights x values) and the
  MLP in bf16 (fp32 accumulation in the products, fp32 inside the softmax); projections,
  rotations, the residual stream and norms stay fp32. On AMD Zen 4 (no AMX) bf16 matrix
  products run about 2.5x faster than fp32 while torch's fused attention kernel gains nothing
  in bf16, so bf16 attention runs as 2-D products over blocks of queries; and the
  cross-attention's values are not projected: the attention weights (rows summing to one)
  average the 64-channel memory tokens and ``v_proj`` maps the average, the same sum with a
  quarter of the weights x values product.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .attention import CastLinear, attend


class _Attention:
    """One RoPE attention of the memory attention, its products in ``dtype``."""

    def __init__(self, attn: Any, dtype: torch.dtype):
        self.q, self.k, self.v, self.o = (CastLinear(p, torch.float32)
                                          for p in (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj))
        self.heads = attn.num_attention_heads
        self.head_dim = attn.head_dim
        self.scaling = attn.scaling
        self.dtype = dtype

    def split(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, D) -> (B, heads, L, hd)
        return x.view(x.shape[0], -1, self.heads, self.head_dim).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:  # (B, heads, L, hd) -> (B, L, D)
        return x.transpose(1, 2).reshape(x.shape[0], -1, self.heads * self.head_dim)

    def _queries(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        return _rope(self.split(self.q(x)), cos, sin) * self.scaling

    def self_attention(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        keys = _rope(self.split(self.k(x)), cos, sin)
        out = attend(self._queries(x, cos, sin), keys, self.split(self.v(x)), self.dtype)
        return self.o(self._merge(out))

    def cross_attention(self, x: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor, cos: torch.Tensor,
                        sin: torch.Tensor) -> torch.Tensor:
        """``keys``: (B, heads, N, hd) rotated keys of the memory; ``memory``: (B, N, C) its tokens.
        In bf16 the values are not projected: the attention weights average the memory tokens and
        ``v_proj`` maps the average (the same sum, with a quarter of the weights x values product)."""
        queries = self._queries(x, cos, sin)
        if self.dtype == torch.float32:
            return self.o(self._merge(attend(queries, keys, self.split(self.v(memory)), self.dtype)))
        mixed = attend(queries, keys, memory.unsqueeze(1), self.dtype)  # (B, heads, L, C)
        values = torch.einsum("bhlc,hdc->bhld", mixed, self.v.weight.view(self.heads, self.head_dim, -1))
        if self.v.bias is not None:
            values = values + self.v.bias.view(self.heads, 1, self.head_dim)
        return self.o(self._merge(values))


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + _rotate_pairs(x) * sin


def _rotate_pairs(x: torch.Tensor) -> torch.Tensor:
    """(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...) along the last axis."""
    pairs = x.view(*x.shape[:-1], -1, 2)
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(start_dim=-2)


class BankProjections:
    """Per memory frame and layer, the cross-attention keys (projected, rotated, without the
    temporal term), computed when a frame's memory is first read.

    Entries are keyed by the memory tensor the video session stores for the frame (its
    identity, checked through a weak reference); entries of frames the session has dropped go
    when the next frame is added, and at most ``capacity`` are kept, least recently used out
    first: a frame that left every bank is projected again if it returns.
    Sessions on several threads share it (one model, many sessions).
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._entries: OrderedDict[int, tuple[weakref.ref, list[torch.Tensor]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, features: torch.Tensor, compute: Any) -> list[torch.Tensor]:
        key = id(features)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0]() is features:
                self._entries.move_to_end(key)
                return entry[1]
        value = compute()
        with self._lock:
            for stale in [k for k, (ref, _) in self._entries.items() if ref() is None]:
                del self._entries[stale]  # the session dropped that frame's memory
            self._entries[key] = (weakref.ref(features), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)


class LeanMemoryAttention(torch.nn.Module):
    """Drop-in for ``model.memory_attention`` (same ``forward`` arguments and result).

    With :meth:`plan` called just before a forward (the tracker view does it when transformers
    gathers the bank), the memory frames' keys come from :class:`BankProjections`."""

    def __init__(self, memory_attention: Any, dtype: torch.dtype = torch.float32, bank_capacity: int = 16):
        super().__init__()
        self.dtype = dtype
        self.projections = BankProjections(bank_capacity)
        self._plans = threading.local()  # a plan is read by the forward of the thread that made it
        self.layers = []
        for layer in memory_attention.layers:
            self.layers.append({
                "self": _Attention(layer.self_attn, dtype),
                "cross": _Attention(layer.cross_attn_image, dtype),
                "norms": (layer.layer_norm1, layer.layer_norm2, layer.layer_norm3),
                "mlp": (CastLinear(layer.linear1, dtype), CastLinear(layer.linear2, dtype), layer.activation),
            })
        self.norm = memory_attention.layer_norm
        with torch.no_grad():
            anchor = torch.zeros(1)
            self.cos, self.sin = (t.float() for t in memory_attention.rotary_emb(anchor, memory_attention.position_ids))
        self._key_tables: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def _tables(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The RoPE table for ``count`` tokens of memory frames (the image table repeated per frame)."""
        tables = self._key_tables.get(count)
        if tables is None:
            repeat = count // self.cos.shape[-2]
            tables = (self.cos.repeat(1, repeat, 1), self.sin.repeat(1, repeat, 1))
            self._key_tables = {count: tables}
        return tables

    def plan(self, frames: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> None:
        """The memory frames of the next forward's bank, in order: (features (n, B, C) as the
        session stores them, spatial positions (n, B, C), temporal position (C,))."""
        self._plans.frames = list(frames)

    def _planned(self, memory: torch.Tensor, pointers: int) -> list[tuple[list[torch.Tensor], torch.Tensor]] | None:
        """Per planned frame, its cached rotated keys per layer and its temporal position (None
        without a plan that matches ``memory``, (B, N, C))."""
        plan, self._plans.frames = getattr(self._plans, "frames", None), None
        if not plan or sum(f.shape[0] for f, _, _ in plan) != memory.shape[1] - pointers:
            return None
        return [(self.projections.get(features, lambda f=features, p=pos: self._project(f, p)), temporal)
                for features, pos, temporal in plan]

    def _project(self, features: torch.Tensor, positions: torch.Tensor) -> list[torch.Tensor]:
        """One memory frame's keys (rotated, without the temporal term), per layer."""
        keys = (features.float() + positions.float()).transpose(0, 1)
        return [_rope(layer["cross"].split(layer["cross"].k(keys)), self.cos, self.sin) for layer in self.layers]

    def _layer_keys(self, index: int, keys: torch.Tensor, pointers: int,
                    planned: list[tuple[list[torch.Tensor], torch.Tensor]] | None) -> torch.Tensor:
        """Layer ``index``'s rotated cross-attention keys of the whole memory (B, heads, N, hd), in
        the attention dtype; ``keys`` = memory + positions (B, N, C)."""
        attn = self.layers[index]["cross"]
        n = keys.shape[1] - pointers
        if planned is None:
            projected = attn.split(attn.k(keys))
            cos, sin = self._tables(n)
            out = projected.to(self.dtype)
            out[..., :n, :] = _rope(projected[..., :n, :], cos, sin)
            return out
        first = planned[0][0][index]
        out = first.new_empty((*first.shape[:-2], keys.shape[1], first.shape[-1]), dtype=self.dtype)
        start = 0
        for per_layer, temporal in planned:
            rotated = per_layer[index]
            rows = slice(start, start + rotated.shape[-2])
            start = rows.stop
            # + rope(Wk t): the temporal term (no bias, the cached keys have it) rotated per token
            term = attn.split(F.linear(temporal.reshape(1, 1, -1).float(), attn.k.weight))
            out[..., rows, :] = rotated + term * self.cos + _rotate_pairs(term) * self.sin
        if pointers:
            out[..., n:, :] = attn.split(attn.k(keys[:, n:]))  # object pointers: not rotated
        return out

    @torch.no_grad()
    def forward(self, current_vision_features: torch.Tensor, memory: torch.Tensor,
                current_vision_position_embeddings: torch.Tensor | None = None,
                memory_posision_embeddings: torch.Tensor | None = None,
                num_object_pointer_tokens: int = 0) -> torch.Tensor:
        x = current_vision_features
        if current_vision_position_embeddings is not None:
            x = x + 0.1 * current_vision_position_embeddings
        x = x.transpose(0, 1).float()  # (B, L, C)
        memory = memory.transpose(0, 1).float()
        planned = self._planned(memory, num_object_pointer_tokens)
        keys = memory + memory_posision_embeddings.transpose(0, 1)
        for index, layer in enumerate(self.layers):
            norm1, norm2, norm3 = layer["norms"]
            x = x + layer["self"].self_attention(norm1(x), self.cos, self.sin)
            layer_keys = self._layer_keys(index, keys, num_object_pointer_tokens, planned)
            x = x + layer["cross"].cross_attention(norm2(x), layer_keys, memory, self.cos, self.sin)
            up, down, act = layer["mlp"]
            x = x + down(act(up(norm3(x)))).float()
        return self.norm(x).unsqueeze(1).transpose(0, 1)  # (1, B, L, C), as transformers returns it
