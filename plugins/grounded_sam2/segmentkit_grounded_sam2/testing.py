"""Tiny random-weight checkpoints for tests, built from the real config classes (no download)."""

from __future__ import annotations

from pathlib import Path

import torch

WORDS = ["a", "the", "cat", "dog", "ball", "person", "car", "red", "blue", "square", "disc", "tree"]


def grounding_vocab() -> dict[str, int]:
    """A BERT vocabulary whose special ids match bert-base-uncased (the model hard-codes them)."""
    tokens = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    fill = lambda upto: tokens.extend(f"tok{len(tokens)}" for _ in range(upto - len(tokens)))  # noqa: E731
    fill(1012)
    tokens.append(".")  # 1012
    fill(1029)
    tokens.append("?")  # 1029
    tokens.extend(WORDS)
    return {t: i for i, t in enumerate(tokens)}


def build_grounding_dino(directory: Path, seed: int = 0) -> Path:
    from transformers import (
        BertConfig,
        BertTokenizerFast,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        SwinConfig,
    )

    torch.manual_seed(seed)
    vocab = grounding_vocab()
    backbone = SwinConfig(embed_dim=24, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=7,
                          out_indices=[2, 3, 4], image_size=224)
    text = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=64)
    config = GroundingDinoConfig(
        backbone_config=backbone, text_config=text, d_model=32, encoder_layers=1, decoder_layers=2,
        encoder_ffn_dim=64, decoder_ffn_dim=64, encoder_attention_heads=2, decoder_attention_heads=2,
        num_queries=30, num_feature_levels=4, encoder_n_points=2, decoder_n_points=2,
    )
    GroundingDinoForObjectDetection(config).eval().save_pretrained(directory)
    BertTokenizerFast(vocab=vocab).save_pretrained(directory)
    return directory
