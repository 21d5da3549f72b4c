"""SAM 3 inputs in numpy / torch: the image at the model's square size, text tokens, prompt coordinates.

Matches transformers' ``Sam3Processor`` without torchvision: the uint8 image is resized with
torch's antialiased bilinear kernel (what the processor's torchvision backend runs), scaled
to [0, 1] and normalised with mean = std = 0.5; text is tokenised padded to 32 tokens;
exemplar boxes become (cx, cy, w, h) fractions of the image; tracker points and boxes are
scaled to the model's square input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

TEXT_LENGTH = 32  # the processor's padding="max_length", max_length=32
VISUAL = "visual"  # the text the processor gives an exemplar-only prompt


def pixel_values(rgb: np.ndarray, size: int) -> torch.Tensor:
    """(1, 3, size, size) float32 model input for an (H, W, 3) uint8 image."""
    image = torch.from_numpy(np.array(rgb, dtype=np.uint8, order="C")).permute(2, 0, 1)[None]  # a writable copy
    resized = torch.nn.functional.interpolate(image, size=(size, size), mode="bilinear", antialias=True,
                                              align_corners=False)
    return (resized.float() / 255.0 - 0.5) / 0.5


def tokens(tokenizer: Any, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Input ids and attention mask, (len(texts), 32) each."""
    encoded = tokenizer(list(texts), padding="max_length", max_length=TEXT_LENGTH, truncation=True,
                        return_tensors="pt")
    return encoded["input_ids"], encoded["attention_mask"]


def exemplar_boxes(boxes: np.ndarray, image_size: tuple[int, int]) -> torch.Tensor:
    """(1, K, 4) normalised (cx, cy, w, h) of (K, 4) XYXY pixel boxes."""
    h, w = image_size
    xyxy = torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4)) / torch.tensor([w, h, w, h])
    x0, y0, x1, y1 = xyxy.unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], dim=-1)[None]


def to_model_square(xy: np.ndarray, image_size: tuple[int, int], size: int) -> torch.Tensor:
    """Pixel (x, y) pairs (..., 2) scaled to the model's ``size`` x ``size`` input."""
    h, w = image_size
    scaled = np.asarray(xy, dtype=np.float32) * np.array([size / w, size / h], dtype=np.float32)
    return torch.from_numpy(scaled)
