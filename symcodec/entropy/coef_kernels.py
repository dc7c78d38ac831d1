"""Compiled kernels of entropy model 4 (formats/sym.md section 5.4): adaptive binary contexts over the levels of 8x8 blocks.

One plane's block rows of one strip at a time: the encoder turns levels into rANS events (and adapts the
contexts as it goes), the decoder turns a stream back into levels. Contexts and neighbours never reach
outside the strip, so strips code and decode independently.
"""
from __future__ import annotations

import numba
import numpy as np

from ..jit import JIT
from .rans import TOTAL
from .rans import step as rans_step

NCTX = 674  # local contexts per plane kind
DC_ZERO, DC_MAG, CNT_ZERO, CNT, AC_ZERO, AC_GT1, AC_GT2, AC_MAG = 0, 4, 68, 74, 122, 394, 462, 530
P_MIN, P_MAX = 64, 65472
BAND = np.array([z if z < 8 else (8 + (z - 8) // 4 if z < 24 else (12 + (z - 24) // 8 if z < 56 else 16)) for z in range(64)],
                np.int64)
MAX_PREFIX = 16


@numba.njit(inline="always", **JIT)
def _g(dca, dcl, up, left):  # pragma: no cover - compiled
    """DC context class from the neighbours' DC levels."""
    if not (up and left):
        return 0
    d = abs(dca - dcl)
    return 0 if d == 0 else (1 if d < 3 else (2 if d < 10 else 3))


@numba.njit(inline="always", **JIT)
def _pred(dca, dcl, up, left):  # pragma: no cover - compiled
    if up and left:
        return (dca + dcl) >> 1
    if left:
        return dcl
    if up:
        return dca
    return 0


@numba.njit(inline="always", **JIT)
def _m(nza, nzl, up, left):  # pragma: no cover - compiled
    """Count context class from the neighbours' counts of nonzero AC levels."""
    if up and left:
        v = (nza + nzl + 1) >> 1
    elif up:
        v = nza
    elif left:
        v = nzl
    else:
        v = 4
    return 0 if v == 0 else (1 if v < 2 else (2 if v < 4 else (3 if v < 8 else (4 if v < 16 else 5))))


@numba.njit(inline="always", **JIT)
def _a(s):  # pragma: no cover - compiled
    return 0 if s == 0 else (1 if s == 1 else (2 if s < 4 else 3))


@numba.njit(inline="always", **JIT)
def _e(k):  # pragma: no cover - compiled
    return 0 if k == 1 else (1 if k < 4 else (2 if k < 10 else 3))


# -- encoding -------------------------------------------------------------------------------------
@numba.njit(inline="always", **JIT)
def _put(p, ctx, b, st, fr, ne):  # pragma: no cover - compiled
    p[2 * NCTX + 2 * ctx + b] += 1  # the bin counts (training reads them) follow the probabilities in p
    q = p[ctx]
    if b == 0:
        st[ne] = 0
        fr[ne] = q
        q += (TOTAL - q) >> 5
    else:
        st[ne] = q
        fr[ne] = TOTAL - q
        q -= q >> 5
    p[ctx] = min(max(q, P_MIN), P_MAX)
    return ne + 1


@numba.njit(inline="always", **JIT)
def _bypass(b, st, fr, ne):  # pragma: no cover - compiled
    st[ne] = 32768 * b
    fr[ne] = 32768
    return ne + 1


@numba.njit(inline="always", **JIT)
def _put_eg(p, base, kmax, v, st, fr, ne):  # pragma: no cover - compiled
    v1 = v + 1
    n = 0
    t = v1
    while t > 1:
        n += 1
        t >>= 1
    for i in range(n):
        ne = _put(p, base + min(i, kmax), 1, st, fr, ne)
    ne = _put(p, base + min(n, kmax), 0, st, fr, ne)
    for i in range(n - 1, -1, -1):
        ne = _bypass((v1 >> i) & 1, st, fr, ne)
    return ne


@numba.njit(**JIT)
def encode_plane(lv, nz, p, c0, st, fr, ne):  # pragma: no cover - compiled
    """Events of one plane's rows of one strip: lv (rows, gw, 64) int32 zigzag levels (first row = the strip's
    first), nz (rows, gw) scratch, p the contexts (global index c0 + local; then 2 counts per context, zeros and
    ones, for training), events appended at ne.
    Returns the new event count, or -1 if a level is out of range."""
    rows, gw = lv.shape[0], lv.shape[1]
    for r in range(rows):
        for c in range(gw):
            up, left = r > 0, c > 0
            dca = lv[r - 1, c, 0] if up else 0
            dcl = lv[r, c - 1, 0] if left else 0
            res = lv[r, c, 0] - _pred(dca, dcl, up, left)
            if abs(res) > 65535:
                return -1
            g = _g(dca, dcl, up, left)
            ne = _put(p, c0 + DC_ZERO + g, 1 if res != 0 else 0, st, fr, ne)
            if res != 0:
                ne = _put_eg(p, c0 + DC_MAG + 16 * g, 15, abs(res) - 1, st, fr, ne)
                ne = _bypass(1 if res < 0 else 0, st, fr, ne)
            k = 0
            for z in range(1, 64):
                if lv[r, c, z] != 0:
                    if abs(lv[r, c, z]) > 32767:
                        return -1
                    k += 1
            nz[r, c] = k
            m = _m(nz[r - 1, c] if up else 0, nz[r, c - 1] if left else 0, up, left)
            ne = _put(p, c0 + CNT_ZERO + m, 1 if k != 0 else 0, st, fr, ne)
            if k == 0:
                continue
            ne = _put_eg(p, c0 + CNT + 8 * m, 7, k - 1, st, fr, ne)
            z = 1
            while k > 0:
                l = lv[r, c, z]
                b = BAND[z]
                s = 0
                if up:
                    s += abs(lv[r - 1, c, z])
                if left:
                    s += abs(lv[r, c - 1, z])
                a = _a(s)
                if 64 - z > k:
                    ne = _put(p, c0 + AC_ZERO + 16 * b + 4 * a + _e(k), 1 if l != 0 else 0, st, fr, ne)
                if l != 0:
                    k -= 1
                    al = abs(l)
                    ne = _put(p, c0 + AC_GT1 + 4 * b + a, 1 if al > 1 else 0, st, fr, ne)
                    if al > 1:
                        ne = _put(p, c0 + AC_GT2 + 4 * b + a, 1 if al > 2 else 0, st, fr, ne)
                        if al > 2:
                            d = 0 if b < 3 else (1 if b < 8 else 2)
                            ne = _put_eg(p, c0 + AC_MAG + 48 * d + 12 * a, 11, al - 3, st, fr, ne)
                    ne = _bypass(1 if l < 0 else 0, st, fr, ne)
                z += 1
    return ne


# -- decoding -------------------------------------------------------------------------------------
@numba.njit(inline="always", **JIT)
def _get(p, ctx, x, words, wi):  # pragma: no cover - compiled
    q = p[ctx]
    slot = x & (TOTAL - 1)
    if slot < q:
        b = 0
        x = q * (x >> 16) + slot
        q += (TOTAL - q) >> 5
    else:
        b = 1
        x = (TOTAL - q) * (x >> 16) + slot - q
        q -= q >> 5
    p[ctx] = min(max(q, P_MIN), P_MAX)
    x, wi = rans_step(x, words, wi)
    return b, x, wi


@numba.njit(inline="always", **JIT)
def _get_bypass(x, words, wi):  # pragma: no cover - compiled
    slot = x & (TOTAL - 1)
    b = 1 if slot >= 32768 else 0
    x = 32768 * (x >> 16) + slot - 32768 * b
    x, wi = rans_step(x, words, wi)
    return b, x, wi


@numba.njit(inline="always", **JIT)
def _get_eg(p, base, kmax, x, words, wi):  # pragma: no cover - compiled
    """EG value, or -1 (prefix too long); wi is -1 if the stream ran out."""
    n = 0
    while True:
        b, x, wi = _get(p, base + min(n, kmax), x, words, wi)
        if b == 0 or wi < 0:
            break
        n += 1
        if n > MAX_PREFIX:
            return -1, x, wi
    v1 = 1
    for _ in range(n):
        b, x, wi = _get_bypass(x, words, wi)
        v1 = (v1 << 1) | b
    return v1 - 1, x, wi


@numba.njit(**JIT)
def decode_plane(words, x, wi, p, c0, lv, nz):  # pragma: no cover - compiled
    """Decode one plane's rows of one strip into lv (rows, gw, 64) int32 zigzag levels; nz (rows, gw) scratch.
    Returns (state, next word index); the index is -1 if the stream is invalid or ran out."""
    rows, gw = lv.shape[0], lv.shape[1]
    for r in range(rows):
        for c in range(gw):
            up, left = r > 0, c > 0
            dca = lv[r - 1, c, 0] if up else 0
            dcl = lv[r, c - 1, 0] if left else 0
            g = _g(dca, dcl, up, left)
            b, x, wi = _get(p, c0 + DC_ZERO + g, x, words, wi)
            res = 0
            if b:
                v, x, wi = _get_eg(p, c0 + DC_MAG + 16 * g, 15, x, words, wi)
                s, x, wi = _get_bypass(x, words, wi)
                if v < 0 or v >= 65535:
                    return x, -1
                res = -(v + 1) if s else v + 1
            for z in range(64):
                lv[r, c, z] = 0
            lv[r, c, 0] = _pred(dca, dcl, up, left) + res
            m = _m(nz[r - 1, c] if up else 0, nz[r, c - 1] if left else 0, up, left)
            b, x, wi = _get(p, c0 + CNT_ZERO + m, x, words, wi)
            if wi < 0:
                return x, -1
            k = 0
            if b:
                v, x, wi = _get_eg(p, c0 + CNT + 8 * m, 7, x, words, wi)
                if v < 0 or v > 62 or wi < 0:
                    return x, -1
                k = v + 1
            nz[r, c] = k
            z = 1
            while k > 0:
                bnd = BAND[z]
                s = 0
                if up:
                    s += abs(lv[r - 1, c, z])
                if left:
                    s += abs(lv[r, c - 1, z])
                a = _a(s)
                nzr = 1
                if 64 - z > k:
                    nzr, x, wi = _get(p, c0 + AC_ZERO + 16 * bnd + 4 * a + _e(k), x, words, wi)
                if nzr:
                    k -= 1
                    al = 1
                    g1, x, wi = _get(p, c0 + AC_GT1 + 4 * bnd + a, x, words, wi)
                    if g1:
                        al = 2
                        g2, x, wi = _get(p, c0 + AC_GT2 + 4 * bnd + a, x, words, wi)
                        if g2:
                            d = 0 if bnd < 3 else (1 if bnd < 8 else 2)
                            v, x, wi = _get_eg(p, c0 + AC_MAG + 48 * d + 12 * a, 11, x, words, wi)
                            if v < 0 or v > 32764:
                                return x, -1
                            al = v + 3
                    sg, x, wi = _get_bypass(x, words, wi)
                    lv[r, c, z] = -al if sg else al
                if wi < 0:
                    return x, -1
                z += 1
    return x, wi
