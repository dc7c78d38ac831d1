"""A fast path for the small JPEGs of image datasets: Pillow's own libjpeg decoder without its Python marker parser.

`Image.open` + `load` spends about 0.06 ms per 32x32 JPEG in Python (marker parsing, tables, tiles) around a
0.05 ms decode; dataset conversion decodes tens of thousands of them. `decode` scans the markers itself and
hands the whole file to the same decoder with the same raw mode, so the pixels are Pillow's, bit for bit
(tests/test_convert.py checks every CIFAR-10 test JPEG). Anything it does not handle, it leaves to the
general path by returning None: more than `max_side` pixels a side, metadata segments (EXIF, ICC, XMP,
Photoshop, Adobe colour transforms), precision other than 8 bits, other than 1 or 3 components,
arithmetic or lossless coding, and any irregularity.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

_SOF_OK = (0xC0, 0xC1, 0xC2)  # baseline, extended, progressive Huffman
_SOF_OTHER = frozenset(range(0xC3, 0xD0)) - {0xC4, 0xC8, 0xCC}  # lossless, hierarchical, arithmetic
_ALLOWED_APP = (0xE0,)  # JFIF only: every other APPn may carry metadata or a colour transform


def decode(data: bytes, max_side: int = 64) -> np.ndarray | None:
    """(H, W) or (H, W, 3) uint8 pixels of a small plain JPEG, exactly as Pillow decodes it; None for the general path."""
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return None
    i, sof = 2, None
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        m = data[i + 1]
        if m == 0xFF:  # fill byte
            i += 1
            continue
        length = (data[i + 2] << 8) | data[i + 3]
        if 0xE0 <= m <= 0xEF and m not in _ALLOWED_APP or m in _SOF_OTHER or length < 2:
            return None
        if m in _SOF_OK:
            if i + 10 > n:
                return None
            sof = (data[i + 4], (data[i + 5] << 8) | data[i + 6], (data[i + 7] << 8) | data[i + 8], data[i + 9])
        if m == 0xDA:  # start of scan: every header segment has been seen
            break
        i += 2 + length
    else:
        return None
    if sof is None:
        return None
    precision, h, w, comps = sof
    if precision != 8 or comps not in (1, 3) or not (1 <= w <= max_side and 1 <= h <= max_side):
        return None
    if Image.MAX_IMAGE_PIXELS is not None and w * h > Image.MAX_IMAGE_PIXELS:  # Pillow's own check, on its path
        return None
    mode = "L" if comps == 1 else "RGB"
    core = Image.core.new(mode, (w, h))
    dec = Image._getdecoder(mode, "jpeg", (mode, ""))
    dec.setimage(core, (0, 0, w, h))
    _, err = dec.decode(data)
    if err < 0:
        return None
    return np.asarray(Image.Image()._new(core))
