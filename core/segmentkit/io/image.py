"""Decode any image input into an (H, W, 3) uint8 RGB array, safely.

Accepts a path, bytes, a file object, a PIL image or a numpy array. EXIF orientation
is applied; RGBA / LA are composited on white, grayscale, 16-bit, float, CMYK and
palette images are converted. Images over ``max_pixels`` are refused from their header,
before decoding (decompression bombs); a path must name a regular file (no FIFO, no
device), at most 8 bytes a pixel of the limit, and is streamed to the decoder, never read
whole. Corrupt, truncated, empty and non-image inputs raise
:class:`~segmentkit.errors.ImageError` with the reason.

One pixel limit everywhere: ``max_pixels``, by default ``SEGMENTKIT_MAX_PIXELS`` or 100 M,
which ``segmentkit serve --max-pixels`` and ``segmentkit batch --max-pixels`` override.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError, ImageTooLargeError
from .files import Roots, open_input

DEFAULT_MAX_PIXELS = int(os.environ.get("SEGMENTKIT_MAX_PIXELS", 100_000_000))
BYTES_PER_PIXEL = 8  # the most an image file within the pixel limit may hold (16-bit RGBA, uncompressed)


def load_image(source: Any, *, max_pixels: int | None = None, roots: Roots = None) -> np.ndarray:
    """Return ``source`` as a C-contiguous (H, W, 3) uint8 RGB array.

    A path must resolve inside one of ``roots`` (if given) and be a regular file.
    """
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    if isinstance(source, np.ndarray):
        return _from_array(source, limit)
    if isinstance(source, Image.Image):
        _check_pixels(source.size, limit, "image")
        return _to_rgb(ImageOps.exif_transpose(source))
    if isinstance(source, (str, Path)):
        with open_input(source, max_bytes=BYTES_PER_PIXEL * limit + 2**20, roots=roots) as handle:
            return _decode(handle, str(source), limit)
    name, data = _read(source)
    return _decode(io.BytesIO(data), name, limit)


def _decode(handle: BinaryIO, name: str, limit: int) -> np.ndarray:
    try:
        with Image.open(handle) as img:
            _check_pixels(img.size, limit, name)
            img = ImageOps.exif_transpose(img)
            img.load()
            return _to_rgb(img)
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image Pillow can read") from None
    except Image.DecompressionBombError as exc:  # Pillow's own, stricter check inside Image.open
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_large(name, f"{int(found.group(1)):,} pixels" if found else "too many pixels", limit) from None
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, ImageError):
            raise
        raise ImageError(f"{name} is corrupt or truncated: {exc}") from None


def image_key(image: np.ndarray) -> str:
    """A content hash of a decoded image (shape + pixels), for caches."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str(image.shape).encode())
    digest.update(np.ascontiguousarray(image).data)
    return digest.hexdigest()


def _read(source: Any) -> tuple[str, bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "image bytes"
    elif hasattr(source, "read"):
        data, name = source.read(), getattr(source, "name", "image stream")
    else:
        raise ImageError(f"cannot read an image from {type(source).__name__}")
    if not data:
        raise ImageError(f"{name} is empty (0 bytes)")
    return name, data


def _check_pixels(size: tuple[int, int], limit: int, name: str) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise ImageError(f"{name} has no pixels ({w}x{h})")
    if w * h > limit:
        raise _too_large(name, f"{w}x{h} = {w * h:,} pixels", limit)


def _too_large(name: str, what: str, limit: int) -> ImageTooLargeError:
    return ImageTooLargeError(f"{name} is {what}, over the limit of {limit:,} pixels "
                              "(raise it with --max-pixels or SEGMENTKIT_MAX_PIXELS)")


def _to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        return _from_array(arr, None)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def _from_array(arr: np.ndarray, limit: int | None) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageError(f"array image must be (H, W), (H, W, 3) or (H, W, 4), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"array image has no pixels (shape {arr.shape})")
    if limit is not None:
        _check_pixels((arr.shape[1], arr.shape[0]), limit, "array image")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype != np.uint8:
        kind = arr.dtype.kind
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise ImageError("array image contains NaN or infinite values")
        if kind == "f" and arr.max(initial=0) <= 1.0 and arr.min(initial=0) >= 0.0:
            arr = arr * 255.0  # floats in [0, 1]
        elif arr.max(initial=0) > 255:
            arr = arr * (255.0 / 65535.0 if arr.max() <= 65535 else 255.0 / arr.max())
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.shape[2] == 4:
        alpha = arr[..., 3:4].astype(np.float32) / 255.0
        arr = np.rint(arr[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(arr)
