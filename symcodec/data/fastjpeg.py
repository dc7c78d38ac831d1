"""A fast path for the small JPEGs of image datasets: Pillow's own libjpeg decoder without its Python marker parser.

`Image.open` + `load` spends about 0.06 ms per 32x32 JPEG in Python (marker parsing, tables, tiles) around a
0.05 ms decode; dataset conversion decodes tens of thousands of them. `decode` scans the markers itself and
hands the whole file to the same decoder with the same raw mode, so the pixels are Pillow's, bit for bit
(tests/test_convert.py checks every CIFAR-10 test JPEG). Anything it does not handle, it leaves to the
general path by returning None: more than `max_side` pixels a side, metadata segments (EXIF, ICC, XMP,
Photoshop, Adobe colour transforms), precision other than 8 bits, other than 1 or 3 components,
arithmetic or lossless coding, truncated data, any segment Pillow's parser would refuse, and any other
irregularity. tools/fuzz.py's `jpeg` target checks the equivalence on mutated files.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

_SOF = (0xC0, 0xC1, 0xC2)  # baseline, extended, progressive Huffman
_PLAIN = frozenset({0xC4, 0xDD, 0xFE})  # DHT, DRI, COM: Pillow skips or stores them
# Only these segments (each checked as Pillow's JpegImagePlugin handler checks it) take the fast path; any other
# marker (EXIF, ICC, XMP, Adobe, arithmetic or lossless coding, DNL, reserved ones) goes to Image.open.


def _segment_ok(m: int, seg: bytes) -> bool:
    """Whether Pillow's handler for marker m accepts the segment payload (else Image.open would refuse the file)."""
    if m == 0xE0:  # APP0: JFIF only (its fields are read at fixed offsets)
        return seg[:5] == b"JFIF\0" and len(seg) >= 12
    if m == 0xDB:  # DQT: whole tables of 64 entries, 8- or 16-bit
        while seg:
            n = 1 + (1 if seg[0] < 16 else 2) * 64
            if len(seg) < n:
                return False
            seg = seg[n:]
        return True
    if m in _SOF:  # SOF: 6 bytes, then 3 per component
        return len(seg) >= 6 and (len(seg) - 6) % 3 == 0
    return m in _PLAIN or m == 0xDA


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
        if length < 2 or i + 2 + length > n or not _segment_ok(m, data[i + 4:i + 2 + length]):
            return None
        if m in _SOF:
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
    try:  # as ImageFile.load does, with every byte at once
        dec.setimage(core, (0, 0, w, h))
        n, err = dec.decode(data)
    finally:
        dec.cleanup()
    if n >= 0 or err < 0:  # wants more bytes (Pillow: "image file is truncated") or failed
        return None
    return np.asarray(Image.Image()._new(core))
