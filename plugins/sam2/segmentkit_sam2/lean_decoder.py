"""SAM 2's mask decoder, rewritten for a cached image: the same weights and maths as
transformers' ``Sam2MaskDecoder``, with the work that does not depend on the prompt done
once per image (or once per model) instead of once per prompt.

What moves out of the per-prompt path:

- per model: the positional terms of the image-side projections (``pos @ W + b``), and
  the weights of both transposed convolutions laid out as plain matrices;
- per image (:class:`DecoderImage`, made on first use of an embedding): the image tokens
  with the no-mask embedding added, the three first-layer projections that read only them
  (token-to-image keys and values, image-to-token queries), and the high-res features in
  the "sub-pixel" layout described below.

The 2x2 stride-2 transposed convolutions are matrix products whose outputs stay in
sub-pixel order ``(y, x, dy, dx, c)``: the high-res features are stored in that order, so
the residual add is the product's accumulator (``addmm``) and no image-size tensor is ever
permuted; only the final 4-channel masks are reordered to ``(4y + 2dy1 + dy2, ...)``.
The image stream is processed a few prompts at a time so its tensors stay in cache.
Results equal the transformers decoder up to float rounding (tests hold mask IoU >= 0.99
and IoU scores within 1e-4 against it).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F

_CHUNK_ELEMENTS = 4 * 2**20  # image-stream floats per chunk of prompts (~16 MB: stays in cache)


@dataclass(frozen=True)
class DecoderImage:
    """The prompt-independent decoder inputs of one image (no mask prompt)."""

    src: torch.Tensor  # (L, C) image tokens + no-mask embedding
    first_kvq: torch.Tensor  # (L, 3 * Ci) layer-0 token-to-image keys | values | image-to-token queries
    feat_s1: torch.Tensor  # (L, 4 * C/4) high-res features 1 + conv1 bias, sub-pixel order
    feat_s0: torch.Tensor  # (4 * L, 4 * C/8) high-res features 0 + conv2 bias, sub-pixel order


class LeanMaskDecoder:
    """Decodes prompt embeddings against cached image features; see the module docstring."""

    def __init__(self, model: torch.nn.Module, image_pe: torch.Tensor, *, gemm_dtype: torch.dtype = torch.float32):
        decoder = model.mask_decoder
        self.gemm_dtype = gemm_dtype
        self.decoder = decoder
        self.no_mask = model.prompt_encoder.no_mask_embed.weight  # (1, C)
        self.mask_embed = model.prompt_encoder.mask_embed
        config = decoder.config
        self.heads = int(config.num_attention_heads)
        self.num_mask_tokens = int(decoder.num_mask_tokens)
        self.stability = (bool(config.dynamic_multimask_via_stability),
                          float(config.dynamic_multimask_stability_delta),
                          float(config.dynamic_multimask_stability_thresh))
        self.grid = tuple(int(s) for s in image_pe.shape[-2:])
        with torch.inference_mode():
            self.pos = image_pe[0].flatten(1).t().contiguous()  # (L, C)
            self.output_tokens = torch.cat(
                [decoder.obj_score_token.weight, decoder.iou_token.weight, decoder.mask_tokens.weight]
            )
            layers = decoder.transformer.layers
            self._layer_weights = [self._image_side_weights(layer) for layer in layers]
            final = decoder.transformer.final_attn_token_to_image
            self._final_kv = (torch.cat([final.k_proj.weight, final.v_proj.weight]).t().to(gemm_dtype).contiguous(),
                              torch.cat([self.pos @ final.k_proj.weight.t() + final.k_proj.bias,
                                         final.v_proj.bias.expand(self.pos.shape[0], -1)], dim=1).contiguous())
            self._conv1 = _subpixel_weight(decoder.upscale_conv1).to(gemm_dtype)
            self._conv2 = _subpixel_weight(decoder.upscale_conv2).to(gemm_dtype)
            self._image_out = [layer.cross_attn_image_to_token.o_proj.weight.t().to(gemm_dtype).contiguous()
                               for layer in layers]
        self._images: weakref.WeakKeyDictionary[object, DecoderImage] = weakref.WeakKeyDictionary()

    def _image_side_weights(self, layer: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """One GEMM for a layer's image-side projections: keys @ [Wk | Wv | Wq] + [pos Wk + bk | bv | pos Wq + bq]
        (token-to-image keys and values, image-to-token queries)."""
        t2i, i2t = layer.cross_attn_token_to_image, layer.cross_attn_image_to_token
        weight = torch.cat([t2i.k_proj.weight, t2i.v_proj.weight, i2t.q_proj.weight]).t().to(self.gemm_dtype).contiguous()
        pos = self.pos
        bias = torch.cat([pos @ t2i.k_proj.weight.t() + t2i.k_proj.bias, t2i.v_proj.bias.expand(pos.shape[0], -1),
                          pos @ i2t.q_proj.weight.t() + i2t.q_proj.bias], dim=1).contiguous()
        return weight, bias

    # ------------------------------------------------------------------ per image

    def image(self, key: object, embedding: torch.Tensor, high_res: tuple[torch.Tensor, torch.Tensor]) -> DecoderImage:
        """The cached :class:`DecoderImage` of ``key`` (an ``ImageFeatures``), made on first use."""
        cached = self._images.get(key)
        if cached is None:
            with torch.inference_mode():
                cached = self._prepare(embedding, high_res)
            self._images[key] = cached
        return cached

    def _prepare(self, embedding: torch.Tensor, high_res: tuple[torch.Tensor, torch.Tensor]) -> DecoderImage:
        src = (embedding[0].flatten(1).t() + self.no_mask).contiguous()
        weight, bias = self._layer_weights[0]
        conv1_bias = self.decoder.upscale_conv1.bias
        conv2_bias = self.decoder.upscale_conv2.bias
        return DecoderImage(
            src=src,
            first_kvq=self._gemm(bias, src, weight),
            feat_s1=_to_subpixel(high_res[1][0], 1) + conv1_bias.repeat(4),
            feat_s0=_to_subpixel(high_res[0][0], 2) + conv2_bias.repeat(4),
        )

    # ------------------------------------------------------------------ per prompt

    def __call__(self, image: DecoderImage, sparse: torch.Tensor, dense: torch.Tensor | None,
                 *, multimask: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse prompt embeddings (N, K, C) and optional dense ones (N, C, h, w) -> low-res
        logits (N, M, 4h, 4w) and predicted IoU (N, M); M is 3 with ``multimask``, else 1."""
        with torch.inference_mode():
            keys, hyper, iou = self._transformer(image, sparse, dense)
            return self._select(self._upscale_and_mask(image, keys, hyper), iou, multimask)

    def candidates_above(self, image: DecoderImage, sparse: torch.Tensor, min_iou: float
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The multimask candidates whose predicted IoU is above ``min_iou`` (the automatic
        generator's first filter): low-res logits (K, 4h, 4w), IoU (K,) and the prompt each
        came from (K,), in prompt-then-candidate order. The IoU head reads only the tokens,
        so the upscaling runs only for prompts with a candidate above the threshold."""
        with torch.inference_mode():
            keys, hyper, iou = self._transformer(image, sparse, None)
            iou = iou[:, 1:]
            keep = iou > min_iou
            rows = keep.any(dim=1).nonzero().flatten()
            masks = self._upscale_and_mask(image, keys[rows], hyper[rows, 1:])
            kept = keep[rows]
            return masks[kept], iou[keep], rows.repeat_interleave(kept.sum(dim=1))

    def _transformer(self, image: DecoderImage, sparse: torch.Tensor, dense: torch.Tensor | None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The two-way transformer: image tokens after it (N, L, C), the mask tokens' hypernetwork
        outputs (N, 4, C/8) and the predicted IoU of the 4 mask tokens (N, 4)."""
        dec = self.decoder
        transformer = dec.transformer
        n = sparse.shape[0]
        tokens = torch.cat([self.output_tokens.expand(n, -1, -1), sparse.to(self.output_tokens.dtype)], dim=1)
        point_pe = tokens
        if dense is None:
            src = image.src.expand(n, -1, -1)
            ci = image.first_kvq.shape[-1] // 3
            # keys | values (L, 2 Ci) shared by every prompt; queries expanded to (N, L, Ci)
            first = (image.first_kvq[:, :2 * ci], image.first_kvq[:, 2 * ci:].expand(n, -1, -1))
        else:  # a mask prompt: the image tokens differ per prompt, so no shared first-layer work
            src = image.src - self.no_mask + dense.flatten(2).transpose(1, 2)
            weight, bias = self._layer_weights[0]
            first = _split_kvq(self._gemm(bias, src, weight))
        queries, keys = tokens, src
        for index, layer in enumerate(transformer.layers):
            if index == 0:
                kv, image_q = first
            else:
                weight, bias = self._layer_weights[index]
                kv, image_q = _split_kvq(self._gemm(bias, keys, weight))
            queries, keys = self._block(layer, index, queries, keys, point_pe, kv, image_q)
        final = transformer.final_attn_token_to_image
        weight, bias = self._final_kv
        keys = keys.to(self.gemm_dtype)  # read twice: by the final projections and by the upscaling
        kv = self._gemm(bias, keys, weight)
        queries = queries + self._token_to_image(final, queries + point_pe, kv)
        queries = transformer.layer_norm_final_attn(queries)

        iou = dec.iou_prediction_head(queries[:, 1])
        mask_tokens = queries[:, 2:2 + self.num_mask_tokens]
        hyper = torch.stack([mlp(mask_tokens[:, i]) for i, mlp in enumerate(dec.output_hypernetworks_mlps)], dim=1)
        return keys, hyper, iou

    def _block(self, layer, index: int, queries, keys, point_pe, kv, image_q):
        """One two-way attention block (transformers' ``Sam2TwoWayAttentionBlock``)."""
        if index == 0:  # skip_first_layer_pe: the self-attention output replaces the queries
            queries = layer.self_attn(query=queries[:, None], key=queries[:, None], value=queries[:, None])[0][:, 0]
        else:
            q = (queries + point_pe)[:, None]
            queries = queries + layer.self_attn(query=q, key=q, value=queries[:, None])[0][:, 0]
        queries = layer.layer_norm1(queries)
        queries = layer.layer_norm2(queries + self._token_to_image(layer.cross_attn_token_to_image,
                                                                   queries + point_pe, kv))
        queries = layer.layer_norm3(queries + layer.mlp(queries))
        keys = layer.layer_norm4(keys + self._image_to_token(layer.cross_attn_image_to_token, index, image_q,
                                                             queries + point_pe, queries))
        return queries, keys

    def _token_to_image(self, attn, query: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        """Tokens (N, T, C) attend to image keys | values already projected: (N, L, 2 Ci), or
        (L, 2 Ci) shared by all N (then the N x T queries run as one sequence: same result)."""
        n, t, _ = query.shape
        ci = kv.shape[-1] // 2
        h, d = self.heads, ci // self.heads
        b = n if kv.dim() == 3 else 1
        q = F.linear(query, attn.q_proj.weight, attn.q_proj.bias).reshape(b, -1, h, d).transpose(1, 2)
        k = kv[..., :ci].reshape(b, -1, h, d).transpose(1, 2)
        v = kv[..., ci:].reshape(b, -1, h, d).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, scale=attn.scaling)
        return attn.o_proj(out.transpose(1, 2).reshape(n, t, ci))

    def _image_to_token(self, attn, index: int, image_q: torch.Tensor, key: torch.Tensor,
                        value: torch.Tensor) -> torch.Tensor:
        """Image queries (N, L, Ci), already projected, attend to the T tokens."""
        n, length, ci = image_q.shape
        h, d = self.heads, ci // self.heads
        q = image_q.view(n, length, h, d).transpose(1, 2)
        k = F.linear(key, attn.k_proj.weight, attn.k_proj.bias).view(n, -1, h, d).transpose(1, 2)
        v = F.linear(value, attn.v_proj.weight, attn.v_proj.bias).view(n, -1, h, d).transpose(1, 2)
        # scores as (N, h, T, L): softmax over the short token axis runs along rows of L values,
        # several times faster on CPU than torch.softmax over a last axis of a few elements
        scores = torch.matmul(k, q.transpose(-1, -2)).mul_(attn.scaling)
        scores = scores.sub_(scores.amax(dim=-2, keepdim=True)).exp_()
        weights = scores.div_(scores.sum(dim=-2, keepdim=True))
        out = torch.matmul(weights.transpose(-1, -2), v).transpose(1, 2).reshape(n, length, ci)
        return self._gemm(attn.o_proj.bias, out, self._image_out[index])

    def _gemm(self, bias: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``bias + x @ weight`` for (L, K) or (N, L, K) ``x``; in fp32 the bias is the GEMM's
        accumulator, in bf16 the product runs on bf16 inputs and is added in fp32."""
        if self.gemm_dtype == torch.float32:
            if x.dim() == 2:
                return torch.addmm(bias, x, weight)
            return torch.baddbmm(bias, x, weight.expand(x.shape[0], -1, -1))
        return torch.matmul(x.to(self.gemm_dtype), weight).float().add_(bias)

    def _upscale_and_mask(self, image: DecoderImage, keys: torch.Tensor, hyper: torch.Tensor) -> torch.Tensor:
        """Both transposed convolutions + GELU + product with each prompt's M hypernetwork
        outputs (N, M, C/8) -> (N, M, 4h, 4w), a chunk of prompts at a time."""
        dec = self.decoder
        n, length, _ = keys.shape
        outputs = hyper.shape[1]
        gh, gw = self.grid
        c1 = image.feat_s1.shape[1] // 4
        c2 = image.feat_s0.shape[1] // 4
        ln = dec.upscale_layer_norm
        chunk = max(1, _CHUNK_ELEMENTS // (16 * length * c2))
        out = torch.empty(n, outputs, 16 * length, dtype=hyper.dtype, device=keys.device)
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            m = e - s
            up = self._gemm(image.feat_s1, keys[s:e], self._conv1)  # (m, L, 4*c1)
            up = F.gelu(F.layer_norm(up.view(m, length, 4, c1), (c1,), ln.weight, ln.bias, ln.eps))
            up = self._gemm(image.feat_s0, up.view(m, length * 4, c1), self._conv2)  # (m, 4L, 4*c2)
            up = F.gelu(up).view(m, 16 * length, c2)
            torch.bmm(hyper[s:e], up.transpose(1, 2), out=out[s:e])
        # sub-pixel order (y, x, dy1, dx1, dy2, dx2) -> rows 4y + 2 dy1 + dy2, columns 4x + 2 dx1 + dx2
        out = out.view(n, outputs, gh, gw, 2, 2, 2, 2).permute(0, 1, 2, 4, 6, 3, 5, 7)
        return out.reshape(n, outputs, 4 * gh, 4 * gw)

    def _select(self, masks: torch.Tensor, iou: torch.Tensor, multimask: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """transformers' choice of outputs: the 3 candidates, or the single-mask token with SAM 2's
        fallback to the best candidate when its stability is low."""
        if multimask:
            return masks[:, 1:], iou[:, 1:]
        dynamic, delta, threshold = self.stability
        if not dynamic:
            return masks[:, :1], iou[:, :1]
        single = masks[:, 0]
        flat = single.flatten(1)
        inter = (flat > delta).sum(dim=1).float()
        union = (flat > -delta).sum(dim=1).float()
        stable = torch.where(union > 0, inter / union, torch.ones_like(union)) >= threshold
        best = iou[:, 1:].argmax(dim=1) + 1
        rows = torch.arange(masks.shape[0], device=masks.device)
        chosen = torch.where(stable, torch.zeros_like(best), best)
        return masks[rows, chosen][:, None], iou[rows, chosen][:, None]


def _split_kvq(kvq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Views of keys | values and of queries in a fused image-side projection."""
    ci = kvq.shape[-1] // 3
    return kvq[..., :2 * ci], kvq[..., 2 * ci:]


def _subpixel_weight(conv: torch.nn.ConvTranspose2d) -> torch.Tensor:
    """A 2x2 stride-2 transposed convolution's weight (Cin, Cout, 2, 2) as a (Cin, 4 * Cout)
    matrix whose columns run (dy, dx, cout)."""
    weight = conv.weight
    if tuple(weight.shape[-2:]) != (2, 2) or tuple(conv.stride) != (2, 2):
        raise ValueError("expected SAM's 2x2, stride-2 transposed convolutions")
    return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1).contiguous()


def _to_subpixel(feature: torch.Tensor, levels: int) -> torch.Tensor:
    """(C, H, W) with H = 2^levels * h -> rows (y, x, [dy, dx] per level but the last) and
    columns (dy, dx, c) of the last level, matching the transposed convolutions' products."""
    c, height, width = feature.shape
    scale = 2**levels
    h, w = height // scale, width // scale
    # row = y * scale + sum_k dy_k * 2^(levels-1-k); split each axis into (y, dy_1, ..., dy_levels)
    x = feature.reshape(c, h, *([2] * levels), w, *([2] * levels))
    dims_y = list(range(1, 2 + levels))  # y, dy_1..dy_levels
    dims_x = list(range(2 + levels, 3 + 2 * levels))  # x, dx_1..dx_levels
    order = [dims_y[0], dims_x[0]]
    for k in range(1, levels + 1):
        order += [dims_y[k], dims_x[k]]
    order.append(0)  # channels last
    x = x.permute(*order)
    rows = h * w * 4 ** (levels - 1)
    return x.reshape(rows, 4 * c).contiguous()

