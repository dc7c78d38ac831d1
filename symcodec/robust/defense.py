"""Purification defenses as torch modules: exact forward pass, attacker-chosen backward pass.

`Defended(purifier, classifier)` takes [0, 1] NCHW images and returns logits. Purifiers:
`VQPurifier` (nearest centroid, or SymDNN's random pick among the r+1 nearest), `JPEGPurifier`,
`BitDepthPurifier` and `Identity`. The forward pass is always the exact transform; the backward pass
is straight-through (BPDA identity) or, for VQ, a soft-assignment surrogate (softmax over negative
squared distances / T, weighted mean of the nearest centroids).
"""
from __future__ import annotations

import io
from typing import Any

import numba
import numpy as np
import torch
from PIL import Image
from torch import nn

from ..codebook import registry
from ..errors import SymcodecError

_SOFT_NEIGHBOURS = 32  # centroids entering the soft surrogate (the rest carry ~0 weight at useful T)
_TORCH_CELLS = 1 << 26  # distance-matrix entries per chunk of the torch search (256 MiB of float32)
_SPACING: dict[bytes, float] = {}  # default soft temperature per codebook id (an O(K^2) computation)


def _patches(x: torch.Tensor, p: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """(N,C,H,W) -> (N,C,gh,gw,p*p) with edge replication to a multiple of p; also the padded shape."""
    n, c, h, w = x.shape
    ph, pw = (-h) % p, (-w) % p
    if ph or pw:
        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate")
    hh, ww = h + ph, w + pw
    pt = x.reshape(n, c, hh // p, p, ww // p, p).permute(0, 1, 2, 4, 3, 5).reshape(n, c, hh // p, ww // p, p * p)
    return pt, (n, c, hh, ww)


def _unpatch(pt: torch.Tensor, p: int, shape: tuple[int, ...], h: int, w: int) -> torch.Tensor:
    """Inverse of `_patches`, cropped back to h x w."""
    n, c, hh, ww = shape
    x = pt.reshape(n, c, hh // p, ww // p, p, p).permute(0, 1, 2, 4, 3, 5).reshape(n, c, hh, ww)
    return x[:, :, :h, :w]


@numba.njit(cache=True, nogil=True)
def _offer(x, i, cent, c, best, out):  # pragma: no cover - compiled
    """Insert centroid c into row i's sorted k-best list if it is closer than the current k-th."""
    s = np.float32(0.0)
    for q in range(x.shape[1]):
        v = x[i, q] - cent[c, q]
        s += v * v
    k = best.shape[0]
    if s < best[k - 1]:
        t = k - 1
        while t > 0 and best[t - 1] > s:
            best[t] = best[t - 1]
            out[i, t] = out[i, t - 1]
            t -= 1
        best[t] = s
        out[i, t] = c


@numba.njit(cache=True, nogil=True)
def _knn_kernel(x, cent, c0, nbr, nbrd, out):  # pragma: no cover - compiled
    """k nearest centroids per row, scanning the nearest centroid's distance-sorted neighbour list.

    Stops once the list distance from c0 exceeds d(x, c0) + (k-th best distance): by the triangle
    inequality no later centroid can be closer. Falls back to a full scan if the list runs out first.
    """
    n, d = x.shape
    k = out.shape[1]
    kc = cent.shape[0]
    best = np.empty(k, np.float32)
    for i in range(n):
        for t in range(k):
            best[t] = np.inf
            out[i, t] = -1
        a = c0[i]
        d0 = np.float32(0.0)
        for q in range(d):
            v = x[i, q] - cent[a, q]
            d0 += v * v
        d0 = np.sqrt(d0)
        proven = False
        for j in range(nbr.shape[1]):
            if best[k - 1] < np.inf and nbrd[a, j] > d0 + np.sqrt(best[k - 1]) + 1e-6:
                proven = True
                break
            _offer(x, i, cent, nbr[a, j], best, out)
        if not proven and nbr.shape[1] < kc:
            for t in range(k):
                best[t] = np.inf
            for c in range(kc):
                _offer(x, i, cent, c, best, out)


def torch_distances(flat: torch.Tensor, cent: torch.Tensor) -> torch.Tensor:
    """Squared L2 distances (P, K), summed in the codec's order (float32, no FMA), on flat's device."""
    t = flat[:, None, 0] - cent[None, :, 0]
    d = t * t
    for q in range(1, flat.shape[1]):
        t = flat[:, None, q] - cent[None, :, q]
        d += t * t
    return d


def torch_knn(flat: torch.Tensor, cent: torch.Tensor, k: int) -> torch.Tensor:
    """Ids (P, k) of the k nearest centroids by brute force on the tensors' device; column 0 ties to the lowest id."""
    out = torch.empty((len(flat), k), dtype=torch.int64, device=flat.device)
    step = max(1, _TORCH_CELLS // len(cent))
    for s in range(0, len(flat), step):
        d = torch_distances(flat[s : s + step], cent)
        if k > 1:
            out[s : s + step] = torch.topk(d, k, dim=1, largest=False, sorted=True).indices
        out[s : s + step, 0] = torch.argmin(d, dim=1)  # first minimum: the codec's tie rule
    return out


class Purifier(nn.Module):
    """Base class: `transform` is the exact (non-differentiable) map; forward adds the straight-through path."""

    randomized = False

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """The exact purification of detached [0, 1] images."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            q = self.transform(x.detach())
        return q + (x - x.detach())  # exactly q forward, identity backward


class Identity(Purifier):
    """No defense."""

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class BitDepthPurifier(Purifier):
    """Reduce each sample to `bits` bits (Xu et al. 2018 feature squeezing as a preprocessor)."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.bits = bits

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        lv = float(2**self.bits - 1)
        return torch.round(x.clamp(0, 1) * lv) / lv


class JPEGPurifier(Purifier):
    """JPEG round trip at a quality (Pillow, 4:2:0 as Pillow's default), BPDA-identity backward."""

    def __init__(self, quality: int) -> None:
        super().__init__()
        self.quality = quality

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        a = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        out = np.empty_like(a)
        for i in range(a.shape[0]):  # one Pillow call per image; a 32x32 round trip is ~0.1 ms
            im = Image.fromarray(a[i, :, :, 0] if a.shape[3] == 1 else a[i])
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=self.quality)
            dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
            out[i] = dec[:, :, None] if dec.ndim == 2 else dec
        return torch.from_numpy(out).permute(0, 3, 1, 2).to(x.device, x.dtype).div(255)


class VQPurifier(Purifier):
    """Patch VQ purifier over a symcodec codebook.

    rlevel=None: nearest centroid. rlevel=r: each patch independently takes one of its r+1 nearest
    centroids uniformly at random (SymDNN's `randomize=True, rlevel=r, rbalance=True`).
    backward='ste' (identity) or 'soft' (softmax(-d^2/T) over the nearest centroids, T=temperature).
    search='auto' uses the codec's exact searcher (numba, CPU) for CPU tensors and a brute-force torch
    search on the tensors' device (a GPU) otherwise; 'codec' or 'torch' force one.
    """

    def __init__(self, codebook: Any, rlevel: int | None = None, backward: str = "ste",
                 temperature: float | None = None, seed: int = 0, search: str = "auto") -> None:
        super().__init__()
        self.cb = registry.get(codebook)
        self.p = self.cb.patch
        self.rlevel = rlevel
        self.randomized = rlevel is not None and rlevel > 0
        if backward not in ("ste", "soft"):
            raise SymcodecError(f"unknown backward pass {backward!r} (expected 'ste' or 'soft')")
        self.backward_mode = backward
        if search not in ("auto", "codec", "torch"):
            raise SymcodecError(f"unknown search {search!r} (expected 'auto', 'codec' or 'torch')")
        self.search = search
        self.register_buffer("centroids", torch.from_numpy(self.cb.centroids.copy()))
        self.temperature = float(temperature) if temperature is not None else self.default_temperature()
        self.generator = torch.Generator().manual_seed(seed)
        self.frozen: torch.Tensor | None = None  # fixed ranks (C,gh,gw) per patch position when frozen

    def default_temperature(self) -> float:
        """Half the mean squared distance from a centroid to its nearest other centroid (exact, float64)."""
        t = _SPACING.get(self.cb.id)
        if t is None:
            c = self.cb.centroids.astype(np.float64)
            best = np.full(len(c), np.inf)
            for s in range(0, len(c), 256):
                d = ((c[s : s + 256, None, :] - c[None, :, :]) ** 2).sum(-1)
                d[np.arange(len(d)), np.arange(s, s + len(d))] = np.inf
                best[s : s + 256] = d.min(1)
            t = _SPACING[self.cb.id] = float(best.mean() / 2)
        return t

    def _on_torch(self, x: torch.Tensor) -> bool:
        return self.search == "torch" or (self.search == "auto" and x.device.type != "cpu")

    def nearest(self, flat: np.ndarray) -> np.ndarray:
        """Exact nearest centroid, the codec's answer (numba searcher), as int64."""
        return self.cb.searcher.nearest(flat).astype(np.int64)

    def knn(self, flat: np.ndarray, k: int) -> np.ndarray:
        """Ids of the k nearest centroids of each row (nearest first; column 0 is the codec's exact nearest)."""
        k = min(k, self.cb.k)
        srch = self.cb.searcher
        c0 = self.nearest(flat)
        out = np.empty((len(flat), k), dtype=np.int64)
        _knn_kernel(np.ascontiguousarray(flat, dtype=np.float32), srch.centroids, c0, srch.nbr, srch.nbrd, out)
        out[:, 0] = c0
        return out

    def freeze(self, ranks: torch.Tensor | None) -> None:
        """Fix the random rank of every patch position (shape (C,gh,gw), values 0..rlevel); None unfreezes."""
        self.frozen = ranks

    def draw_ranks(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Uniform ranks in 0..rlevel from this purifier's generator."""
        return torch.randint(0, int(self.rlevel or 0) + 1, shape, generator=self.generator)

    def knn_ids(self, flat: torch.Tensor, k: int) -> torch.Tensor:
        """`knn` for a (P, d) tensor, on the tensor's device (torch search there, or the codec's on CPU)."""
        k = min(k, self.cb.k)
        if self._on_torch(flat):
            return torch_knn(flat.detach().float(), self.centroids.to(flat.device), k)
        flat_np = flat.detach().float().cpu().numpy()
        ids = self.nearest(flat_np)[:, None] if k == 1 else self.knn(flat_np, k)
        return torch.from_numpy(ids).to(flat.device)

    def symbols(self, x: torch.Tensor) -> torch.Tensor:
        """Chosen centroid id per patch, (N,C,gh,gw) int64, on x's device."""
        pt, _ = _patches(x.detach().float(), self.p)
        flat = pt.reshape(-1, self.p * self.p)
        if not self.randomized:
            return self.knn_ids(flat, 1)[:, 0].reshape(pt.shape[:4])
        ids = self.knn_ids(flat, int(self.rlevel) + 1)
        ranks = self.frozen.expand(pt.shape[:4]) if self.frozen is not None else self.draw_ranks(pt.shape[:4])
        return ids.gather(1, ranks.reshape(-1, 1).to(torch.int64).to(ids.device))[:, 0].reshape(pt.shape[:4])

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        pt, shape = _patches(x, self.p)
        q = self.centroids[self.symbols(x)].to(x.dtype)
        return _unpatch(q, self.p, shape, x.shape[2], x.shape[3])

    def soft(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable surrogate: softmax-weighted mean of the nearest centroids of each patch."""
        pt, shape = _patches(x, self.p)
        flat = pt.reshape(-1, self.p * self.p)
        ids = self.knn_ids(flat, _SOFT_NEIGHBOURS)
        cand = self.centroids[ids]  # (P, m, d)
        d2 = ((flat[:, None, :] - cand) ** 2).sum(-1)
        w = torch.softmax(-d2 / self.temperature, dim=1)
        out = (w[:, :, None] * cand).sum(1).reshape(pt.shape)
        return _unpatch(out, self.p, shape, x.shape[2], x.shape[3])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            q = self.transform(x.detach())
        if self.backward_mode == "soft" and x.requires_grad:
            s = self.soft(x)
            return q + (s - s.detach())  # exactly q forward, soft surrogate backward
        return q + (x - x.detach())


class Defended(nn.Module):
    """Purifier followed by classifier: [0, 1] NCHW in, logits out."""

    def __init__(self, purifier: Purifier, classifier: nn.Module) -> None:
        super().__init__()
        self.purifier = purifier
        self.classifier = classifier

    @property
    def randomized(self) -> bool:
        """Whether two forward passes on the same input can differ."""
        return bool(self.purifier.randomized)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.purifier(x))


def make_purifier(spec: str, seed: int = 0) -> Purifier:
    """Purifier from a spec: none | sym:CODEBOOK[,random=R][,backward=ste|soft][,T=F][,search=S] | jpeg:Q | bits:B."""
    kind, _, arg = spec.partition(":")
    if kind == "none":
        return Identity()
    if kind == "jpeg":
        return JPEGPurifier(int(arg or 75))
    if kind in ("bits", "bitdepth"):
        return BitDepthPurifier(int(arg or 5))
    if kind == "sym":
        parts = [s for s in arg.split(",") if s]
        if not parts:
            raise SymcodecError("sym defense needs a codebook: sym:CODEBOOK[,random=R]")
        opts: dict[str, str] = {}
        for s in parts[1:]:
            key, eq, val = s.partition("=")
            if not eq:
                raise SymcodecError(f"bad defense option {s!r} in {spec!r} (expected key=value)")
            opts[key.strip()] = val.strip()
        unknown = set(opts) - {"random", "backward", "T", "search"}
        if unknown:
            raise SymcodecError(f"unknown defense option(s) {sorted(unknown)} in {spec!r}")
        r = int(opts["random"]) if "random" in opts else None
        t = float(opts["T"]) if "T" in opts else None
        return VQPurifier(parts[0], rlevel=r, backward=opts.get("backward", "ste"), temperature=t, seed=seed,
                          search=opts.get("search", "auto"))
    raise SymcodecError(f"unknown defense {spec!r} (expected none, sym:CODEBOOK[,random=R], jpeg:Q or bits:B)")
