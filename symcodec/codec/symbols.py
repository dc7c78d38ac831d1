"""Symbols without files: quantize images to centroid indices and reconstruct them (SymDNN's purifier).

These work on float [0, 1] or uint8 arrays and batches of any size, and give exactly the symbols and
pixels of a `.sym` round trip (formats/sym.md section 4).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..codebook import registry
from ..codebook.codebook import Codebook, TransformCodebook
from ..errors import CodebookError
from ..vq import patches
from ..vq.colour import planes_to_rgb, rgb_to_planes

STRIP_VALUES = 1 << 24  # float32 patch values held at once (64 MiB)


def patch_codebook(codebook: Codebook | TransformCodebook | str | None) -> Codebook:
    """The resolved codebook, which must be a patch codebook (CodebookError for a transform codebook)."""
    cb = registry.get(codebook)
    if isinstance(cb, TransformCodebook):
        msg = f"{cb.name or cb.short_id} is a transform codebook: it codes files; symbols and purification need a patch codebook"
        raise CodebookError(msg)
    return cb


def quantize(x: np.ndarray, codebook: Codebook | str | None = None, threads: int = 1) -> np.ndarray:
    """Symbols of an image or batch: (H,W)/(H,W,C) -> (C,gh,gw); (N,H,W,C) -> (N,C,gh,gw), int32.

    uint8 samples are scaled by 1/255; float samples are taken as [0, 1] values. Each channel is one plane.
    """
    cb = patch_codebook(codebook)
    batch, single = patches.as_batch(x)
    n, h, w, c = batch.shape
    p = cb.patch
    gh, gw = patches.grid(h, w, p)
    sym = np.empty((n, c, gh, gw), np.int32)
    # strips of patch rows keep the float32 patch buffer small for large images
    rows = max(1, STRIP_VALUES // max(1, n * c * gw * cb.dim))
    for r0 in range(0, gh, rows):
        r1 = min(gh, r0 + rows)
        pt = patches.extract(batch[:, r0 * p : min(h, r1 * p)], p)
        sym[:, :, r0:r1] = cb.searcher.nearest(pt.reshape(-1, cb.dim), threads=threads).reshape(pt.shape[:4])
    return sym[0] if single else sym


def reconstruct(
    symbols: np.ndarray,
    codebook: Codebook | str | None = None,
    shape: tuple[int, ...] | None = None,
    dtype: Any = np.uint8,
) -> np.ndarray:
    """Images from symbols, cropped to `shape` (the original array's shape); uint8 or float32 output."""
    cb = patch_codebook(codebook)
    sym = np.asarray(symbols)
    single = sym.ndim == 3
    sym4 = sym[None] if single else sym
    if sym4.ndim != 4:
        msg = f"symbols must have shape (C,gh,gw) or (N,C,gh,gw), got {sym.shape}"
        raise ValueError(msg)
    if sym4.size and (sym4.min() < 0 or sym4.max() >= cb.k):
        msg = f"symbols outside 0..{cb.k - 1} for this codebook"
        raise CodebookError(msg)
    n, c, gh, gw = sym4.shape
    h, w = gh * cb.patch, gw * cb.patch
    if shape is not None:
        h, w = (shape[0], shape[1]) if single else (shape[1], shape[2])
        if patches.grid(h, w, cb.patch) != (gh, gw):
            msg = f"shape {shape} does not fit a {gh}x{gw} grid of {cb.patch}x{cb.patch} patches"
            raise ValueError(msg)
    table = cb.table_u8 if np.dtype(dtype) == np.uint8 else cb.centroids
    out = patches.tile(sym4, table, cb.patch, h, w)
    if np.dtype(dtype) not in (np.uint8, np.float32):
        out = out.astype(dtype)
    if single:
        out = out[0]
    if shape is not None and len(shape) == (2 if single else 3):
        out = out[..., 0]
    return out


def purify(x: np.ndarray, codebook: Codebook | str | None = None, threads: int = 1) -> np.ndarray:
    """Quantize and reconstruct in one call; same shape and dtype family as `x` (what a `.sym` round trip gives)."""
    x = np.asarray(x)
    dt = np.uint8 if x.dtype == np.uint8 else np.float32
    cb = patch_codebook(codebook)
    if cb.colour == 1 and x.ndim in (3, 4) and x.shape[-1] == 3:
        return _purify_ycc(x, cb, threads)
    return reconstruct(quantize(x, cb, threads), cb, shape=x.shape, dtype=dt)


def _purify_ycc(x: np.ndarray, cb: Codebook, threads: int) -> np.ndarray:
    """Colour 1 (ycc420): each image's Y, Cb and Cr planes quantized and reconstructed, then back to RGB."""
    u8 = x.dtype == np.uint8
    a = x if u8 else np.clip(np.rint(x.astype(np.float32) * np.float32(255)), 0, 255).astype(np.uint8)
    batch = a if a.ndim == 4 else a[None]
    out = np.empty(batch.shape[:3] + (3,), np.uint8)
    for i, im in enumerate(batch):
        pl = rgb_to_planes(im[:, :, :3])
        out[i] = planes_to_rgb(*(reconstruct(quantize(p, cb, threads), cb, shape=p.shape) for p in pl))
    out = out if a.ndim == 4 else out[0]
    return out if u8 else out.astype(np.float32) / np.float32(255)
