"""A session's frames as transformers' SAM 3 inference sessions read them, preprocessed on demand.

transformers' video sessions keep every preprocessed frame (``processed_frames``: a
1008 x 1008 float image is 12 MB, a minute of video tens of GB). This stand-in reads a
frame from the core frame source only when the model asks for it and keeps the last two;
its length is the video's (the model uses it to bound memory look-ups).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from .preprocess import pixel_values


class LazyPixels(Mapping[int, torch.Tensor]):
    """Frame index -> (3, S, S) model input of that frame of ``frames`` (a core frame source)."""

    def __init__(self, frames: Any, size: int, keep: int = 2):
        self.frames, self.size, self.keep = frames, size, keep
        self._recent: OrderedDict[int, torch.Tensor] = OrderedDict()

    def __getitem__(self, index: int) -> torch.Tensor:
        if index not in self._recent:
            self._recent[index] = pixel_values(self.frames[index], self.size)[0]
            while len(self._recent) > self.keep:
                self._recent.popitem(last=False)
        return self._recent[index]

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.frames)))
