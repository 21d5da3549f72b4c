"""RepViT, EdgeTAM's image backbone, in our own code: no timm (whose import needs torchvision).

transformers builds EdgeTAM's backbone as ``TimmWrapperModel`` around timm's features-only
``repvit_*`` model. :class:`RepVitBackbone` is a drop-in for it: the same module tree and
parameter names (``timm_model.stem.*``, ``timm_model.stages_<i>.*``, as timm's
``FeatureListNet`` flattens ``stages``), so a hub checkpoint's
``vision_encoder.backbone.*`` tensors load unchanged, and the same output (the four stage
maps, NCHW, as ``last_hidden_state``). :func:`register` makes transformers build it for a
:class:`RepVitConfig`; :func:`timm_free_vision_config` puts one in place of the checkpoint's
``timm_wrapper`` backbone config.

:class:`FusedRepVit` is the inference form: every convolution's batch norm folded into
its weights, and RepViT's three-branch depthwise token mixer (kxk, 1x1, identity) folded
into one kxk depthwise convolution, as RepViT's authors re-parameterise it for deployment.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from segmentkit.runtime.fused_linear import FusedLinear
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig

MODEL_TYPE = "segmentkit_repvit"

# timm's registered variants: stage widths, stage depths, legacy token mixer (1x1 branch with batch norm).
VARIANTS: dict[str, tuple[tuple[int, ...], tuple[int, ...], bool]] = {
    "repvit_m1": ((48, 96, 192, 384), (2, 2, 14, 2), True),
    "repvit_m2": ((64, 128, 256, 512), (2, 2, 12, 2), True),
    "repvit_m3": ((64, 128, 256, 512), (4, 4, 18, 2), True),
    "repvit_m0_9": ((48, 96, 192, 384), (2, 2, 14, 2), False),
    "repvit_m1_0": ((56, 112, 224, 448), (2, 2, 14, 2), False),
    "repvit_m1_1": ((64, 128, 256, 512), (2, 2, 12, 2), False),
    "repvit_m1_5": ((64, 128, 256, 512), (4, 4, 24, 4), False),
    "repvit_m2_3": ((80, 160, 320, 640), (6, 6, 34, 2), False),
}
# model_args keys of a timm_wrapper config that change the network, and those that must hold.
_ARGS = ("embed_dim", "depth", "legacy", "mlp_ratio", "kernel_size", "in_chans", "out_indices")
_FIXED = {"features_only": True}


class RepVitConfig(PretrainedConfig):
    """The backbone part of an EdgeTAM vision config, read from timm's ``architecture`` + ``model_args``."""

    model_type = MODEL_TYPE

    def __init__(self, architecture: str = "repvit_m1", model_args: dict[str, Any] | None = None, **kwargs: Any):
        self.architecture = architecture
        self.model_args = dict(model_args or {})
        super().__init__(**kwargs)

    def layout(self) -> dict[str, Any]:
        """Widths, depths and options of the network (the variant's, overridden by ``model_args``)."""
        name = self.architecture.split(".")[0].removeprefix("timm/")
        if name not in VARIANTS:
            raise ValueError(f"unsupported RepViT architecture {self.architecture!r}: one of {', '.join(VARIANTS)}")
        unknown = sorted(set(self.model_args) - set(_ARGS) - set(_FIXED))
        wrong = [k for k, v in _FIXED.items() if self.model_args.get(k, v) != v]
        if unknown or wrong:
            raise ValueError(f"unsupported RepViT model_args {unknown + wrong} (supported: {', '.join(_ARGS)})")
        embed_dim, depth, legacy = VARIANTS[name]
        layout = dict(embed_dim=embed_dim, depth=depth, legacy=legacy, mlp_ratio=2, kernel_size=3, in_chans=3,
                      out_indices=(0, 1, 2, 3))
        layout.update({k: v for k, v in self.model_args.items() if k in _ARGS})
        return layout


def timm_free_vision_config(vision_config: dict[str, Any]) -> dict[str, Any]:
    """``vision_config`` (a dict) with its ``timm_wrapper`` backbone config replaced by a :class:`RepVitConfig`."""
    backbone = dict(vision_config.get("backbone_config") or {})
    if backbone.get("model_type", "timm_wrapper") not in ("timm_wrapper", MODEL_TYPE):
        raise ValueError(f"EdgeTAM backbone config has model_type {backbone.get('model_type')!r}, "
                         "expected timm_wrapper")
    register()
    config = RepVitConfig(architecture=backbone.get("architecture", "repvit_m1"),
                          model_args=backbone.get("model_args"))
    config.layout()  # fail early on an unsupported variant
    # without a model_type, EdgeTamVideoConfig would read the vision part as SAM 2's (Hiera widths)
    return {"model_type": "edgetam_vision_model", **vision_config, "backbone_config": config}


def register() -> None:
    """Let ``AutoModel.from_config`` build :class:`RepVitBackbone` for a :class:`RepVitConfig` (idempotent)."""
    AutoConfig.register(MODEL_TYPE, RepVitConfig, exist_ok=True)
    AutoModel.register(RepVitConfig, RepVitBackbone, exist_ok=True)


# ---------------------------------------------------------------------------- the module tree


class _ConvNorm(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1):
        super().__init__()
        self.c = nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)


class _TokenMixer(nn.Module):
    """Depthwise kxk conv + depthwise 1x1 + identity (then a batch norm unless ``legacy``)."""

    def __init__(self, dim: int, kernel: int, legacy: bool):
        super().__init__()
        self.conv = _ConvNorm(dim, dim, kernel, groups=dim)
        self.conv1 = _ConvNorm(dim, dim, 1, groups=dim) if legacy else nn.Conv2d(dim, dim, 1, groups=dim)
        self.bn = nn.Identity() if legacy else nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x) + self.conv1(x) + x)


class _SqueezeExcite(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        reduced = max(8, int(dim * 0.25 + 4) // 8 * 8)  # timm's make_divisible(dim / 4, 8)
        self.fc1 = nn.Conv2d(dim, reduced, 1)
        self.fc2 = nn.Conv2d(reduced, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.conv1 = _ConvNorm(dim, hidden)
        self.conv2 = _ConvNorm(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.gelu(self.conv1(x)))


class _Block(nn.Module):
    def __init__(self, dim: int, mlp_ratio: int, kernel: int, se: bool, legacy: bool):
        super().__init__()
        self.token_mixer = _TokenMixer(dim, kernel, legacy)
        self.se = _SqueezeExcite(dim) if se else nn.Identity()
        self.channel_mixer = _Mlp(dim, dim * mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.se(self.token_mixer(x))
        return x + self.channel_mixer(x)


class _Stem(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = _ConvNorm(cin, cout // 2, 3, 2)
        self.conv2 = _ConvNorm(cout // 2, cout, 3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.gelu(self.conv1(x)))


class _Downsample(nn.Module):
    def __init__(self, cin: int, cout: int, mlp_ratio: int, kernel: int, legacy: bool):
        super().__init__()
        self.pre_block = _Block(cin, mlp_ratio, kernel, False, legacy)
        self.spatial_downsample = _ConvNorm(cin, cin, kernel, 2, groups=cin)
        self.channel_downsample = _ConvNorm(cin, cout)
        self.ffn = _Mlp(cout, cout * mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.channel_downsample(self.spatial_downsample(self.pre_block(x)))
        return x + self.ffn(x)


class _Stage(nn.Module):
    def __init__(self, cin: int, cout: int, depth: int, mlp_ratio: int, kernel: int, downsample: bool, legacy: bool):
        super().__init__()
        self.downsample = _Downsample(cin, cout, mlp_ratio, kernel, legacy) if downsample else nn.Identity()
        # squeeze-excitation on every other block, starting with the first
        self.blocks = nn.Sequential(*(_Block(cout, mlp_ratio, kernel, i % 2 == 0, legacy) for i in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class _Features(nn.Module):
    """timm's features-only RepViT: the stem and ``stages_<i>`` up to the last requested stage."""

    def __init__(self, layout: dict[str, Any]):
        super().__init__()
        widths, depths = tuple(layout["embed_dim"]), tuple(layout["depth"])
        self.out_indices = tuple(int(i) for i in layout["out_indices"])
        self.stem = _Stem(int(layout["in_chans"]), widths[0])
        cin = widths[0]
        for i in range(max(self.out_indices) + 1):
            stage = _Stage(cin, widths[i], depths[i], int(layout["mlp_ratio"]), int(layout["kernel_size"]),
                           i > 0, bool(layout["legacy"]))
            self.add_module(f"stages_{i}", stage)
            cin = widths[i]

    def stages(self) -> list[_Stage]:
        return [getattr(self, f"stages_{i}") for i in range(max(self.out_indices) + 1)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        out = []
        for i, stage in enumerate(self.stages()):
            x = stage(x)
            if i in self.out_indices:
                out.append(x)
        return out


class RepVitBackbone(nn.Module):
    """Stand-in for transformers' ``TimmWrapperModel`` around a features-only RepViT."""

    config_class = RepVitConfig

    def __init__(self, config: RepVitConfig):
        super().__init__()
        self.config = config
        self.timm_model = _Features(config.layout())

    @classmethod
    def _from_config(cls, config: RepVitConfig, **_: Any) -> RepVitBackbone:
        return cls(config)

    def forward(self, pixel_values: torch.Tensor, **_: Any) -> SimpleNamespace:
        return SimpleNamespace(last_hidden_state=self.timm_model(pixel_values), hidden_states=None)


# ---------------------------------------------------------------------------- inference form


def _fold(conv_norm: _ConvNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of the convolution with its batch norm folded in."""
    bn = conv_norm.bn
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return conv_norm.c.weight * scale[:, None, None, None], bn.bias - bn.running_mean * scale


class _Conv:
    """One folded kxk convolution on NHWC maps (run as a channels-last NCHW convolution)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, template: nn.Conv2d, dtype: torch.dtype):
        self.weight = weight.detach().to(dtype).contiguous(memory_format=torch.channels_last)
        self.bias = bias.detach().to(dtype).contiguous()
        self.stride, self.padding, self.groups = template.stride, template.padding, template.groups

    @classmethod
    def of(cls, conv_norm: _ConvNorm, dtype: torch.dtype) -> _Conv:
        return cls(*_fold(conv_norm), conv_norm.c, dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # (1, H, W, C) -> (1, H', W', C')
        out = F.conv2d(x.permute(0, 3, 1, 2), self.weight, self.bias, self.stride, self.padding, 1, self.groups)
        return out.permute(0, 2, 3, 1)


def _pointwise(conv_norm: _ConvNorm, dtype: torch.dtype, onednn: bool | None) -> FusedLinear:
    """One folded 1x1 convolution as a linear layer on NHWC maps (GELU or a residual add fused
    into oneDNN's kernel where it runs on this CPU)."""
    weight, bias = _fold(conv_norm)
    return FusedLinear(weight.flatten(1), bias, dtype, fused=onednn)


def _fold_mixer(mixer: _TokenMixer, dtype: torch.dtype) -> _Conv:
    """kxk + 1x1 + identity (+ batch norm) as one depthwise kxk convolution."""
    weight, bias = _fold(mixer.conv)
    if isinstance(mixer.conv1, _ConvNorm):
        w1, b1 = _fold(mixer.conv1)
    else:
        w1, b1 = mixer.conv1.weight, mixer.conv1.bias
    centre = weight.shape[-1] // 2
    weight = weight.clone()
    weight[:, :, centre, centre] += w1[:, :, 0, 0] + 1.0
    bias = bias + b1
    if isinstance(mixer.bn, nn.BatchNorm2d):
        bn = mixer.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        weight = weight * scale[:, None, None, None]
        bias = (bias - bn.running_mean) * scale + bn.bias
    return _Conv(weight, bias, mixer.conv.c, dtype)


class _FusedMlp:
    def __init__(self, mlp: _Mlp, dtype: torch.dtype, onednn: bool | None):
        self.up = _pointwise(mlp.conv1, dtype, onednn)
        self.down = _pointwise(mlp.conv2, dtype, onednn)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # x + mlp(x)
        return self.down(self.up(x, gelu=True), add=x)


class _FusedBlock:
    def __init__(self, block: _Block, dtype: torch.dtype, onednn: bool | None):
        self.mixer = _fold_mixer(block.token_mixer, dtype)
        se = block.se
        self.se = None if isinstance(se, nn.Identity) else tuple(
            (m.weight.detach().flatten(1).to(dtype), m.bias.detach().to(dtype)) for m in (se.fc1, se.fc2))
        self.mlp = _FusedMlp(block.channel_mixer, dtype, onednn)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mixer(x).contiguous()
        if self.se is not None:
            (w1, b1), (w2, b2) = self.se
            gate = torch.sigmoid(F.linear(F.relu(F.linear(x.reshape(-1, x.shape[-1]).mean(0), w1, b1)), w2, b2))
            x = x * gate
        return self.mlp(x)


class FusedRepVit:
    """Inference-only RepViT on a :class:`RepVitBackbone`'s weights: batch norms folded, NHWC
    maps, 1x1 convolutions as oneDNN linear layers with fused GELU / residual add, every
    operation in ``dtype``. Returns the same stage maps (NCHW views of NHWC memory, in ``dtype``)."""

    def __init__(self, backbone: RepVitBackbone, dtype: torch.dtype = torch.float32, *, onednn: bool | None = None):
        features = backbone.timm_model
        self.out_indices = features.out_indices
        self.dtype = dtype
        with torch.no_grad():
            self.stem = (_Conv.of(features.stem.conv1, dtype), _Conv.of(features.stem.conv2, dtype))
            self.stages = []
            for stage in features.stages():
                down = stage.downsample
                downsample = None if isinstance(down, nn.Identity) else (
                    _FusedBlock(down.pre_block, dtype, onednn), _Conv.of(down.spatial_downsample, dtype),
                    _pointwise(down.channel_downsample, dtype, onednn), _FusedMlp(down.ffn, dtype, onednn))
                self.stages.append((downsample, [_FusedBlock(b, dtype, onednn) for b in stage.blocks]))

    def __call__(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        x = pixel_values.to(self.dtype).permute(0, 2, 3, 1)
        x = self.stem[1](F.gelu(self.stem[0](x)))
        out = []
        for i, (downsample, blocks) in enumerate(self.stages):
            if downsample is not None:
                pre, spatial, channel, ffn = downsample
                x = ffn(channel(spatial(pre(x)).contiguous()))
            for block in blocks:
                x = block(x)
            if i in self.out_indices:
                out.append(x.permute(0, 3, 1, 2))
        return out
