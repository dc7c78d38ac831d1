"""Exact nearest-centroid search: faiss builds the helper tables, numba kernels answer queries."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import kernels

_MAX_NEIGHBOURS = 512
_BITS = 4  # guess table: 16 levels per patch quadrant (65,536 cells)
_MAX_CAND = 1 << 25  # cell-cache bounds: 32M candidates (64 MiB), 16M slots (128 MiB)
_MAX_SLOTS = 1 << 24


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
        self.table = np.full(1 << 16, -1, np.int64)  # cell hash table (kernels.cells_*)
        self.used = np.zeros(1, np.int64)
        self.cand = np.zeros(1 << 16, np.uint16 if k <= 65536 else np.int32)
        self.ncand = np.zeros(1, np.int64)

    def _build(self, x: np.ndarray, i: int) -> None:
        """Build the cells hit by x[i:], growing the tables as needed (single-threaded, under a lock)."""
        with self._lock:
            while True:
                i = kernels.cells_build(x, i, self.centroids, self.lut, self.bits, self.nbr, self.nbrd,
                                        self.table, self.used, self.cand, self.ncand)
                if i == x.shape[0]:
                    return
                if self.ncand[0] > _MAX_CAND or self.table.size >= _MAX_SLOTS:
                    # the cell cache is only a cache: start it afresh rather than grow without bound
                    self.table = np.full(1 << 16, -1, np.int64)
                    self.used[0] = self.ncand[0] = 0
                elif 2 * (self.used[0] + 1) > self.table.size:
                    new = np.full(2 * self.table.size, -1, np.int64)
                    kernels.cells_rehash(self.table, new)
                    self.table = new
                else:
                    self.cand = np.concatenate([self.cand, np.zeros(self.cand.size, self.cand.dtype)])

    def _run(self, x: np.ndarray, out: np.ndarray) -> None:
        if self.patch != 2:
            kernels.nearest_pivot(x, self.centroids, self.patch, self.lut, self.bits, self.nbr, self.nbrd, out)
            return
        i = 0
        while True:
            i = kernels.cells_search(x, i, self.centroids, self.lut, self.bits, self.nbr, self.nbrd, self.table, self.cand, out)
            if i == x.shape[0]:
                return
            self._build(x, i)

    def nearest(self, x: np.ndarray, threads: int = 1) -> np.ndarray:
        """Index of the nearest centroid for each row of float32 x (n, d)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty(x.shape[0], dtype=np.int32)
        if x.shape[0] == 0:
            return out
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
