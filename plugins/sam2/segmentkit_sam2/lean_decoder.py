"""SAM 2's mask decoder, rewritten for a cached image: the same weights and maths as
transformers' ``Sam2MaskDecoder``, arranged so that a prompt costs about half the
multiply-adds (the decoder is what every click and every automatic-mask grid point pays).

- Per image (:class:`DecoderImage`, made with the embedding and cached with it): the image tokens
  with the no-mask embedding added, the three first-layer projections that read only them
  (token-to-image keys and values, image-to-token queries; per head, in the layouts the
  prompts' products read, so no click copies them), and the high-res features in the
  "sub-pixel" layout below.
- Cross-attention with the projections moved to the token side: a few dozen token rows
  (tokens x heads) meet the L image tokens directly, instead of projecting all L image
  tokens per prompt ((q Wk) . x for q . (x Wk^T), (weights @ x) Wv^T for weights @ (x Wv^T),
  and the output projection applied to the token values before the weighted sum). The image
  tokens' residual is the accumulator of the image-to-token product, and that attention's
  output bias rides on the token values (each head's weights sum to 1 over the tokens), so no
  separate pass over the L x C tokens adds either.
- The 2x2 stride-2 transposed convolutions are matrix products whose outputs stay in
  sub-pixel order ``(y, x, dy, dx, c)``: the high-res features are stored in that order, so
  the residual add is the product's accumulator and no image-size tensor is permuted; the
  output choice counts pixels in sub-pixel order, and only the chosen masks are reordered.
- Prompts run one (or a few) at a time: one prompt's image stream (L x C floats) stays in
  the CPU's cache through the transformer's memory-bound passes (adds, layer norms,
  softmax); a 64-prompt batch ran 1.7x faster this way than all at once.
- ``gemm_dtype=torch.bfloat16`` runs the image-side products on bf16 inputs with fp32
  accumulation and fp32 everywhere else.

Results equal the transformers decoder up to float rounding (tests compare raw logits and
IoU scores against it, with random biases so that every bias term counts).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

_CHUNK_ELEMENTS = 4 * 2**20  # floats per chunk of prompts' image streams (16 MB: stays in cache)


@dataclass(frozen=True)
class DecoderImage:
    """The prompt-independent decoder inputs of one image (no mask prompt)."""

    src: torch.Tensor  # (L, C) image tokens + no-mask embedding
    first_k: torch.Tensor  # (H, L, d) layer-0 token-to-image keys, per head
    first_v: torch.Tensor  # (H, L, d) layer-0 token-to-image values, per head
    first_q: torch.Tensor  # (H, d, L) layer-0 image-to-token queries, per head, transposed for the scores
    feat_s1: torch.Tensor  # (L, 4 * C/4) high-res features 1 + conv1 bias, sub-pixel order
    feat_s0: torch.Tensor  # (4 * L, 4 * C/8) high-res features 0 + conv2 bias, sub-pixel order

    @property
    def nbytes(self) -> int:
        held = (self.src, self.first_k, self.first_v, self.first_q, self.feat_s1, self.feat_s0)
        return sum(t.numel() * t.element_size() for t in held)


class LeanMaskDecoder:
    """Decodes prompt embeddings against cached image features; see the module docstring."""

    def __init__(self, model: torch.nn.Module, image_pe: torch.Tensor, *, gemm_dtype: torch.dtype = torch.float32):
        decoder = model.mask_decoder
        self.gemm_dtype = gemm_dtype
        self.decoder = decoder
        self.no_mask = model.prompt_encoder.no_mask_embed.weight  # (1, C)
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
            self._first_layer = self._image_side_weights(decoder.transformer.layers[0])
            self._conv1 = _subpixel_weight(decoder.upscale_conv1).to(gemm_dtype)
            self._conv2 = _subpixel_weight(decoder.upscale_conv2).to(gemm_dtype)

    def _image_side_weights(self, layer: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """One GEMM for the image-side projections of shared image tokens x: x @ [Wk | Wv | Wq]
        + [pos Wk + bk | bv | pos Wq + bq] (token-to-image keys and values, image-to-token queries)."""
        t2i, i2t = layer.cross_attn_token_to_image, layer.cross_attn_image_to_token
        weight = (torch.cat([t2i.k_proj.weight, t2i.v_proj.weight, i2t.q_proj.weight]).t()
                  .to(self.gemm_dtype).contiguous())
        pos = self.pos
        bias = torch.cat([pos @ t2i.k_proj.weight.t() + t2i.k_proj.bias, t2i.v_proj.bias.expand(pos.shape[0], -1),
                          pos @ i2t.q_proj.weight.t() + i2t.q_proj.bias], dim=1).contiguous()
        return weight, bias

    # ------------------------------------------------------------------ per image

    def prepare(self, embedding: torch.Tensor, high_res: tuple[torch.Tensor, torch.Tensor]) -> DecoderImage:
        """The per-image decoder inputs of an embedding (1, C, h, w) and its high-res maps;
        kept with the embedding (``ImageFeatures.decoder_image``) so caches count them."""
        with torch.inference_mode():
            return self._prepare(embedding, high_res)

    def _prepare(self, embedding: torch.Tensor, high_res: tuple[torch.Tensor, torch.Tensor]) -> DecoderImage:
        src = (embedding[0].flatten(1).t() + self.no_mask).contiguous()
        weight, bias = self._first_layer
        conv1_bias = self.decoder.upscale_conv1.bias
        conv2_bias = self.decoder.upscale_conv2.bias
        length, h = src.shape[0], self.heads
        # per-head layouts the prompts' products read directly (no strided copy per click)
        k, v, q = self._gemm(bias, src, weight).view(length, 3, h, -1).permute(1, 2, 0, 3).unbind(0)
        return DecoderImage(
            src=src,
            first_k=k.contiguous(),
            first_v=v.contiguous(),
            first_q=q.transpose(1, 2).contiguous(),
            feat_s1=_to_subpixel(high_res[1][0], 1) + conv1_bias.repeat(4),
            feat_s0=_to_subpixel(high_res[0][0], 2) + conv2_bias.repeat(4),
        )

    # ------------------------------------------------------------------ per prompt

    def __call__(self, image: DecoderImage, sparse: torch.Tensor, dense: torch.Tensor | None,
                 *, multimask: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse prompt embeddings (N, K, C) and optional dense ones (N, C, h, w) -> low-res
        logits (N, M, 4h, 4w) and predicted IoU (N, M); M is 3 with ``multimask``, else 1."""
        masks, ious = [], []
        with torch.inference_mode():
            for rows in self._chunks(sparse.shape[0]):
                keys, hyper, iou = self._transformer(image, sparse[rows], None if dense is None else dense[rows])
                masks.append(self._upscale_and_mask(image, keys, hyper))
                ious.append(iou)
            chosen, iou = self._select(torch.cat(masks), torch.cat(ious), multimask)
            return self._to_image(chosen), iou

    def candidates_above(self, image: DecoderImage, sparse: torch.Tensor, min_iou: float
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The multimask candidates whose predicted IoU is above ``min_iou`` (the automatic
        generator's first filter): low-res logits (K, 4h, 4w), IoU (K,) and the prompt each
        came from (K,), in prompt-then-candidate order. The IoU head reads only the tokens,
        so the upscaling runs only for prompts with a candidate above the threshold."""
        masks, ious, prompts = [], [], []
        with torch.inference_mode():
            for chunk in self._chunks(sparse.shape[0]):
                keys, hyper, iou = self._transformer(image, sparse[chunk], None)
                iou = iou[:, 1:]
                keep = iou > min_iou
                rows = keep.any(dim=1).nonzero().flatten()
                kept = keep[rows]
                masks.append(self._upscale_and_mask(image, keys[rows], hyper[rows, 1:])[kept])
                ious.append(iou[keep])
                prompts.append(rows.repeat_interleave(kept.sum(dim=1)) + chunk.start)
            return self._to_image(torch.cat(masks)[None])[0], torch.cat(ious), torch.cat(prompts)

    def _chunks(self, n: int) -> list[slice]:
        """Prompts a few at a time: each chunk's image-size activations stay in the CPU's cache
        (one prompt's image stream is L x C floats); the transformer's elementwise passes over
        them (adds, layer norms, softmax) are memory-bound otherwise."""
        step = max(1, _CHUNK_ELEMENTS // (self.pos.numel() * 4))
        return [slice(s, min(n, s + step)) for s in range(0, n, step)]

    def _transformer(self, image: DecoderImage, sparse: torch.Tensor, dense: torch.Tensor | None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The two-way transformer: image tokens after it (N, L, C), the mask tokens' hypernetwork
        outputs (N, 4, C/8) and the predicted IoU of the 4 mask tokens (N, 4)."""
        dec = self.decoder
        transformer = dec.transformer
        n = sparse.shape[0]
        tokens = torch.cat([self.output_tokens.expand(n, -1, -1), sparse.to(self.output_tokens.dtype)], dim=1)
        point_pe = tokens
        if dense is None:  # (L, C) image tokens and their first-layer projections, shared by every prompt
            keys, first = image.src, image
        else:  # a mask prompt: the image tokens differ per prompt, so nothing of the first layer is shared
            keys, first = image.src - self.no_mask + dense.flatten(2).transpose(1, 2), None
        queries = tokens
        for index, layer in enumerate(transformer.layers):
            queries, keys = self._block(layer, index, queries, keys, point_pe, first if index == 0 else None)
        final = transformer.final_attn_token_to_image
        queries = queries + self._token_to_image(final, queries + point_pe, *self._image_operands(keys))
        queries = transformer.layer_norm_final_attn(queries)

        iou = dec.iou_prediction_head(queries[:, 1])
        mask_tokens = queries[:, 2:2 + self.num_mask_tokens]
        hyper = torch.stack([mlp(mask_tokens[:, i]) for i, mlp in enumerate(dec.output_hypernetworks_mlps)], dim=1)
        return keys.to(self.gemm_dtype), hyper, iou

    def _image_operands(self, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The image tokens and image tokens + positions, in the products' dtype."""
        return keys.to(self.gemm_dtype), (keys + self.pos).to(self.gemm_dtype)

    def _block(self, layer, index: int, queries, keys, point_pe, first: DecoderImage | None):
        """One two-way attention block (transformers' ``Sam2TwoWayAttentionBlock``); ``first`` is
        the image whose cached first-layer projections apply (shared image tokens), else None."""
        if index == 0:  # skip_first_layer_pe: the self-attention output replaces the queries
            queries = layer.self_attn(query=queries[:, None], key=queries[:, None], value=queries[:, None])[0][:, 0]
        else:
            q = (queries + point_pe)[:, None]
            queries = queries + layer.self_attn(query=q, key=q, value=queries[:, None])[0][:, 0]
        queries = layer.layer_norm1(queries)
        t2i, i2t = layer.cross_attn_token_to_image, layer.cross_attn_image_to_token
        if first is not None:
            attended = self._token_to_projected_image(t2i, queries + point_pe, first.first_k, first.first_v)
            queries = layer.layer_norm2(queries + attended)
            queries = layer.layer_norm3(queries + layer.mlp(queries))
            scores = self._image_query_scores_projected(i2t, first.first_q, queries + point_pe)
        else:
            image, image_pos = self._image_operands(keys)
            queries = layer.layer_norm2(queries + self._token_to_image(t2i, queries + point_pe, image, image_pos))
            queries = layer.layer_norm3(queries + layer.mlp(queries))
            scores = self._image_query_scores(i2t, image_pos, queries + point_pe)
        keys = layer.layer_norm4(self._image_to_token(i2t, scores, queries, keys))
        return queries, keys

    # Attention with the image side reassociated: for T tokens, L image tokens and H heads,
    # (tokens @ W_h) @ image^T costs T*H*L*C multiply-adds where projecting the image first
    # (image @ W_h^T, then with the tokens) costs L*C*Ci. With T*H ~ 64 and Ci = 128 this
    # halves the image-side work; the maths is the same up to float rounding.

    def _token_to_image(self, attn, query: torch.Tensor, image: torch.Tensor, image_pos: torch.Tensor) -> torch.Tensor:
        """Tokens (N, T, C) attend to the image tokens (N, L, C): keys from image + positions,
        values from the image, never projected at image size."""
        n, t, _ = query.shape
        h = self.heads
        wq, bq = attn.q_proj.weight, attn.q_proj.bias
        wk, wv, bv = attn.k_proj.weight, attn.v_proj.weight, attn.v_proj.bias
        d = wq.shape[0] // h
        q = F.linear(query, wq, bq).view(n, t, h, d).transpose(1, 2)  # (N, H, T, d)
        # q . (x Wk^T + bk) = (q Wk) . x + q . bk; the last term is constant along the softmax axis
        qk = torch.matmul(q, wk.view(h, d, -1)).reshape(n, h * t, -1)  # (N, H*T, C)
        scores = self._mm(qk, image_pos.transpose(-1, -2)).mul_(attn.scaling)  # (N, H*T, L)
        weights = torch.softmax(scores, dim=-1)
        # weights @ (x Wv^T + bv) = (weights @ x) Wv^T + bv: rows of weights sum to 1
        mixed = self._mm(weights, image).view(n, h, t, -1)  # (N, H, T, C)
        out = torch.matmul(mixed, wv.view(h, d, -1).transpose(1, 2)) + bv.view(h, 1, d)  # (N, H, T, d)
        return attn.o_proj(out.transpose(1, 2).reshape(n, t, h * d))

    def _token_to_projected_image(self, attn, query: torch.Tensor, k: torch.Tensor, v: torch.Tensor
                                  ) -> torch.Tensor:
        """Tokens (N, T, C) attend to keys and values (H, L, d) projected once for every prompt:
        the N x T queries run as one sequence (same result, one pass over the keys)."""
        n, t, _ = query.shape
        h, _, d = k.shape
        q = F.linear(query, attn.q_proj.weight, attn.q_proj.bias).reshape(1, -1, h, d).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k[None], v[None], scale=attn.scaling)
        return attn.o_proj(out.transpose(1, 2).reshape(n, t, h * d))

    def _image_query_scores(self, attn, image_pos: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """Scores (N, H, T, L) of image queries (image + positions) against T token keys, with
        the query projection moved onto the tokens: (x Wq^T + bq) . k = x . (Wq_h^T k) + bq . k."""
        n, t, _ = key.shape
        h = self.heads
        wq, bq = attn.q_proj.weight, attn.q_proj.bias
        d = wq.shape[0] // h
        k = F.linear(key, attn.k_proj.weight, attn.k_proj.bias).view(n, t, h, d).transpose(1, 2)  # (N, H, T, d)
        kq = torch.matmul(k, wq.view(h, d, -1)).reshape(n, h * t, -1)  # (N, H*T, C)
        bias = torch.matmul(k, bq.view(h, d, 1)).reshape(n, h * t, 1)
        return self._mm(kq, image_pos.transpose(-1, -2)).add_(bias).mul_(attn.scaling).view(n, h, t, -1)

    def _image_query_scores_projected(self, attn, image_q: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """Scores (N, H, T, L) of image queries (H, d, L) projected once for every prompt."""
        n, t, _ = key.shape
        h, d, _ = image_q.shape
        k = F.linear(key, attn.k_proj.weight, attn.k_proj.bias).view(n, t, h, d).transpose(1, 2)
        return torch.matmul(k, image_q).mul_(attn.scaling)

    def _image_to_token(self, attn, scores: torch.Tensor, value: torch.Tensor, keys: torch.Tensor
                        ) -> torch.Tensor:
        """The image tokens ``keys`` (L, C) or (N, L, C) plus their attention to the T tokens: softmax
        of the scores (N, H, T, L) over T, then (weights @ v) Wo^T = weights @ (v Wo_h^T): the output
        projection is applied to the tokens, its bias too (each head's weights sum to 1 over T, so
        bo / H on every row of every head adds bo), and the residual is the product's accumulator."""
        n, h, t, length = scores.shape
        wv, bv, wo, bo = attn.v_proj.weight, attn.v_proj.bias, attn.o_proj.weight, attn.o_proj.bias
        d = wv.shape[0] // h
        # softmax over the short token axis along rows of L values (several times faster on CPU
        # than torch.softmax over a last axis of a few elements)
        scores = scores.sub_(scores.amax(dim=2, keepdim=True)).exp_()
        weights = scores.div_(scores.sum(dim=2, keepdim=True)).view(n, h * t, length)
        v = F.linear(value, wv, bv).view(n, t, h, d).transpose(1, 2)  # (N, H, T, d)
        vo = torch.matmul(v, wo.view(-1, h, d).permute(1, 2, 0)).reshape(n, h * t, -1)  # (N, H*T, C)
        vo.add_(bo / h)
        return self._gemm(keys, weights.transpose(1, 2), vo)  # (N, L, C)

    def _mm(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``a @ b`` in fp32 out, on the products' dtype."""
        if self.gemm_dtype == torch.float32:
            return torch.matmul(a, b)
        return torch.matmul(a.to(self.gemm_dtype), b.to(self.gemm_dtype)).float()

    def _gemm(self, bias: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``bias + x @ weight`` for (L, K) or (N, L, K) ``x`` and (K, M) or (N, K, M) ``weight``; in
        fp32 the bias is the GEMM's accumulator, in bf16 the product runs on bf16 inputs and is added
        in fp32."""
        if self.gemm_dtype == torch.float32:
            if x.dim() == 2:
                return torch.addmm(bias, x, weight)
            return torch.baddbmm(bias, x, weight.expand(x.shape[0], -1, -1))
        return torch.matmul(x.to(self.gemm_dtype), weight.to(self.gemm_dtype)).float().add_(bias)

    def _upscale_and_mask(self, image: DecoderImage, keys: torch.Tensor, hyper: torch.Tensor) -> torch.Tensor:
        """Both transposed convolutions + GELU + product with each prompt's M hypernetwork outputs
        (N, M, C/8) -> (N, M, 16 L) in sub-pixel order (:meth:`_to_image` reorders), a chunk of
        prompts at a time."""
        n, length, _ = keys.shape
        c1 = image.feat_s1.shape[1] // 4
        c2 = image.feat_s0.shape[1] // 4
        ln = self.decoder.upscale_layer_norm
        chunk = max(1, _CHUNK_ELEMENTS // (16 * length * c2))
        out = torch.empty(n, hyper.shape[1], 16 * length, dtype=hyper.dtype, device=keys.device)
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            m = e - s
            up = self._gemm(image.feat_s1, keys[s:e], self._conv1)  # (m, L, 4*c1)
            up = F.gelu(F.layer_norm(up.view(m, length, 4, c1), (c1,), ln.weight, ln.bias, ln.eps))
            up = self._gemm(image.feat_s0, up.view(m, length * 4, c1), self._conv2)  # (m, 4L, 4*c2)
            up = F.gelu(up).view(m, 16 * length, c2)
            torch.bmm(hyper[s:e], up.transpose(1, 2), out=out[s:e])
        return out

    def _to_image(self, masks: torch.Tensor) -> torch.Tensor:
        """(N, M, 16 L) in sub-pixel order (y, x, dy1, dx1, dy2, dx2) -> (N, M, 4h, 4w): rows
        4y + 2 dy1 + dy2, columns 4x + 2 dx1 + dx2."""
        n, outputs, _ = masks.shape
        gh, gw = self.grid
        out = masks.view(n, outputs, gh, gw, 2, 2, 2, 2).permute(0, 1, 2, 4, 6, 3, 5, 7)
        return out.reshape(n, outputs, 4 * gh, 4 * gw)

    def _select(self, masks: torch.Tensor, iou: torch.Tensor, multimask: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """transformers' choice of outputs: the 3 candidates, or the single-mask token with SAM 2's
        fallback to the best candidate when its stability is low (pixel counts: any pixel order)."""
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

