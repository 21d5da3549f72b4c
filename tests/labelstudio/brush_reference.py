"""Decode Label Studio brush RLE, written from the format's reference decoder (thi.ng rle-pack,
quoted in label_studio_sdk.converter.brush): the tests' independent check of our encoder."""

from __future__ import annotations

import numpy as np


def decode(rle: list[int], shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool mask from brush RLE bytes (the alpha channel of the RGBA values)."""
    bits = np.unpackbits(np.asarray(rle, dtype=np.uint8))
    pos = 0

    def read(n: int) -> int:
        nonlocal pos
        value = 0
        for bit in bits[pos : pos + n]:
            value = (value << 1) | int(bit)
        pos += n
        return value

    num, word = read(32), read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    out = np.zeros(num, dtype=np.uint8)
    i = 0
    while i < num:
        repeat = read(1)
        j = i + 1 + read(sizes[read(2)])
        if repeat:
            out[i:j] = read(word)
        else:
            for k in range(i, j):
                out[k] = read(word)
        i = j
    return out.reshape(*shape, 4)[:, :, 3] > 127
