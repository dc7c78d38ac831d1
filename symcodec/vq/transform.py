"""The transform mode's quantiser (formats/sym.md section 4.3): 8x8 DCT blocks, per-frequency scalar codebooks.

The encoder side (forward DCT in float64, dead-zone rounding to levels) is the reference's choice; the
decoder side (dequantisation with the codebook's offsets, the integer inverse DCT, the triangle chroma
filter) is exact integer arithmetic, the same on every machine.
"""
from __future__ import annotations

import numba
import numpy as np

from ..jit import JIT

# zigzag position -> natural index 8u + v
ZIGZAG = np.array([0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,
                   7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31,
                   39, 46, 53, 60, 61, 54, 47, 55, 62, 63], np.int64)
_N = np.arange(8)
_COS = np.cos((2 * _N[None, :] + 1) * _N[:, None] * np.pi / 16) * np.where(_N == 0, np.sqrt(1 / 8), 0.5)[:, None]
BASIS = np.ascontiguousarray(_COS)  # float64 A[k][n]: X = A x A^T is the orthonormal 8x8 DCT
IBASIS = np.rint(4096 * _COS).astype(np.int64)  # the spec's integer A
# JPEG's example tables (ITU-T T.81 Annex K), natural order
BASE_LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22,
                      29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103,
                      121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.int64)
BASE_CHROMA = np.array([17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99,
                        99, 99, 99, 99] + [99] * 32, np.int64)
DEAD_ZONE = 0.15  # the reference encoder rounds AC ratios u to sign(u) floor(|u| + 0.5 - DEAD_ZONE)


def steps_for_quality(quality: int) -> np.ndarray:
    """(2, 64) uint8 steps, natural order: JPEG's example tables scaled for a quality 1..100 as libjpeg does."""
    q = int(quality)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return np.stack([np.clip((b * scale + 50) // 100, 1, 255) for b in (BASE_LUMA, BASE_CHROMA)]).astype(np.uint8)


@numba.njit(**JIT)
def forward_levels(plane, steps, dz, by0, by1, out):  # pragma: no cover - compiled
    """Levels of block rows by0..by1-1 of a uint8 plane: out (by1 - by0, gw, 64) int32, zigzag order.

    Orthonormal DCT in float64 of the edge-replicated block minus 128, ratio u = c / step, then
    sign(u) floor(|u| + 0.5 - dz) for AC (dz = the dead zone) and rint for DC."""
    h, w = plane.shape
    gw = out.shape[1]
    blk = np.empty((8, 8), np.float64)
    tmp = np.empty((8, 8), np.float64)
    for by in range(by0, by1):
        for bx in range(gw):
            for n in range(8):
                y = min(by * 8 + n, h - 1)
                for m in range(8):
                    blk[n, m] = np.float64(plane[y, min(bx * 8 + m, w - 1)]) - 128.0
            for k in range(8):  # tmp = A blk (columns)
                for m in range(8):
                    s = 0.0
                    for n in range(8):
                        s += BASIS[k, n] * blk[n, m]
                    tmp[k, m] = s
            for z in range(64):
                k = ZIGZAG[z]
                u, v = k // 8, k % 8
                s = 0.0
                for m in range(8):
                    s += tmp[u, m] * BASIS[v, m]
                r = s / steps[k]
                a = abs(r)
                if z == 0:
                    lv = np.floor(a + 0.5)
                else:
                    lv = np.floor(a + 0.5 - dz)
                    if lv < 0:
                        lv = 0.0
                out[by - by0, bx, z] = np.int32(-lv if r < 0 else lv)


@numba.njit(inline="always", **JIT)
def inverse_block(lv, steps, off, plane, y0, x0, T, cu, cv, cx):  # pragma: no cover - compiled
    """Dequantise one block's 64 zigzag levels (steps of its plane kind, offsets (3, 64)) and write its
    samples, cropped, at (y0, x0) of the plane (section 4.3). Scratch: T (8, 8) int64, cu, cv, cx (64,) int64.

    The spec's two sums over the nonzero coefficients only: the first pass adds each one into the 8 entries of
    its column of T, the second runs over the columns that hold one; a DC-only block is one value."""
    h, w = plane.shape
    n_nz = 0
    cols = 0  # bit v: column v holds a nonzero
    for z in range(64):
        l = np.int64(lv[z])
        if l != 0:
            a = abs(l)
            k = ZIGZAG[z]
            val = (a * 256 - np.int64(off[min(a, 3) - 1, z])) * np.int64(steps[k])
            cu[n_nz] = k >> 3
            cv[n_nz] = k & 7
            cx[n_nz] = -val if l < 0 else val
            cols |= 1 << (k & 7)
            n_nz += 1
    hh, ww = min(8, h - y0), min(8, w - x0)
    if cols <= 1 and (n_nz == 0 or cu[0] == 0) and n_nz <= 1:  # DC only (or nothing): one value
        t = (IBASIS[0, 0] * (cx[0] if n_nz else 0) + 2048) >> 12
        v = ((t * IBASIS[0, 0] + (1 << 19)) >> 20) + 128
        v = 0 if v < 0 else (255 if v > 255 else v)
        for n in range(hh):
            for m in range(ww):
                plane[y0 + n, x0 + m] = v
        return
    for v in range(8):
        if (cols >> v) & 1:
            for n in range(8):
                T[n, v] = 0
    for i in range(n_nz):  # T[n][v] = sum_u A[u][n] X[u][v]
        u, v, x = cu[i], cv[i], cx[i]
        for n in range(8):
            T[n, v] += IBASIS[u, n] * x
    for v in range(8):
        if (cols >> v) & 1:
            for n in range(8):
                T[n, v] = (T[n, v] + 2048) >> 12
    for n in range(hh):
        for m in range(ww):
            s = np.int64(0)
            for v in range(8):
                if (cols >> v) & 1:
                    s += T[n, v] * IBASIS[v, m]
            val = ((s + (1 << 19)) >> 20) + 128
            plane[y0 + n, x0 + m] = 0 if val < 0 else (255 if val > 255 else val)


@numba.njit(**JIT)
def smooth_rgb(y, cb, cr, out, r0, r1):  # pragma: no cover - compiled
    """Rows r0..r1-1 of RGB from full-size Y and half-size Cb, Cr, chroma by the triangle filter (section 4.3).

    Per output row: the vertical pass (3 near + far) once per chroma column into a row padded by one column
    each side (edge replication), the horizontal pass into full-width U and V rows, the colour conversion into
    separate R, G, B rows (loops that vectorise), then one interleaving copy into the output."""
    w = y.shape[1]
    ch, cw = cb.shape
    su, sv = np.empty(cw + 2, np.int32), np.empty(cw + 2, np.int32)
    U, V = np.empty(2 * cw, np.int32), np.empty(2 * cw, np.int32)
    R, G, B = np.empty(w, np.int32), np.empty(w, np.int32), np.empty(w, np.int32)
    for i in range(r0, r1):
        a = i >> 1
        a2 = min(max(a - 1 if (i & 1) == 0 else a + 1, 0), ch - 1)
        ca, ca2, ra, ra2 = cb[a], cb[a2], cr[a], cr[a2]
        for b in range(cw):
            su[b + 1] = 3 * np.int32(ca[b]) + np.int32(ca2[b])
            sv[b + 1] = 3 * np.int32(ra[b]) + np.int32(ra2[b])
        su[0], sv[0], su[cw + 1], sv[cw + 1] = su[1], sv[1], su[cw], sv[cw]
        for b in range(cw):  # even columns lean left, odd ones right
            U[2 * b] = ((3 * su[b + 1] + su[b] + 8) >> 4) - 128
            U[2 * b + 1] = ((3 * su[b + 1] + su[b + 2] + 8) >> 4) - 128
            V[2 * b] = ((3 * sv[b + 1] + sv[b] + 8) >> 4) - 128
            V[2 * b + 1] = ((3 * sv[b + 1] + sv[b + 2] + 8) >> 4) - 128
        yr = y[i]
        for j in range(w):
            yy, u, v = np.int32(yr[j]), U[j], V[j]
            R[j] = min(max(yy + ((91881 * v + 32768) >> 16), 0), 255)
            G[j] = min(max(yy + ((-22554 * u - 46802 * v + 32768) >> 16), 0), 255)
            B[j] = min(max(yy + ((116130 * u + 32768) >> 16), 0), 255)
        orow = out[i]
        for j in range(w):
            orow[j, 0], orow[j, 1], orow[j, 2] = R[j], G[j], B[j]


@numba.njit(**JIT)
def reconstruct_rows(lv, steps, off, plane, by0):  # pragma: no cover - compiled
    """Samples of block rows by0.. of a plane from their levels lv (rows, gw, 64) (section 4.3)."""
    T = np.empty((8, 8), np.int64)
    cu, cv, cx = np.empty(64, np.int64), np.empty(64, np.int64), np.empty(64, np.int64)
    for r in range(lv.shape[0]):
        for c in range(lv.shape[1]):
            inverse_block(lv[r, c], steps, off, plane, (by0 + r) * 8, c * 8, T, cu, cv, cx)
