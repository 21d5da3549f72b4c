"""Label Studio's brush RLE (the ``rle`` of a ``BrushLabels`` region), from a boolean mask.

It is not COCO RLE: the mask is flattened row-major as RGBA bytes (0 or 255 in every
channel) and packed with thi.ng's ``rle-pack`` bit format: a 32-bit value count, a 5-bit
word size minus one, four 4-bit run-size classes minus one, then per run a repeat bit, a
2-bit size class, the run length minus one and the 8-bit value. This writes exactly the
bytes of ``label_studio_sdk.converter.brush.mask2rle`` (a test compares them); the SDK is
not imported because its pins (``opencv-python-headless<4.13``, hence ``numpy<2.3``)
conflict with the rest of segmentkit's environment.
"""

from __future__ import annotations

import numpy as np

RUN_BITS = (3, 4, 8, 16)  # the SDK's run-size classes
_LONGEST = 2 ** RUN_BITS[-1]


def _run(length: int, value: int) -> str:
    """The bits of one run of ``length`` equal bytes ``value``."""
    if length == 1:
        return f"0{0:02b}{0:0{RUN_BITS[0]}b}{value:08b}"
    head = ""
    while length > _LONGEST:
        head += f"1{3:02b}{_LONGEST - 1:016b}{value:08b}"
        length -= _LONGEST
    size_class = next(i for i, bits in enumerate(RUN_BITS) if length <= 2**bits)
    return f"{head}1{size_class:02b}{length - 1:0{RUN_BITS[size_class]}b}{value:08b}"


def mask_to_rle(mask: np.ndarray) -> list[int]:
    """Brush RLE bytes of a (H, W) boolean mask, as Label Studio stores them (a list of ints)."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    flat = np.repeat(np.where(mask, 255, 0).astype(np.uint8).ravel(), 4)
    ends = np.append(np.flatnonzero(flat[1:] != flat[:-1]), flat.size - 1)
    lengths = np.diff(np.append(-1, ends))
    header = f"{flat.size:032b}{8 - 1:05b}" + "".join(f"{bits - 1:04b}" for bits in RUN_BITS)
    bits = header + "".join(_run(n, v) for n, v in zip(lengths.tolist(), flat[ends].tolist(), strict=True))
    bits += "0" * (8 - len(bits) % 8)  # the SDK pads a whole zero byte when already aligned
    return np.packbits(np.frombuffer(bits.encode("ascii"), np.uint8) - ord("0")).tolist()
