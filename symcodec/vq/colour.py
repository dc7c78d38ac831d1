"""Colour 1 (`ycc420`): RGB as Y, Cb, Cr planes (BT.601 full range, as JPEG), chroma subsampled 2x2.

All conversions are integer arithmetic (formats/sym.md section 4.2), so decoding is exact everywhere.
The conversions run as compiled kernels; tests/reference.py holds their numpy twins, the readable
reference the tests compare against.
"""
from __future__ import annotations

import numba
import numpy as np

from ..jit import JIT as _JIT
from .patches import grid


def chroma_size(h: int, w: int) -> tuple[int, int]:
    """Chroma plane size for an h x w image: ceil(h/2) x ceil(w/2)."""
    return -(-h // 2), -(-w // 2)


@numba.njit(inline="always", **_JIT)
def _clip(v):  # pragma: no cover - compiled
    return 0 if v < 0 else (255 if v > 255 else v)


@numba.njit(**_JIT)
def _to_planes(a, y, cb, cr):  # pragma: no cover - compiled
    h, w = y.shape
    for i in range(h):
        for j in range(w):
            r, g, b = np.int64(a[i, j, 0]), np.int64(a[i, j, 1]), np.int64(a[i, j, 2])
            y[i, j] = _clip((19595 * r + 38470 * g + 7471 * b + 32768) >> 16)
    for ci in range(cb.shape[0]):
        for cj in range(cb.shape[1]):
            su, sv = 0, 0
            for di in range(2):
                i = min(2 * ci + di, h - 1)  # edge replication past the last row/column
                for dj in range(2):
                    j = min(2 * cj + dj, w - 1)
                    r, g, b = np.int64(a[i, j, 0]), np.int64(a[i, j, 1]), np.int64(a[i, j, 2])
                    su += _clip((-11059 * r - 21709 * g + 32768 * b + (128 << 16) + 32768) >> 16)
                    sv += _clip((32768 * r - 27439 * g - 5329 * b + (128 << 16) + 32768) >> 16)
            cb[ci, cj] = (su + 2) >> 2
            cr[ci, cj] = (sv + 2) >> 2


@numba.njit(**_JIT)
def _to_rgb(y, cb, cr, out):  # pragma: no cover - compiled
    h, w = y.shape
    for i in range(h):
        for j in range(w):
            u = np.int64(cb[i >> 1, j >> 1]) - 128
            v = np.int64(cr[i >> 1, j >> 1]) - 128
            yy = np.int64(y[i, j])
            out[i, j, 0] = _clip(yy + ((91881 * v + 32768) >> 16))
            out[i, j, 1] = _clip(yy + ((-22554 * u - 46802 * v + 32768) >> 16))
            out[i, j, 2] = _clip(yy + ((116130 * u + 32768) >> 16))


@numba.njit(inline="always", **_JIT)
def _plane_patches(pl, p, out, o):  # pragma: no cover - compiled
    """Edge-replicated p x p patches of a uint8 plane, /255, into rows o.. of out; returns the next row."""
    h, w = pl.shape
    gh, gw = -(-h // p), -(-w // p)
    for gy in range(gh):
        for gx in range(gw):
            for dy in range(p):
                y = min(gy * p + dy, h - 1)
                for dx in range(p):
                    out[o, dy * p + dx] = np.float32(pl[y, min(gx * p + dx, w - 1)]) / np.float32(255.0)
            o += 1
    return o


@numba.njit(**_JIT)
def _ycc_patches(a, p):  # pragma: no cover - compiled
    h, w = a.shape[0], a.shape[1]
    ch, cw = (h + 1) // 2, (w + 1) // 2
    y, cb, cr = np.empty((h, w), np.uint8), np.empty((ch, cw), np.uint8), np.empty((ch, cw), np.uint8)
    _to_planes(a, y, cb, cr)
    ny = ((h + p - 1) // p) * ((w + p - 1) // p)
    nc = ((ch + p - 1) // p) * ((cw + p - 1) // p)
    out = np.empty((ny + 2 * nc, p * p), np.float32)
    o = _plane_patches(y, p, out, 0)
    o = _plane_patches(cb, p, out, o)
    _plane_patches(cr, p, out, o)
    return out


@numba.njit(inline="always", **_JIT)
def _plane_gather(sym, o, table, p, pl):  # pragma: no cover - compiled
    """Tile the centroids of symbols sym[o:] (one plane's grid, row-major) into plane pl, cropping the padding."""
    h, w = pl.shape
    gw = (w + p - 1) // p
    for y in range(h):
        row = o + (y // p) * gw
        dy = (y % p) * p
        for x in range(w):
            pl[y, x] = table[sym[row + x // p], dy + x % p]
    return o + ((h + p - 1) // p) * gw


@numba.njit(**_JIT)
def _ycc_pixels(sym, table, p, h, w):  # pragma: no cover - compiled
    ch, cw = (h + 1) // 2, (w + 1) // 2
    y, cb, cr = np.empty((h, w), np.uint8), np.empty((ch, cw), np.uint8), np.empty((ch, cw), np.uint8)
    o = _plane_gather(sym, 0, table, p, y)
    o = _plane_gather(sym, o, table, p, cb)
    _plane_gather(sym, o, table, p, cr)
    out = np.empty((h, w, 3), np.uint8)
    _to_rgb(y, cb, cr, out)
    return out


def ycc_pixels(sym: np.ndarray, table_u8: np.ndarray, p: int, h: int, w: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB from the Y, Cb, Cr symbols of a colour-1 image, one flat array in plane order."""
    return _ycc_pixels(np.ascontiguousarray(sym, dtype=np.int32), np.ascontiguousarray(table_u8), p, h, w)


def ycc_patches(a: np.ndarray, p: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(H, W, 3) uint8 RGB -> the p x p patches of its Y, Cb and Cr planes as float32 rows, and each plane's grid."""
    h, w = a.shape[:2]
    grids = [grid(h, w, p)] + [grid(*chroma_size(h, w), p)] * 2
    return _ycc_patches(np.ascontiguousarray(a, dtype=np.uint8), p), grids


def rgb_to_planes(a: np.ndarray) -> list[np.ndarray]:
    """(H, W, 3) uint8 RGB -> [Y (H, W), Cb, Cr (ceil(H/2), ceil(W/2))], uint8."""
    h, w = a.shape[:2]
    ch, cw = chroma_size(h, w)
    y, cb, cr = np.empty((h, w), np.uint8), np.empty((ch, cw), np.uint8), np.empty((ch, cw), np.uint8)
    _to_planes(np.ascontiguousarray(a, dtype=np.uint8), y, cb, cr)
    return [y, cb, cr]


def planes_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Y (H, W) and half-size Cb, Cr (uint8) -> (H, W, 3) uint8 RGB; chroma upsampled by 2x2 replication."""
    out = np.empty(y.shape + (3,), np.uint8)
    _to_rgb(np.ascontiguousarray(y), np.ascontiguousarray(cb), np.ascontiguousarray(cr), out)
    return out
