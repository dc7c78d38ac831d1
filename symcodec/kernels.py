"""Compiled inner loops (numba): patch extraction, exact nearest-centroid search, reconstruction.

Every kernel here has a plain-numpy twin in `symcodec.patches` that the tests compare against.
"""
from __future__ import annotations

import numba
import numpy as np

_JIT = {"cache": True, "nogil": True, "boundscheck": False}


@numba.njit(**_JIT)
def extract_u8(img, p, out):  # pragma: no cover - compiled
    """Patches of a uint8 (N,H,W,C) batch into float32 (N,C,gh,gw,p*p), edge-replicated, /255."""
    n_img, h, w, c = img.shape
    gh, gw = out.shape[2], out.shape[3]
    inv = np.float32(255.0)
    for n in range(n_img):
        for ch in range(c):
            for gy in range(gh):
                for gx in range(gw):
                    for dy in range(p):
                        y = min(gy * p + dy, h - 1)
                        for dx in range(p):
                            x = min(gx * p + dx, w - 1)
                            out[n, ch, gy, gx, dy * p + dx] = np.float32(img[n, y, x, ch]) / inv


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
def nearest_brute(x, cent, out):  # pragma: no cover - compiled
    """Exact nearest centroid by full scan; ties go to the lowest index."""
    n, d = x.shape
    k_n = cent.shape[0]
    for i in range(n):
        best = np.float32(np.inf)
        bi = 0
        for j in range(k_n):
            s = _sqdist(x, i, cent, j, d)
            if s < best:
                best = s
                bi = j
        out[i] = bi


@numba.njit(**_JIT)
def nearest_pivot(x, cent, p, lut, bits, nbr, nbrd, out):  # pragma: no cover - compiled
    """Exact nearest centroid, same answer as `nearest_brute`, much faster on real images.

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
