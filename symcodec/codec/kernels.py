"""The fused encoder kernel: patches, nearest centroids and entropy model 3 in one compiled call (small RGB/L images).

A 32x32 image codes in ~0.2 ms, so the Python between three kernel calls would cost as much as a kernel.
Same bytes as the three stages one after another (tests/test_codec.py).
"""
from __future__ import annotations

import numba
import numpy as np

from ..entropy.ppm_kernels import encode_words
from ..jit import JIT
from ..vq.kernels import cells_search, extract_u8


@numba.njit(**JIT)
def encode_image_u8(img, cent, lut, sbits, nbr, nbrd, table, cand, off, gh, gw, nb, yrow, xcol, nlev, nref, dense_off,
                    dense, ht, bits, ent, xent, sfreq, scum, k, bm_off, bm, rk, nw):  # pragma: no cover - compiled
    """2x2 patches of a (1, H, W, planes) uint8 image, their nearest centroids (the searcher's cell search)
    and `ppm_kernels.encode_words`, in one call: the stream's words, or none when a search cell is not
    built yet (the caller then takes the long way, which builds it)."""
    pt = np.empty((1, img.shape[3], gh[0], gw[0], 4), np.float32)
    extract_u8(img, 2, pt)
    x = pt.reshape(-1, 4)
    sym = np.empty(x.shape[0], np.int32)
    if cells_search(x, 0, cent, lut, sbits, nbr, nbrd, table, cand, sym) != x.shape[0]:
        return np.empty(0, np.uint16)
    return encode_words(sym, off, gh, gw, nb, yrow, xcol, nlev, nref, dense_off, dense, ht, bits,
                        ent, xent, sfreq, scum, k, bm_off, bm, rk, nw)
