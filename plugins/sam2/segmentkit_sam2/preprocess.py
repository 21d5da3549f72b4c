"""SAM-family pre- and post-processing in plain torch, matching transformers' Sam2 processors.

- Images: uint8 (H, W, 3) -> uint8 NCHW bilinear resize with antialiasing to S x S
  (aspect not kept), then the fused rescale + normalisation (the family's mean / std, ImageNet's
  for SAM 2) of transformers' torchvision backend (both from :mod:`segmentkit.runtime.pixels`).
- Prompts: pixel coordinates scaled by ``S / W`` and ``S / H`` (``Sam2Processor``).
- Masks: low-res logits upsampled straight to the image size in one bilinear step
  (``align_corners=False``), as ``Sam2ImageProcessor.post_process_masks`` does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from segmentkit.runtime import pixels


def resize_uint8(image_uint8_hwc: np.ndarray, size: int) -> torch.Tensor:
    """(1, 3, S, S) uint8: torch's antialiased bilinear kernel on the uint8 image."""
    return pixels.resize_uint8(pixels.to_tensor(image_uint8_hwc), (size, size)).contiguous()


def preprocess_image(image_uint8_hwc: np.ndarray, size: int = 1024,
                     normalization: pixels.Normalization = pixels.IMAGENET) -> torch.Tensor:
    """(1, 3, S, S) float32 pixel values for an (H, W, 3) uint8 RGB image (the family's mean / std)."""
    if image_uint8_hwc.dtype != np.uint8 or image_uint8_hwc.ndim != 3 or image_uint8_hwc.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image_uint8_hwc.dtype} {image_uint8_hwc.shape}")
    return normalization(resize_uint8(image_uint8_hwc, size))


def _float32(values: torch.Tensor | np.ndarray | Sequence) -> torch.Tensor:
    tensor = values if torch.is_tensor(values) else torch.from_numpy(np.array(values, dtype=np.float32))
    return tensor.to(torch.float32)


def map_points(coords_xy: torch.Tensor | np.ndarray | Sequence, original_hw: tuple[int, int],
               size: int) -> torch.Tensor:
    """Pixel (x, y) coordinates (..., 2) of the original image -> model input coordinates (float32)."""
    coords = _float32(coords_xy).clone()
    h, w = original_hw
    coords[..., 0] = coords[..., 0] * (size / w)
    coords[..., 1] = coords[..., 1] * (size / h)
    return coords


def map_boxes(boxes_xyxy: torch.Tensor | np.ndarray | Sequence, original_hw: tuple[int, int],
              size: int) -> torch.Tensor:
    """XYXY pixel boxes (..., 4) -> model input coordinates (float32)."""
    boxes = _float32(boxes_xyxy)
    shape = boxes.shape
    return map_points(boxes.reshape(*shape[:-1], 2, 2), original_hw, size).reshape(shape)


def upscale_masks(low_res_logits: torch.Tensor, original_hw: tuple[int, int]) -> torch.Tensor:
    """(N, C, h, w) low-res logits -> (N, C, H, W) logits at the image size (one bilinear step)."""
    return F.interpolate(low_res_logits, size=tuple(original_hw), mode="bilinear", align_corners=False)


def mask_input(mask: np.ndarray, mask_input_size: tuple[int, int], *, binary_logit: float = 10.0) -> torch.Tensor:
    """A mask prompt as (1, 1, h, w) float32 logits for the prompt encoder.

    Float arrays are logits (e.g. a previous ``low_res_logits``), resized with antialiasing
    if their size differs (as ``Sam2Model`` does). Bool image-size masks are area-resized and
    mapped to logits in ``[-binary_logit, binary_logit]``.
    """
    arr = np.asarray(mask)
    tensor = torch.tensor(arr, dtype=torch.float32)[None, None]
    if tuple(tensor.shape[-2:]) != tuple(mask_input_size):
        tensor = F.interpolate(tensor, size=tuple(mask_input_size), mode="bilinear", align_corners=False,
                               antialias=True)
    if arr.dtype == bool:
        tensor = (tensor * 2.0 - 1.0) * binary_logit
    return tensor
