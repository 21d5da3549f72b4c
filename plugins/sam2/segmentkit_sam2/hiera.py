"""A lean forward of SAM 2's image encoder (Hiera + FPN neck) on a loaded ``Sam2Model``'s weights.

Same arithmetic as transformers' ``Sam2Model.get_image_features`` followed by the
engine's layout step, minus the work whose result the image predictor never reads:

- the Hiera position embedding (bicubic resize + window tiling) depends on the weights
  only: computed once per model, not per image;
- the neck's sine position encodings are not computed (the prompt decoder uses its own
  image-wide embedding), nor the attention-weights product that transformers'
  ``Sam2MultiScaleAttention`` computes and discards;
- the 1x1 convolutions of the neck and of the decoder's high-res projections run as
  linear layers on channels-last maps (one layout change at the end);
- linear layers run on oneDNN where it runs on this CPU and dtype (probed once; about 15 %
  faster than MKL's GEMM on the encoder's shapes on AMD Zen 4), with the MLP's GELU fused into
  the first GEMM (:mod:`segmentkit.runtime.fused_linear`);
- the first stages run in chunks of windows and tokens, so no activation outgrows glibc's
  mmap threshold (a fresh 75-100 MB buffer per layer costs a page fault per 4 KiB).

``dtype=torch.bfloat16`` keeps bf16 copies of the weights and runs the backbone's
linear layers and attention in bf16, except the blocks in ``fp32_blocks``; layer norms,
residual sums and the neck stay fp32 (see :func:`bf16_fp32_blocks` and :data:`IMAGE_BF16_STAGES`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import torch
import torch.nn.functional as F
from segmentkit.runtime.fused_linear import FusedLinear

from .attention import attend

_CHUNK_ELEMENTS = 4 * 2**20  # activations per chunk: 16 MiB in fp32, well under the 32 MiB mmap threshold


class _Block:
    """One Hiera block (``Sam2MultiScaleBlock``) with its weights in the compute dtype."""

    def __init__(self, block: Any, dtype: torch.dtype, onednn: bool | None):
        self.norm1 = block.layer_norm1
        self.norm2 = block.layer_norm2
        self.dtype = dtype
        self.window = int(block.window_size)
        self.stride = tuple(block.query_stride) if block.query_stride else None
        self.heads = int(block.attn.num_attention_heads)
        self.dim, self.dim_out = int(block.dim), int(block.dim_out)
        self.qkv = FusedLinear.of(block.attn.qkv, dtype, fused=onednn)
        self.attn_proj = FusedLinear.of(block.attn.proj, dtype, fused=onednn)
        self.fc1 = FusedLinear.of(block.mlp.proj_in, dtype, fused=onednn)
        self.fc2 = FusedLinear.of(block.mlp.proj_out, dtype, fused=onednn)
        self.proj = FusedLinear.of(block.proj, dtype, fused=onednn) if self.dim != self.dim_out else None
        if block.mlp.num_layers != 2 or block.mlp.activation.__class__.__name__ not in ("GELUActivation", "GELU"):
            raise ValueError("the lean Hiera encoder expects a 2-layer GELU MLP")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C) fp32
        normed = F.layer_norm(x, (self.dim,), self.norm1.weight, self.norm1.bias, self.norm1.eps)
        residual = x
        if self.proj is not None:
            residual = _pool(self.proj(normed).float(), self.stride)
        if self.window:
            windows = _partition(normed, self.window)
            out = self._attention_chunked(windows)
            size = self.window // self.stride[0] if self.stride else self.window
            out_h, out_w = residual.shape[1:3]
            padded = (out_h + (-out_h) % size, out_w + (-out_w) % size)
            out = _unpartition(out, size, padded, (out_h, out_w))
        else:
            out = self._attention(normed)
        x = residual + out.float()
        return self._mlp_chunked(x)

    def _attention_chunked(self, windows: torch.Tensor) -> torch.Tensor:
        per = max(1, _CHUNK_ELEMENTS // (windows[0].numel() * 3 * max(1, self.dim_out // self.dim)))
        if windows.shape[0] <= per:
            return self._attention(windows)
        return torch.cat([self._attention(part) for part in windows.split(per)])

    def _attention(self, x: torch.Tensor) -> torch.Tensor:  # (B, h, w, dim) -> (B, h', w', dim_out)
        batch, height, width, _ = x.shape
        qkv = self.qkv(x).reshape(batch, height * width, 3, self.heads, -1)
        query, key, value = qkv.unbind(2)
        if self.stride:
            query = _pool(query.reshape(batch, height, width, -1), self.stride)
            height, width = query.shape[1:3]
            query = query.reshape(batch, height * width, self.heads, -1)
        query, key, value = query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2)
        if self.dtype == torch.float32:
            out = F.scaled_dot_product_attention(query, key, value)
        elif not self.window:  # bf16 global attention: blocked 2-D products (see .attention)
            out = attend(query * query.shape[-1] ** -0.5, key, value, self.dtype)
        else:  # bf16 windows: batched products + fp32 softmax, 2x faster than flash on CPU and closer
            scores = (query * query.shape[-1] ** -0.5) @ key.transpose(-2, -1)
            out = torch.softmax(scores, dim=-1, dtype=torch.float32).to(value.dtype) @ value
        out = out.transpose(1, 2).reshape(batch, height, width, -1)
        return self.attn_proj(out)

    def _mlp_chunked(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.dim_out)
        per = max(1, _CHUNK_ELEMENTS // (4 * self.dim_out))
        if flat.shape[0] <= per:
            return x + self._mlp(x)
        out = torch.empty_like(flat)
        for rows, dst in zip(flat.split(per), out.split(per)):
            torch.add(rows, self._mlp(rows), out=dst)
        return out.reshape(x.shape)

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        normed = F.layer_norm(x, (self.dim_out,), self.norm2.weight, self.norm2.bias, self.norm2.eps)
        return self.fc2(self.fc1(normed, gelu=True)).float()


class LeanImageEncoder:
    """Pixel values (1, 3, S, S) -> (embedding, high_res_0, high_res_1) as ``Sam2Engine.encode`` lays them out.

    Holds references to the model's layer norms and copies of its linear weights; built
    once per loaded model (``dtype``: torch.float32 or torch.bfloat16).
    """

    def __init__(self, model: Any, dtype: torch.dtype = torch.float32, fp32_blocks: Collection[int] = (),
                 onednn: bool | None = None, no_memory: bool = True):
        vision = model.vision_encoder
        backbone = vision.backbone
        config = model.config.vision_config
        self.patch_embed = backbone.patch_embed.projection
        stride = backbone.config.patch_stride
        size = int(model.config.prompt_encoder_config.image_size)
        grid = (size // stride[0], size // stride[1])
        with torch.no_grad():
            self.pos_embed = backbone._get_pos_embed(grid).detach().contiguous()  # (1, h, w, C)
        ends = {int(e) for e in backbone.stage_ends}
        self.blocks = [
            (_Block(block, torch.float32 if i in fp32_blocks else dtype, onednn), i in ends)
            for i, block in enumerate(backbone.blocks)
        ]
        neck = vision.neck
        self.neck = [FusedLinear.of(_as_linear(conv), torch.float32, fused=onednn) for conv in neck.convs]
        self.top_down = {int(i) for i in neck.fpn_top_down_levels}
        self.levels = int(vision.num_feature_levels)
        decoder = model.mask_decoder
        self.conv_s0 = FusedLinear.of(_as_linear(decoder.conv_s0), torch.float32, fused=onednn)
        self.conv_s1 = FusedLinear.of(_as_linear(decoder.conv_s1), torch.float32, fused=onednn)
        # The image predictor adds the "no memory" embedding here; the tracker adds it (or memory) itself.
        self.no_memory = model.no_memory_embedding.detach().reshape(-1).float() if no_memory else None
        if config.fpn_kernel_size != 1:
            raise ValueError("the lean SAM 2 encoder expects 1x1 neck convolutions")

    def __call__(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.patch_embed(pixel_values.float().contiguous(memory_format=torch.channels_last))
        x = x.permute(0, 2, 3, 1) + self.pos_embed  # (1, h, w, C)
        stage_maps = []
        for block, is_end in self.blocks:
            x = block(x)
            if is_end:
                stage_maps.append(x)
        maps = fpn_maps(self.neck, self.top_down, self.levels, stage_maps)
        hr0 = self.conv_s0(maps[0])
        hr1 = self.conv_s1(maps[1])
        emb = maps[2] if self.no_memory is None else maps[2] + self.no_memory
        return tuple(m.permute(0, 3, 1, 2).float().contiguous() for m in (emb, hr0, hr1))


def fpn_maps(neck: list[FusedLinear], top_down: Collection[int], levels: int,
             stage_maps: list[torch.Tensor]) -> list[torch.Tensor]:
    """The FPN neck (``Sam2VisionNeck``'s top-down pass) on channels-last stage maps: the last
    ``levels`` outputs, high to low resolution."""
    n = len(neck) - 1
    outs = []
    prev = None
    for i in range(n, -1, -1):
        lateral = neck[n - i](stage_maps[i])  # (1, h, w, D), channels-last
        if i in top_down and i != n:
            prev = lateral + prev.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)  # nearest, x2
        else:
            prev = lateral
        outs.append(prev)
    return outs[-levels:][::-1]


# Stages the image predictor runs in bf16 with ``precision="bf16"``. Measured on the full-size
# random Hiera-Tiny (1024^2, 2 Zen 4 cores, 16 points x 3 masks; min final-mask IoU vs fp32, in
# brackets with the bf16 mask decoder too; per-stage ms fp32 -> bf16):
# stage 0 alone 0.9983, stage 1 0.9953, stage 2 0.9927, stage 3 0.9949 (188 -> 137, 285 -> 247,
# 1261 -> 1110, 293 -> 131 ms); stages 0, 1 0.9951 (0.9917); 0, 1, 3 0.9935 (0.9902); every stage
# 0.9905. Stage 2 (global attention, whose bf16 flash kernel is no faster than fp32 here) stays fp32.
IMAGE_BF16_STAGES = (0, 1, 3)


def bf16_fp32_blocks(model: Any, bf16_stages: Collection[int]) -> tuple[int, ...]:
    """Blocks kept in fp32 when the stages ``bf16_stages`` run in bf16 (the image predictor runs
    :data:`IMAGE_BF16_STAGES`; the video tracker every stage)."""
    backbone = model.vision_encoder.backbone
    ends = [int(e) for e in backbone.stage_ends]
    starts = [0] + [e + 1 for e in ends[:-1]]
    return tuple(i for stage, (start, end) in enumerate(zip(starts, ends)) if stage not in bf16_stages
                 for i in range(start, end + 1))


def _as_linear(conv: torch.nn.Conv2d) -> torch.nn.Linear:
    """A 1x1 convolution as the equivalent linear layer (weights shared, not copied)."""
    if tuple(conv.kernel_size) != (1, 1) or tuple(conv.stride) != (1, 1) or conv.groups != 1:
        raise ValueError("expected a 1x1 convolution")
    linear = torch.nn.Linear(conv.in_channels, conv.out_channels, bias=conv.bias is not None)
    linear.weight = torch.nn.Parameter(conv.weight.detach().reshape(conv.out_channels, conv.in_channels),
                                       requires_grad=False)
    if conv.bias is not None:
        linear.bias = torch.nn.Parameter(conv.bias.detach(), requires_grad=False)
    return linear


def _pool(x: torch.Tensor, stride: tuple[int, int] | None) -> torch.Tensor:
    """Max-pool a channels-last (B, H, W, C) map by ``stride`` (``do_pool`` in transformers)."""
    if stride is None:
        return x
    x = F.max_pool2d(x.permute(0, 3, 1, 2), kernel_size=stride, stride=stride)
    return x.permute(0, 2, 3, 1)


def _partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * windows, window, window, C), zero-padded to whole windows."""
    batch, height, width, channels = x.shape
    pad_h, pad_w = (-height) % window, (-width) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = height + pad_h, width + pad_w
    x = x.view(batch, hp // window, window, wp // window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, channels)


def _unpartition(windows: torch.Tensor, window: int, padded: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    hp, wp = padded
    batch = windows.shape[0] // ((hp // window) * (wp // window))
    x = windows.view(batch, hp // window, wp // window, window, window, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, hp, wp, -1)
    if hp != size[0] or wp != size[1]:
        x = x[:, : size[0], : size[1], :]
    return x.contiguous()
