"""Grounding text: normalise a query, split it into phrases, map tokens back to phrases."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from segmentkit.errors import PromptError


def normalise_query(text: str) -> str:
    """Lower-case, one space between words, every phrase ended by '.' ("A cat. dog" -> "a cat. dog.")."""
    phrases = split_phrases(text)
    if not phrases:
        raise PromptError("text prompt has no phrase: give e.g. 'a dog. a ball.'")
    return " ".join(f"{p}." for p in phrases)


def split_phrases(text: str) -> list[str]:
    return [" ".join(p.split()).lower() for p in text.split(".") if p.strip()]


@dataclass(frozen=True)
class PhraseMap:
    """Which query phrase each token position belongs to (-1 for special tokens and dots)."""

    phrases: list[str]
    token_phrase: np.ndarray  # (T,) int

    @classmethod
    def build(cls, query: str, offsets: list[tuple[int, int]]) -> PhraseMap:
        phrases = split_phrases(query)
        spans, start = [], 0
        for phrase in phrases:
            begin = query.index(phrase, start)
            spans.append((begin, begin + len(phrase)))
            start = begin + len(phrase)
        owner = np.full(len(offsets), -1, dtype=np.int64)
        for t, (a, b) in enumerate(offsets):
            if b <= a:
                continue  # special token
            for i, (s, e) in enumerate(spans):
                if a >= s and b <= e:
                    owner[t] = i
                    break
        return cls(phrases, owner)

    def best_phrase(self, token_probs: np.ndarray) -> np.ndarray:
        """Index of the phrase with the highest token probability, per detection (N, T) -> (N,)."""
        n_tokens = min(token_probs.shape[1], self.token_phrase.shape[0])
        scores = np.full((token_probs.shape[0], len(self.phrases)), -np.inf, dtype=np.float32)
        for i in range(len(self.phrases)):
            cols = np.flatnonzero(self.token_phrase[:n_tokens] == i)
            if cols.size:
                scores[:, i] = token_probs[:, cols].max(axis=1)
        return scores.argmax(axis=1)
