"""Exact nearest-centroid search: faiss builds the helper tables, numba kernels answer queries."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import kernels

_MAX_NEIGHBOURS = 256
_BITS = 4  # guess table: 16 levels per patch quadrant (65,536 cells)


class Searcher:
    """Nearest centroid under squared L2 in float32, ties to the lowest index (bit-exact, any threads).

    2x2 patches go through lazily built grid cells with short candidate lists (kernels.cells_*);
    other patch sizes and out-of-range values use the neighbour-list pivot search.
    """

    def __init__(self, centroids: np.ndarray, patch: int) -> None:
        import faiss  # imported lazily: decoding never needs it

        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.patch = patch
        k, d = self.centroids.shape
        self.bits = _BITS
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
        self._lock = threading.Lock()
        self.top = np.full(16**4, -1, np.int32)
        self.bcell = np.full((0, 256), -1, np.int64)  # per cell: -1 unbuilt, -2 pivot, else start << 16 | count
        self.cand = np.zeros(0, np.int32)
        self.nblocks = np.zeros(1, np.int64)
        self.ncand = np.zeros(1, np.int64)

    def _build(self, x: np.ndarray) -> None:
        """Make sure every cell hit by x has its candidate list (single-threaded, under a lock)."""
        with self._lock:
            while True:
                r = kernels.cells_build(x, self.centroids, self.lut, self.bits, self.nbr, self.nbrd, self.top,
                                        self.bcell, self.nblocks, self.cand, self.ncand)
                if r == 0:
                    return
                if r == 1:
                    n = max(64, self.bcell.shape[0])
                    self.bcell = np.concatenate([self.bcell, np.full((n, 256), -1, np.int64)])
                else:
                    self.cand = np.concatenate([self.cand, np.zeros(max(1 << 16, self.cand.size), np.int32)])

    def _run(self, x: np.ndarray, out: np.ndarray) -> None:
        if self.patch == 2:
            kernels.cells_search(x, self.centroids, self.lut, self.bits, self.nbr, self.nbrd,
                                 self.top, self.bcell, self.cand, out)
        else:
            kernels.nearest_pivot(x, self.centroids, self.patch, self.lut, self.bits, self.nbr, self.nbrd, out)

    def nearest(self, x: np.ndarray, threads: int = 1) -> np.ndarray:
        """Index of the nearest centroid for each row of float32 x (n, d)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty(x.shape[0], dtype=np.int32)
        if x.shape[0] == 0:
            return out
        if self.patch == 2:
            self._build(x)
        if threads <= 1 or x.shape[0] < 32768:
            self._run(x, out)
            return out
        bounds = np.linspace(0, x.shape[0], threads + 1).astype(int)
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda ab: self._run(x[ab[0] : ab[1]], out[ab[0] : ab[1]]), zip(bounds[:-1], bounds[1:])))
        return out


def nearest_brute(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Reference full scan with the same arithmetic and tie rule (for tests)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty(x.shape[0], dtype=np.int32)
    kernels.nearest_brute(x, np.ascontiguousarray(centroids, dtype=np.float32), out)
    return out
