"""Exact nearest-centroid search: faiss builds the helper tables, a numba kernel answers queries."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import kernels

_MAX_NEIGHBOURS = 256


def _faiss():
    import faiss  # imported lazily: decoding never needs it

    return faiss


class Searcher:
    """Nearest centroid under squared L2 in float32, ties to the lowest index (bit-exact, any threads)."""

    def __init__(self, centroids: np.ndarray, patch: int) -> None:
        faiss = _faiss()
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.patch = patch
        k, d = self.centroids.shape
        # finer grid for large codebooks with 2x2 patches; 16 levels per quadrant otherwise
        self.bits = 5 if (k > 256 and patch == 2) else 4
        index = faiss.IndexFlatL2(d)
        index.add(self.centroids)
        nb = 1 << self.bits
        g = (np.arange(nb, dtype=np.float32) + 0.5) / nb
        quad = np.stack(np.meshgrid(g, g, g, g, indexing="ij"), -1).reshape(-1, 4)
        half = patch // 2
        qy = (np.arange(patch)[:, None] >= half).astype(int) * 2 + (np.arange(patch)[None, :] >= half)
        centres = np.ascontiguousarray(quad[:, qy.ravel()])  # each cell centre as a full patch
        _, lut = index.search(centres, 1)
        dn, nn = index.search(self.centroids, min(k, _MAX_NEIGHBOURS))
        self.lut = np.ascontiguousarray(lut[:, 0], dtype=np.int32)
        self.nbr = np.ascontiguousarray(nn, dtype=np.int32)
        self.nbrd = np.ascontiguousarray(np.sqrt(np.maximum(dn, 0)), dtype=np.float32)

    def nearest(self, x: np.ndarray, threads: int = 1) -> np.ndarray:
        """Index of the nearest centroid for each row of float32 x (n, d)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty(x.shape[0], dtype=np.int32)
        if x.shape[0] == 0:
            return out
        run = kernels.nearest_pivot
        args = (self.centroids, self.patch, self.lut, self.bits, self.nbr, self.nbrd)
        if threads <= 1 or x.shape[0] < 65536:
            run(x, *args, out)
            return out
        bounds = np.linspace(0, x.shape[0], threads + 1).astype(int)
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda ab: run(x[ab[0] : ab[1]], *args, out[ab[0] : ab[1]]), zip(bounds[:-1], bounds[1:])))
        return out


def nearest_brute(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Reference full scan with the same arithmetic and tie rule (for tests)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty(x.shape[0], dtype=np.int32)
    kernels.nearest_brute(x, np.ascontiguousarray(centroids, dtype=np.float32), out)
    return out
