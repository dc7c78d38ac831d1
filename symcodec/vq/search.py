"""Exact nearest-centroid search (formats/sym.md section 4.1): numba kernels over two helper tables.

The helper tables (a first-guess table over a grid of cells, each centroid's distance-sorted neighbours)
only steer the search; every answer is proven exact by the kernels (symcodec.vq.kernels), so how the
tables are built never changes a symbol. They are built here with a vectorised scan and float64 BLAS
(about 0.3 s for K=2048), not faiss, so encoding needs no faiss.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import kernels

_MAX_NEIGHBOURS = 512
_BITS = 4  # guess table: 16 levels per patch quadrant (65,536 cells)
_MAX_CAND = 1 << 25  # cell-cache bounds: 32M candidates (64 MiB), 16M slots (128 MiB)
_MAX_SLOTS = 1 << 24
_BLOCK = 1 << 22  # distance-matrix entries per block while building the tables (32 MiB of float64)


def _sqdist_blocks(a: np.ndarray, b: np.ndarray):
    """Row blocks of the squared distances between a's and b's rows, float64 by |a|^2 + |b|^2 - 2ab (BLAS)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    bn = (b64 * b64).sum(1)
    step = max(1, _BLOCK // len(b))
    for s in range(0, len(a), step):
        blk = a64[s : s + step]
        d = (blk * blk).sum(1)[:, None] + bn[None, :] - 2.0 * (blk @ b64.T)
        yield s, np.maximum(d, 0.0, out=d)


def cell_centres(bits: int, patch: int) -> np.ndarray:
    """The centre of each cell of the guess grid (2**bits levels per patch quadrant) as a full patch, float32."""
    nb = 1 << bits
    g = (np.arange(nb, dtype=np.float32) + 0.5) / nb
    quad = np.stack(np.meshgrid(g, g, g, g, indexing="ij"), -1).reshape(-1, 4)
    half = patch // 2
    qy = (np.arange(patch)[:, None] >= half).astype(int) * 2 + (np.arange(patch)[None, :] >= half)
    return np.ascontiguousarray(quad[:, qy.ravel()])


def neighbours(centroids: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Each centroid's m nearest centroids (itself first), ascending by distance, and those distances (float32).

    The kernels prune with these distances and a relative slack of 1e-4, far above float64's error here.
    """
    k = len(centroids)
    nbr = np.empty((k, m), np.int32)
    dist = np.empty((k, m), np.float32)
    rows = np.arange(k)
    for s, d in _sqdist_blocks(centroids, centroids):
        r = rows[s : s + len(d)] - s
        d[r, rows[s : s + len(d)]] = -1.0  # each centroid first, even beside an exact duplicate
        part = np.argpartition(d, m - 1, axis=1)[:, :m] if m < k else np.broadcast_to(rows, d.shape)
        dd = np.take_along_axis(d, part, 1)
        order = np.lexsort((part, dd), axis=1)  # by distance, ties to the lower index
        nbr[s : s + len(d)] = np.take_along_axis(part, order, 1)
        dist[s : s + len(d)] = np.sqrt(np.maximum(np.take_along_axis(dd, order, 1), 0.0))
    return nbr, dist


class Searcher:
    """Nearest centroid under squared L2 in float32, ties to the lowest index (bit-exact, any threads).

    2x2 patches go through lazily built grid cells with short candidate lists (kernels.cells_*);
    other patch sizes and out-of-range values use the neighbour-list pivot search.
    """

    def __init__(self, centroids: np.ndarray, patch: int) -> None:
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.patch = patch
        k = len(self.centroids)
        self.bits = _BITS
        self.nbr, self.nbrd = neighbours(self.centroids, min(k, _MAX_NEIGHBOURS))
        centres = cell_centres(self.bits, patch)  # the guess table: each grid cell's nearest centroid to start from
        self.lut = np.empty(len(centres), np.int32)
        kernels.nearest_scan(centres, np.ascontiguousarray(self.centroids.T), self.lut)
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
