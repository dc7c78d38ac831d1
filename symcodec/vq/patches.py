"""Image arrays <-> patch batches (formats/sym.md section 4): shape checks, patches by edge replication, tiling back."""
from __future__ import annotations

import numpy as np

from ..errors import EmptyImageError, UnsupportedModeError
from . import kernels


def as_batch(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """View (H,W), (H,W,C) or (N,H,W,C) as (N,H,W,C); also say whether the input was a single image."""
    x = np.asarray(x)
    if x.dtype != np.uint8 and x.dtype.kind != "f":
        msg = f"array dtype {x.dtype} not supported, expected uint8 or float in [0, 1]"
        raise UnsupportedModeError(msg)
    if x.ndim == 2:
        b, single = x[None, :, :, None], True
    elif x.ndim == 3:
        b, single = x[None], True
    elif x.ndim == 4:
        b, single = x, False
    else:
        msg = f"array of shape {x.shape} is not an image: expected (H,W), (H,W,C) or (N,H,W,C)"
        raise UnsupportedModeError(msg)
    if b.shape[1] == 0 or b.shape[2] == 0 or b.shape[3] == 0:
        msg = f"empty image of shape {x.shape}"
        raise EmptyImageError(msg)
    if b.dtype.kind == "f":
        b = b.astype(np.float32, copy=False)
        if not np.isfinite(b).all():
            msg = "float image contains NaN or infinity"
            raise UnsupportedModeError(msg)
    return np.ascontiguousarray(b), single


def grid(h: int, w: int, p: int) -> tuple[int, int]:
    """Patch grid size: ceil(h/p) x ceil(w/p)."""
    return -(-h // p), -(-w // p)


def extract(batch: np.ndarray, p: int) -> np.ndarray:
    """Patches of an (N,H,W,C) uint8 or float32 batch: float32 (N,C,gh,gw,p*p) in [0,1]."""
    n, h, w, c = batch.shape
    gh, gw = grid(h, w, p)
    out = np.empty((n, c, gh, gw, p * p), dtype=np.float32)
    if batch.dtype == np.uint8:
        kernels.extract_u8(batch, p, out)
    else:
        kernels.extract_f32(np.ascontiguousarray(batch, dtype=np.float32), p, out)
    return out


def tile(symbols: np.ndarray, table: np.ndarray, p: int, h: int, w: int) -> np.ndarray:
    """Look centroids up and tile them into (N,H,W,C) images of table's dtype, cropped to h x w."""
    n, c = symbols.shape[:2]
    out = np.empty((n, h, w, c), dtype=table.dtype)
    kernels.gather(np.ascontiguousarray(symbols, dtype=np.int32), np.ascontiguousarray(table), p, out)
    return out


def block_mean(a: np.ndarray, p: int) -> np.ndarray:
    """Mean of each p x p block of an (H, W) plane (edge-replicated padding), rounded, uint8: a 1/p-scale preview."""
    gh, gw = grid(a.shape[0], a.shape[1], p)
    a = np.pad(a, ((0, gh * p - a.shape[0]), (0, gw * p - a.shape[1])), mode="edge")
    m = a.reshape(gh, p, gw, p).mean(axis=(1, 3), dtype=np.float32)
    return np.clip(np.rint(m), 0, 255).astype(np.uint8)
