"""Plain-numpy twins of the compiled kernels: the readable reference the tests compare the kernels against."""
from __future__ import annotations

import numpy as np

from symcodec.vq.colour import chroma_size
from symcodec.vq.patches import grid


def extract_numpy(batch: np.ndarray, p: int) -> np.ndarray:
    """`symcodec.vq.patches.extract` with numpy reshapes: (N,H,W,C) -> float32 (N,C,gh,gw,p*p)."""
    n, h, w, c = batch.shape
    gh, gw = grid(h, w, p)
    pad = ((0, 0), (0, gh * p - h), (0, gw * p - w), (0, 0))
    x = np.pad(batch, pad, mode="edge")
    x = x.astype(np.float32) / np.float32(255) if batch.dtype == np.uint8 else x.astype(np.float32)
    x = x.reshape(n, gh, p, gw, p, c).transpose(0, 5, 1, 3, 2, 4)
    return np.ascontiguousarray(x.reshape(n, c, gh, gw, p * p))


def tile_numpy(symbols: np.ndarray, table: np.ndarray, p: int, h: int, w: int) -> np.ndarray:
    """`symcodec.vq.patches.tile` with numpy: centroids looked up and tiled into (N,H,W,C), cropped."""
    n, c, gh, gw = symbols.shape
    x = table[symbols].reshape(n, c, gh, gw, p, p).transpose(0, 2, 4, 3, 5, 1)
    return np.ascontiguousarray(x.reshape(n, gh * p, gw * p, c)[:, :h, :w])


def nearest_brute(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid by full scan: float32 squared distances summed in vector order, ties to the lowest index."""
    x = np.asarray(x, np.float32)
    c = np.asarray(centroids, np.float32)
    out = np.empty(len(x), np.int32)
    for s in range(0, len(x), 4096):
        xs = x[s : s + 4096]
        t = xs[:, None, 0] - c[None, :, 0]
        d = t * t
        for q in range(1, c.shape[1]):
            t = xs[:, None, q] - c[None, :, q]
            d += t * t
        out[s : s + 4096] = d.argmin(1)  # the first minimum
    return out


def rgb_to_planes_numpy(a: np.ndarray) -> list[np.ndarray]:
    """`symcodec.vq.colour.rgb_to_planes` with numpy arrays (formats/sym.md section 4.2)."""
    x = a.astype(np.int64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = (19595 * r + 38470 * g + 7471 * b + 32768) >> 16
    cb = (-11059 * r - 21709 * g + 32768 * b + (128 << 16) + 32768) >> 16
    cr = (32768 * r - 27439 * g - 5329 * b + (128 << 16) + 32768) >> 16
    h, w = y.shape
    ch, cw = chroma_size(h, w)
    out = [np.clip(y, 0, 255).astype(np.uint8)]
    for c in (cb, cr):
        c = np.clip(c, 0, 255)
        c = np.pad(c, ((0, 2 * ch - h), (0, 2 * cw - w)), mode="edge")
        s = c[0::2, 0::2] + c[1::2, 0::2] + c[0::2, 1::2] + c[1::2, 1::2]
        out.append(((s + 2) >> 2).astype(np.uint8))
    return out


def planes_to_rgb_numpy(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """`symcodec.vq.colour.planes_to_rgb` with numpy arrays (formats/sym.md section 4.2)."""
    h, w = y.shape
    up = [np.repeat(np.repeat(c.astype(np.int64), 2, 0), 2, 1)[:h, :w] - 128 for c in (cb, cr)]
    yy = y.astype(np.int64)
    r = yy + ((91881 * up[1] + 32768) >> 16)
    g = yy + ((-22554 * up[0] - 46802 * up[1] + 32768) >> 16)
    b = yy + ((116130 * up[0] + 32768) >> 16)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


# -- the transform mode, written from formats/sym.md section 4.3 with numpy integers ---------------------
ZIGZAG = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
          35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63]
SPEC_A = np.array([[1448, 1448, 1448, 1448, 1448, 1448, 1448, 1448], [2009, 1703, 1138, 400, -400, -1138, -1703, -2009],
                   [1892, 784, -784, -1892, -1892, -784, 784, 1892], [1703, -400, -2009, -1138, 1138, 2009, 400, -1703],
                   [1448, -1448, -1448, 1448, 1448, -1448, -1448, 1448], [1138, -2009, 400, 1703, -1703, -400, 2009, -1138],
                   [784, -1892, 1892, -784, -784, 1892, -1892, 784], [400, -1138, 1703, -2009, 2009, -1703, 1138, -400]], np.int64)


def transform_plane_reference(levels: np.ndarray, steps: np.ndarray, offsets: np.ndarray, h: int, w: int) -> np.ndarray:
    """One plane from its levels (gh, gw, 64 zigzag), steps (64 natural) and offsets (3, 64): the spec's sums, literally."""
    gh, gw, _ = levels.shape
    out = np.zeros((gh * 8, gw * 8), np.int64)
    for i in range(gh):
        for j in range(gw):
            X = np.zeros((8, 8), np.int64)
            for z in range(64):
                lv = int(levels[i, j, z])
                if lv:
                    k = ZIGZAG[z]
                    val = (abs(lv) * 256 - int(offsets[min(abs(lv), 3) - 1, z])) * int(steps[k])
                    X[k // 8, k % 8] = val if lv > 0 else -val
            T = (SPEC_A.T @ X + 2048) >> 12  # T[n][v] = sum_u A[u][n] X[u][v]
            x = (T @ SPEC_A + (1 << 19)) >> 20  # x[n][m] = sum_v T[n][v] A[v][m]
            out[i * 8 : i * 8 + 8, j * 8 : j * 8 + 8] = np.clip(x + 128, 0, 255)
    return out[:h, :w].astype(np.uint8)


def triangle_rgb_reference(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """RGB from Y and half-size Cb, Cr with the spec's 9-3-3-1 chroma filter and section 4.2's conversion."""
    h, w = y.shape
    ch, cw = cb.shape
    yi, xi = np.arange(h), np.arange(w)
    a, b = yi >> 1, xi >> 1
    a2 = np.clip(np.where(yi % 2 == 0, a - 1, a + 1), 0, ch - 1)
    b2 = np.clip(np.where(xi % 2 == 0, b - 1, b + 1), 0, cw - 1)

    def up(c: np.ndarray) -> np.ndarray:
        c = c.astype(np.int64)
        return (9 * c[a][:, b] + 3 * c[a2][:, b] + 3 * c[a][:, b2] + c[a2][:, b2] + 8) >> 4

    return planes_to_rgb_numpy_full(y, up(cb), up(cr))


def planes_to_rgb_numpy_full(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Section 4.2's RGB from full-size Y, Cb, Cr."""
    yy, u, v = y.astype(np.int64), cb.astype(np.int64) - 128, cr.astype(np.int64) - 128
    r = yy + ((91881 * v + 32768) >> 16)
    g = yy + ((-22554 * u - 46802 * v + 32768) >> 16)
    b = yy + ((116130 * u + 32768) >> 16)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)
