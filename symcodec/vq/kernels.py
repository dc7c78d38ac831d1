"""Compiled inner loops (numba): patch extraction, exact nearest-centroid search, reconstruction (formats/sym.md section 4).

Every kernel here has a plain-numpy twin in tests/reference.py that the tests compare against.
"""
from __future__ import annotations

import numba
import numpy as np

from ..jit import JIT as _JIT
from ..jit import prefetch


_UNIT_U8 = np.arange(256, dtype=np.float32) / np.float32(255.0)  # v / 255 in float32, looked up (a frozen constant)


@numba.njit(**_JIT)
def extract_u8(img, p, out):  # pragma: no cover - compiled
    """Patches of a uint8 (N,H,W,C) batch into float32 (N,C,gh,gw,p*p), edge-replicated, /255."""
    n_img, h, w, c = img.shape
    gh, gw = out.shape[2], out.shape[3]
    lut = _UNIT_U8
    for n in range(n_img):
        for ch in range(c):
            for gy in range(gh):
                for gx in range(gw):
                    for dy in range(p):
                        y = min(gy * p + dy, h - 1)
                        for dx in range(p):
                            x = min(gx * p + dx, w - 1)
                            out[n, ch, gy, gx, dy * p + dx] = lut[img[n, y, x, ch]]


@numba.njit(**_JIT)
def extract_f32(img, p, out):  # pragma: no cover - compiled
    """Patches of a float32 (N,H,W,C) batch into (N,C,gh,gw,p*p), edge-replicated."""
    n_img, h, w, c = img.shape
    gh, gw = out.shape[2], out.shape[3]
    for n in range(n_img):
        for ch in range(c):
            for gy in range(gh):
                for gx in range(gw):
                    for dy in range(p):
                        y = min(gy * p + dy, h - 1)
                        for dx in range(p):
                            x = min(gx * p + dx, w - 1)
                            out[n, ch, gy, gx, dy * p + dx] = img[n, y, x, ch]


@numba.njit(**_JIT)
def _sqdist(x, i, cent, j, d):  # pragma: no cover - compiled
    s = np.float32(0.0)
    for k in range(d):
        v = x[i, k] - cent[j, k]
        s += v * v
    return s


@numba.njit(**_JIT)
def nearest_pivot(x, cent, p, lut, bits, nbr, nbrd, out):  # pragma: no cover - compiled
    """Exact nearest centroid (the smallest float32 squared distance, summed in order; ties to the lowest index).

    A grid look-up table on the patch's four quadrant means gives a first guess j. By the triangle
    inequality, any centroid closer to x than the best so far lies within r_j + r_best of c_j, so
    only a prefix of c_j's distance-sorted neighbour list is scanned. Falls back to a full scan if
    the stored list is too short to prove the answer.
    """
    n, d = x.shape
    k_n = cent.shape[0]
    m_n = nbr.shape[1]
    nb = 1 << bits
    half = p // 2
    qn = np.float32(half * half)
    for i in range(n):
        key = 0
        for q in range(4):
            oy = (q // 2) * half
            ox = (q % 2) * half
            s = np.float32(0.0)
            for dy in range(half):
                for dx in range(half):
                    s += x[i, (oy + dy) * p + ox + dx]
            c = int(s / qn * nb)
            c = min(max(c, 0), nb - 1)
            key = key * nb + c
        j = lut[key]
        best = _sqdist(x, i, cent, j, d)
        bi = j
        piv = j
        rp = np.sqrt(best)
        while True:
            improved = False
            lim = (rp + np.sqrt(best)) * np.float32(1.0001) + np.float32(1e-6)
            m = 0
            while m < m_n:
                if nbrd[piv, m] > lim:
                    break
                kk = nbr[piv, m]
                s = _sqdist(x, i, cent, kk, d)
                if s < best:
                    best = s
                    bi = kk
                    improved = True
                elif s == best and kk < bi:
                    bi = kk
                m += 1
            if m == m_n and m_n < k_n:
                for kk in range(k_n):
                    s = _sqdist(x, i, cent, kk, d)
                    if s < best or (s == best and kk < bi):
                        best = s
                        bi = kk
                break
            if not improved:
                break
            piv = bi
            rp = np.sqrt(best)
        out[i] = bi


@numba.njit(**_JIT)
def gather(sym, table, p, out):  # pragma: no cover - compiled
    """Tile centroid patches back into (N,H,W,C) images, cropping the padding."""
    n_img, h, w, c = out.shape
    gh, gw = sym.shape[2], sym.shape[3]
    for n in range(n_img):
        for ch in range(c):
            for gy in range(gh):
                for gx in range(gw):
                    s = sym[n, ch, gy, gx]
                    for dy in range(p):
                        y = gy * p + dy
                        if y >= h:
                            break
                        for dx in range(p):
                            x = gx * p + dx
                            if x >= w:
                                break
                            out[n, y, x, ch] = table[s, dy * p + dx]


@numba.njit(**_JIT)
def patch_means(sym, table_mean, out):  # pragma: no cover - compiled
    """One value per patch (its centroid's mean): the 1/p-scale preview, (N,gh,gw,C)."""
    n_img, c, gh, gw = sym.shape
    for n in range(n_img):
        for ch in range(c):
            for gy in range(gh):
                for gx in range(gw):
                    out[n, gy, gx, ch] = table_mean[sym[n, ch, gy, gx]]


# --- exact search through lazily built grid cells (2x2 patches) ------------------------------------
# The [0,1]^4 patch space is cut into 64^4 cells. For a cell B, U = min_c maxdist^2(B, c) bounds the
# nearest distance of every point in B, so only centroids with mindist^2(B, c) <= U can be nearest:
# a short candidate list (about 7 for K=2048). Lists are built the first time a cell is hit and kept
# in an open-addressing hash table of int64 slots: cell key (24 bits) << 39 | start (27) << 12 | count (12).
# A count of 0 marks a cell whose list would be incomplete; it uses the pivot search instead.

CELL_BITS = 6
_EMPTY = -1


@numba.njit(**_JIT)
def _cell_key(x, i, nb):  # pragma: no cover - compiled
    key = 0
    for k in range(4):
        c = int(x[i, k] * nb)
        c = min(max(c, 0), nb - 1)
        key = key * nb + c
    return key


@numba.njit(**_JIT)
def _slot(table, key):  # pragma: no cover - compiled
    """Index of key's slot, or of the empty slot where it would go."""
    mask = table.shape[0] - 1
    h = ((key * 2654435761) >> 16) & mask  # the well-mixed middle bits of a multiplicative hash
    while True:
        v = table[h]
        if v == _EMPTY or (v >> 39) == key:
            return h
        h = (h + 1) & mask


@numba.njit(**_JIT)
def _pivot_one(x, i, cent, p, lut, bits, nbr, nbrd):  # pragma: no cover - compiled
    out = np.empty(1, np.int32)
    nearest_pivot(x[i : i + 1], cent, p, lut, bits, nbr, nbrd, out)
    return out[0]


@numba.njit(**_JIT)
def cells_build(x, i0, cent, lut, bits, nbr, nbrd, table, used, cand, ncand):  # pragma: no cover
    """Build the lists of cells hit by x[i0:]; returns len(x) when done, or the row where room ran out."""
    nb = 1 << CELL_BITS
    inv = 1.0 / nb
    m_n = nbr.shape[1]
    k_n = cent.shape[0]
    ctr = np.empty((1, 4), np.float32)
    lo = np.empty(4, np.float64)
    hi = np.empty(4, np.float64)
    for i in range(i0, x.shape[0]):
        key = _cell_key(x, i, nb)
        h = _slot(table, key)
        if table[h] != _EMPTY:
            continue
        if 2 * (used[0] + 1) > table.shape[0] or ncand[0] + m_n > cand.shape[0] or ncand[0] + m_n >= (1 << 27):
            return i
        kk = key
        for k in range(3, -1, -1):
            c = kk % nb
            kk //= nb
            lo[k] = c * inv - 1e-6
            hi[k] = (c + 1) * inv + 1e-6
            ctr[0, k] = np.float32((c + 0.5) * inv)
        g = _pivot_one(ctr, 0, cent, 2, lut, bits, nbr, nbrd)
        u = np.inf
        mg = 0.0
        for k in range(4):
            a = max(abs(cent[g, k] - lo[k]), abs(cent[g, k] - hi[k]))
            mg += a * a
        for m in range(min(m_n, 48)):  # any upper bound on U is sound; a smaller one is faster
            c = nbr[g, m]
            md = 0.0
            for k in range(4):
                a = max(abs(cent[c, k] - lo[k]), abs(cent[c, k] - hi[k]))
                md += a * a
            u = min(u, md)
        lim = np.sqrt(mg) + np.sqrt(u)
        ulim = u * (1 + 1e-6) + 1e-12
        start = ncand[0]
        m = 0
        while m < m_n and nbrd[g, m] <= lim * 1.0001 + 1e-6:
            c = nbr[g, m]
            md = 0.0
            for k in range(4):
                v = cent[c, k]
                a = lo[k] - v if v < lo[k] else (v - hi[k] if v > hi[k] else 0.0)
                md += a * a
            if md <= ulim:
                cand[ncand[0]] = c
                ncand[0] += 1
            m += 1
        count = ncand[0] - start
        if (m == m_n and m_n < k_n) or count >= 4096:
            ncand[0] = start
            count = 0
        table[h] = (np.int64(key) << 39) | (np.int64(start) << 12) | count
        used[0] += 1
    return x.shape[0]


@numba.njit(**_JIT)
def cells_search(x, i0, cent, lut, bits, nbr, nbrd, table, cand, out):  # pragma: no cover
    """Exact nearest centroid from x[i0:] on; returns len(x), or the first row whose cell is not built.

    Three passes, so the cache misses of different rows overlap: every row's first probe slot is prefetched,
    then every row's slot is read and its candidate list prefetched, then the candidates are compared.
    """
    nb = 1 << CELL_BITS
    mask = table.shape[0] - 1
    n = x.shape[0] - i0
    vals = np.empty(n, np.int64)
    tbase, cbase, csize = table.ctypes.data, cand.ctypes.data, cand.itemsize
    for i in range(i0, x.shape[0]):
        key = _cell_key(x, i, nb)
        vals[i - i0] = key
        prefetch(tbase + 8 * (((key * 2654435761) >> 16) & mask))
    for j in range(n):
        v = table[_slot(table, vals[j])]
        vals[j] = v
        prefetch(cbase + csize * ((v >> 12) & 0x7FFFFFF if v != _EMPTY else 0))
    for i in range(i0, x.shape[0]):
        inside = True
        for k in range(4):
            if not (x[i, k] >= 0.0 and x[i, k] <= 1.0):
                inside = False
        if not inside:
            out[i] = _pivot_one(x, i, cent, 2, lut, bits, nbr, nbrd)
            continue
        v = vals[i - i0]
        if v == _EMPTY:
            return i
        count = v & 0xFFF
        if count == 0:
            out[i] = _pivot_one(x, i, cent, 2, lut, bits, nbr, nbrd)
            continue
        s0 = (v >> 12) & 0x7FFFFFF
        best = np.float32(np.inf)
        bi = 0
        for j in range(s0, s0 + count):
            c = np.int32(cand[j])
            s = _sqdist(x, i, cent, c, 4)
            if s < best or (s == best and c < bi):
                best = s
                bi = c
        out[i] = bi
    return x.shape[0]


@numba.njit(**_JIT)
def cells_rehash(old, new):  # pragma: no cover - compiled
    """Move every slot of `old` into the larger table `new`."""
    for v in old:
        if v != _EMPTY:
            new[_slot(new, v >> 39)] = v


@numba.njit(**_JIT)
def nearest_scan(x, cent_t, out):  # pragma: no cover - compiled
    """Nearest centroid of each row of x by a full scan over cent_t (centroids transposed, (d, K)), vectorised
    over the centroids; ties to any: the first guesses of the guess table, which only steer the exact search."""
    n, d = x.shape
    k = cent_t.shape[1]
    dist = np.empty(k, np.float32)
    for i in range(n):
        dist[:] = 0
        for q in range(d):
            v = x[i, q]
            for j in range(k):
                t = v - cent_t[q, j]
                dist[j] += t * t
        out[i] = np.argmin(dist)
