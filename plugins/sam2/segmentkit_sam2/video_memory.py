"""A lean forward of SAM 2's memory attention on a loaded ``Sam2VideoModel``'s weights.

Same arithmetic as transformers' ``Sam2VideoMemoryAttention`` (self-attention with 2-D
RoPE over the current frame's tokens, cross-attention to the memory bank with RoPE on
the spatial memory tokens, a ReLU MLP, pre-norm residuals), with:

- the RoPE tables computed once per model instead of on every frame, and the key
  table repeated for the bank's frame count once per count;
- each memory frame's cross-attention keys and values projected (and the keys rotated) once,
  when the frame enters the bank (:class:`BankProjections`), not on every frame that reads it:
  the keys' temporal position term changes as the frame ages, and since projection and
  rotation are linear it is added per frame as one rotated (tokens x 256) table;
- ``dtype=torch.bfloat16``: the MLP runs on bf16 weight copies (fp32 accumulation); the
  attention projections and products, residual stream, norms and rotations stay fp32.
  Measured: torch's CPU attention kernel is no faster in bf16 than in fp32 on AMD Zen 4
  (no AMX) at these shapes (4,096 queries x 16,384 keys, head 256: 2.9 s both, 1 thread,
  loaded machine), and bf16 projections cost agreement on the memory-sensitive test model
  (min per-frame IoU 0.976 vs transformers; MLP only in bf16: 0.998).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
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
                 sin: torch.Tensor, cos_k: torch.Tensor, sin_k: torch.Tensor, exclude: int = 0,
                 bank: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``bank``: (B, heads, N, head_dim) buffers of keys and values whose first
        ``N - exclude`` rows hold the memory frames' rotated keys and values; only the last
        ``exclude`` tokens (object pointers, not rotated) are projected here."""
        q = _rope(self._split(self.q(query)).float(), cos, sin)
        n = key.shape[1] - exclude
        if bank is None:
            k = self._split(self.k(key)).float()
            k_rot = _rope(k[..., :n, :], cos_k, sin_k)
            k = torch.cat([k_rot, k[..., n:, :]], dim=-2) if exclude else k_rot
            v = self._split(self.v(value)).float()
        else:  # the bank's rows are filled; project the object pointers into the rows after them
            k, v = bank
            if exclude:
                k[..., n:, :] = self._split(self.k(key[:, n:]))
                v[..., n:, :] = self._split(self.v(value[:, n:]))
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scaling)
        out = out.transpose(1, 2).reshape(query.shape[0], -1, self.heads * self.head_dim)
        return self.o(out)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return x * cos + _rotate_pairs(x) * sin


def _rotate_pairs(x: torch.Tensor) -> torch.Tensor:
    """(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...) along the last axis."""
    pairs = x.view(*x.shape[:-1], -1, 2)
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(start_dim=-2)


class BankProjections:
    """Per memory frame and layer, the cross-attention keys (projected, rotated, without the
    temporal term) and values, computed when a frame's memory is first read.

    Entries are keyed by the memory tensor the video session stores for the frame (its
    identity, checked through a weak reference); entries of frames the session has dropped go
    when the next frame is added, and at most ``capacity`` are kept, least recently used out
    first: a frame that left every bank is projected again if it returns.
    Sessions on several threads share it (one model, many sessions).
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._entries: OrderedDict[int, tuple[weakref.ref, list[tuple[torch.Tensor, torch.Tensor]]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, features: torch.Tensor, compute: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
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
    gathers the bank), the memory frames' keys and values come from :class:`BankProjections`."""

    def __init__(self, memory_attention: Any, dtype: torch.dtype = torch.float32, bank_capacity: int = 16):
        super().__init__()
        self.dtype = dtype
        self.projections = BankProjections(bank_capacity)
        self._plans = threading.local()  # a plan is read by the forward of the thread that made it
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

    def plan(self, frames: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> None:
        """The memory frames of the next forward's bank, in order: (features (n, B, C) as the
        session stores them, spatial positions (n, B, C), temporal position (C,))."""
        self._plans.frames = list(frames)

    def _bank(self, memory: torch.Tensor, pointers: int) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """Per layer, the rotated keys and the values of the planned frames (None without a
        plan that matches ``memory``, (B, N, C))."""
        plan, self._plans.frames = getattr(self._plans, "frames", None), None
        if not plan or sum(f.shape[0] for f, _, _ in plan) != memory.shape[1] - pointers:
            return None
        per_frame = [self.projections.get(features, lambda f=features, p=pos: self._project(f, p))
                     for features, pos, _ in plan]
        bank = []
        for index, layer in enumerate(self.layers):
            attn = layer["cross"]
            k_first, v_first = per_frame[0][index]
            shape = (*k_first.shape[:-2], memory.shape[1], k_first.shape[-1])
            keys, values = k_first.new_empty(shape), v_first.new_empty(shape)
            start = 0
            for (_, _, temporal), frames in zip(plan, per_frame):
                k_rot, v = frames[index]
                rows = slice(start, start + k_rot.shape[-2])
                start = rows.stop
                # + rope(Wk t): the temporal term (no bias, the cached keys have it) rotated per token
                term = attn._split(F.linear(temporal.reshape(1, 1, -1).float(), attn.k.weight)).float()
                torch.addcmul(k_rot, term, self.cos, out=keys[..., rows, :])
                keys[..., rows, :].addcmul_(_rotate_pairs(term), self.sin)
                values[..., rows, :] = v
            bank.append((keys, values))
        return bank

    def _project(self, features: torch.Tensor, positions: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """One memory frame's keys (rotated, without the temporal term) and values, per layer."""
        memory = features.float().transpose(0, 1)
        keys = memory + positions.float().transpose(0, 1)
        out = []
        for layer in self.layers:
            attn = layer["cross"]
            k = _rope(attn._split(attn.k(keys)).float(), self.cos, self.sin)
            out.append((k, attn._split(attn.v(memory)).float()))
        return out

    def forward(self, current_vision_features: torch.Tensor, memory: torch.Tensor,
                current_vision_position_embeddings: torch.Tensor | None = None,
                memory_posision_embeddings: torch.Tensor | None = None,
                num_object_pointer_tokens: int = 0) -> torch.Tensor:
        x = current_vision_features
        if current_vision_position_embeddings is not None:
            x = x + 0.1 * current_vision_position_embeddings
        x = x.transpose(0, 1).float()  # (B, L, C)
        memory = memory.transpose(0, 1)
        bank = self._bank(memory, num_object_pointer_tokens)
        keys = memory + memory_posision_embeddings.transpose(0, 1)
        cos_k, sin_k = (None, None) if bank else self._keys(memory.shape[1] - num_object_pointer_tokens)
        for index, layer in enumerate(self.layers):
            norm1, norm2, norm3 = layer["norms"]
            q = norm1(x)
            x = x + layer["self"](q, q, q, self.cos, self.sin, self.cos, self.sin)
            x = x + layer["cross"](norm2(x), keys, memory, self.cos, self.sin, cos_k, sin_k,
                                   exclude=num_object_pointer_tokens, bank=bank[index] if bank else None)
            up, down, act = layer["mlp"]
            x = x + down(act(up(norm3(x)))).float()
        return self.norm(x).unsqueeze(1).transpose(0, 1)  # (1, B, L, C), as transformers returns it
