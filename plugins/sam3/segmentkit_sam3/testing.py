"""A tiny random-weight SAM 3 checkpoint in the hub layout (``Sam3VideoModel`` + save_pretrained).

The structure is the real one (ViT backbone, FPN necks, CLIP text encoder, DETR encoder and
decoder with presence token, mask decoder, SAM 3 tracker with video memory) at small widths.
A few tensors are set so that outputs are not trivial: random presence and query logits
keep nothing above the thresholds, so the presence head says "present" and the query
projection is scaled until query logits spread over roughly +-10 (some instances kept, some
not); mask heads are rescaled to logits of std ~4; the tracker's object-score head says
"object". The tokenizer is a byte-level CLIP BPE over the 256 byte symbols (+ "</w>" forms)
and a few merges, built offline.
"""

from __future__ import annotations

from pathlib import Path

import torch

WORDS = ("a", "red", "square", "blue", "circle", "dog", "cat", "ball")


def tiny_config(image_size: int = 56, hidden: int = 16, hotstart_delay: int = 2):
    """A ``Sam3VideoConfig`` at ``image_size`` (a multiple of 14): ViT and text widths ``hidden``, the rest 128
    (transformers fixes the memory width at 64; the FPN width must be a larger multiple of it)."""
    from transformers import Sam3VideoConfig

    grid = image_size // 14
    vit = dict(model_type="sam3_vit_model", hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
               num_attention_heads=2, image_size=image_size, patch_size=14, window_size=2, global_attn_indexes=[1],
               pretrain_image_size=image_size)
    width = 128
    vision = dict(model_type="sam3_vision_model", backbone_config=vit, fpn_hidden_size=width,
                  backbone_feature_sizes=[[grid * 4] * 2, [grid * 2] * 2, [grid] * 2])
    vocab = len(tokenizer_vocab()[0])
    text = dict(model_type="clip_text_model", vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                projection_dim=hidden, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32,
                bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=vocab - 1)
    small = dict(hidden_size=width, num_layers=1, num_attention_heads=2, intermediate_size=width)
    detector = dict(model_type="sam3", vision_config=vision, text_config=text,
                    geometry_encoder_config=dict(small, roi_size=2), detr_encoder_config=small,
                    detr_decoder_config=dict(small, num_queries=6),
                    mask_decoder_config=dict(hidden_size=width, num_attention_heads=2))
    tracker = dict(
        model_type="sam3_tracker_video", vision_config=vision, image_size=image_size,
        prompt_encoder_config=dict(hidden_size=width, image_size=image_size, patch_size=14, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=width, mlp_dim=width, num_attention_heads=2, iou_head_hidden_dim=16),
        memory_attention_hidden_size=width, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=width, memory_attention_rope_feat_sizes=[grid, grid],
        memory_encoder_hidden_size=width, memory_encoder_output_channels=64, mask_downsampler_embed_dim=width,
        memory_fuser_embed_dim=width, memory_fuser_intermediate_dim=width,
    )
    return Sam3VideoConfig(detector_config=detector, tracker_config=tracker, low_res_mask_size=grid * 4,
                           hotstart_delay=hotstart_delay, hotstart_unmatch_thresh=min(8, hotstart_delay),
                           hotstart_dup_thresh=min(8, hotstart_delay))


def tokenizer_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level CLIP BPE vocabulary and merges: every byte symbol, its "</w>" form, WORDS merged."""
    symbols = _byte_symbols()
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": len(symbols) + i for i, s in enumerate(symbols)})
    merges: list[tuple[str, str]] = []
    for word in WORDS:
        left = word[0]
        for i, char in enumerate(word[1:], start=1):
            right = char + ("</w>" if i == len(word) - 1 else "")
            if (left, right) not in merges:
                merges.append((left, right))
            left += right
            vocab.setdefault(left, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab, merges


def _byte_symbols() -> list[str]:
    """GPT-2 / CLIP's printable stand-ins for the 256 byte values, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def build_tiny_checkpoint(path: Path, *, image_size: int = 56, seed: int = 0, hotstart_delay: int = 2) -> Path:
    """Save a tiny ``sam3_video`` checkpoint and its CLIP tokenizer into ``path``."""
    from transformers import CLIPTokenizer, Sam3VideoModel

    torch.manual_seed(seed)
    config = tiny_config(image_size, hotstart_delay=hotstart_delay)
    model = Sam3VideoModel(config).eval()
    with torch.no_grad():
        _make_outputs_non_trivial(model, image_size)
    model.save_pretrained(path)
    vocab, merges = tokenizer_vocab()
    CLIPTokenizer(vocab=vocab, merges=merges).save_pretrained(path)
    return Path(path)


def _gain(target: float, values: torch.Tensor) -> float:
    """``target / std`` to 3 significant digits: the forward's last bits vary with the thread
    count, and the checkpoint must come out bit-identical wherever it is built."""
    return float(f"{target / float(values.std()):.3g}")


def _make_outputs_non_trivial(model, image_size: int) -> None:
    detector, tracker = model.detector_model, model.tracker_model
    detector.detr_decoder.presence_head.layer3.bias.fill_(6.0)
    tracker.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(10.0)
    tracker.no_memory_embedding.normal_(0.0, 0.5)
    gen = torch.Generator().manual_seed(1)
    pixels = torch.randn(1, 3, image_size, image_size, generator=gen)
    ids = torch.randint(0, 300, (1, 32), generator=gen)
    out = detector(pixel_values=pixels, input_ids=ids)
    detector.dot_product_scoring.query_proj.weight.mul_(_gain(8.0, out.pred_logits))
    mask_gain = _gain(4.0, out.pred_masks)
    detector.mask_decoder.mask_embedder.layers[-1].weight.mul_(mask_gain)
    detector.mask_decoder.mask_embedder.layers[-1].bias.mul_(mask_gain)
    for mlp in tracker.mask_decoder.output_hypernetworks_mlps:
        mlp.proj_out.weight.mul_(20.0)
        mlp.proj_out.bias.mul_(20.0)
