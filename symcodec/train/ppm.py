"""Training entropy model 3 (symcodec.entropy.ppm, formats/symcb.md section 3.2): escape-chain context tables.

Levels are fitted in order; each level sees only the training symbols that the levels before it did
not code (escape-conditioned counts), so a lower level learns what is left after the higher ones.
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

import numpy as np
from tqdm import tqdm

from ..codebook import registry
from ..codebook.codebook import Codebook
from ..codec.symbols import quantize
from ..data import sources
from ..entropy import ppm_kernels as kern
from ..entropy.ppm import Level, PPMModel, Table
from ..entropy.rans import quantize_counts
from ..errors import DatasetError
from ..vq.colour import rgb_to_planes

LEFT, ABOVE = (0, 0, -1), (0, -1, 0)
SAME1, SAME2 = (1, 0, 0), (2, 0, 0)  # the same place one and two planes back
AR = (0, -1, 1)  # above right
LAYOUTS: dict[str, list[list[tuple[tuple[int, int, int], ...]]]] = {
    # R (or L): left+above, left, above, above-right; G: R+left, R+above, R, left; B: G+R, G+left, G+above, G
    "planes": [[(LEFT, ABOVE), (LEFT,), (ABOVE,), (AR,)],
               [(SAME1, LEFT), (SAME1, ABOVE), (SAME1,), (LEFT,)],
               [(SAME1, SAME2), (SAME1, LEFT), (SAME1, ABOVE), (SAME1,)]],
    # Y: left+above, left, above; Cb: its own left+above, left, above, then Y at (2i, 2j) (luma helps chroma
    # little); Cr: its own left+above, Cb+left, left, Cb
    "ycc420": [[(LEFT, ABOVE), (LEFT,), (ABOVE,)],
               [(LEFT, ABOVE), (LEFT,), (ABOVE,), (SAME1,)],
               [(LEFT, ABOVE), (SAME1, LEFT), (LEFT,), (SAME1,)]],
}


def contexts(planes: Sequence[np.ndarray], p: int, refs: Sequence[tuple[int, int, int]], k: int) -> np.ndarray:
    """Context value of every symbol of plane p over a batch (planes[i] is (N, gh, gw)): -1 where unavailable."""
    n, gh, gw = planes[p].shape
    key = np.zeros((n, gh, gw), np.int64)
    ok = np.ones((n, gh, gw), bool)
    for src, dy, dx in refs:
        q = p - src
        if q < 0:
            return np.full((n, gh, gw), -1, np.int64)
        ghq, gwq = planes[q].shape[1:]
        yy = (np.arange(gh) * ghq) // gh + dy
        xx = (np.arange(gw) * gwq) // gw + dx
        vy, vx = (yy >= 0) & (yy < ghq), (xx >= 0) & (xx < gwq)
        v = planes[q][:, np.clip(yy, 0, ghq - 1)][:, :, np.clip(xx, 0, gwq - 1)].astype(np.int64)
        key = key * k + v
        ok &= vy[None, :, None] & vx[None, None, :]
    return np.where(ok, key, -1)


def fit_level(ctx: np.ndarray, sym: np.ndarray, k: int, d: float, cmin: int, tmin: int, maxlen: int) -> tuple[Table, np.ndarray]:
    """One level's rows from (context, symbol) pairs; also which pairs the rows code (not escaped)."""
    key = ctx * k + sym
    u, n = np.unique(key, return_counts=True)
    rc, sy = u // k, u % k
    rows, ri = np.unique(rc, return_inverse=True)
    tot = np.bincount(ri, weights=n).astype(np.int64)
    keep = (n >= cmin) & (tot[ri] >= tmin)
    rc, sy, n, ri = rc[keep], sy[keep], n[keep], ri[keep]
    order = np.lexsort((sy, -n, rc))  # rows by key; entries by count descending, ties to the lower symbol
    rc, sy, n, ri = rc[order], sy[order], n[order], ri[order]
    rank = np.arange(rc.size) - np.searchsorted(rc, rc)
    keep = rank < maxlen
    rc, sy, n, ri = rc[keep], sy[keep], n[keep], ri[keep]
    keys, lens = np.unique(rc, return_counts=True)
    if keys.size == 0:
        return Table(*(np.zeros(0, np.int64) for _ in range(4))), np.zeros(key.size, bool)
    rstart = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    efreq = np.zeros(sy.size, np.int64)
    kern.quantise_rows(rstart, lens.astype(np.int64), n.astype(np.float64), tot[ri[rstart]].astype(np.float64), float(d), efreq)
    coded = np.isin(key, rc * k + sy)
    return Table(keys.astype(np.int64), lens.astype(np.int64), sy.astype(np.int64), efreq), coded


def train_ppm(planes: Sequence[np.ndarray], k: int, layout: str = "planes", d: float = 0.6, cmin: int = 3,
              tmin: int = 8, maxlen: int = 255, progress: bool = True) -> PPMModel:
    """Fit a layout's tables on training symbols: planes[i] is (N, gh_i, gw_i) int (plane i uses slot min(i, S-1))."""
    spec = LAYOUTS[layout]
    s = min(len(spec), len(planes))
    slots, tables, static = [], [], []
    for si in range(s):
        ps = [p for p in range(len(planes)) if min(p, s - 1) == si]
        sym = np.concatenate([np.asarray(planes[p]).reshape(-1).astype(np.int64) for p in ps])
        active = np.ones(sym.size, bool)
        tabs = []
        for refs in spec[si]:
            ctx = np.concatenate([contexts(planes, p, refs, k).reshape(-1) for p in ps])
            sel = np.flatnonzero(active & (ctx >= 0))
            tab, coded = fit_level(ctx[sel], sym[sel], k, d, cmin, tmin, maxlen)
            active[sel[coded]] = False
            tabs.append(tab)
            if progress:
                print(f"slot {si} level {refs}: {tab.keys.size} rows, {tab.syms.size} entries, "
                      f"{coded.mean() if coded.size else 0:.3f} coded", file=sys.stderr)
        slots.append([Level(tuple(r)) for r in spec[si]])
        tables.append(tabs)
        static.append(quantize_counts(np.bincount(sym[active], minlength=k) + 1).astype(np.int64))
    return PPMModel(k, slots, np.stack(static), tables)


def mean_bits(model: PPMModel, planes: Sequence[np.ndarray]) -> float:
    """Mean ideal bits per symbol over a batch (planes[i] is (N, gh_i, gw_i))."""
    n = planes[0].shape[0]
    total = sum(model.code_length([p[i] for p in planes]) for i in range(n))
    return total / (n * sum(int(np.prod(p.shape[1:])) for p in planes))


def quantised_planes(cb: Codebook, srcs: Sequence[str | os.PathLike[str]], limit_images: int | None = None,
                     progress: bool = True) -> list[np.ndarray]:
    """Symbol planes (N, gh_i, gw_i) of equal-sized training images: R, G, B (or L), or Y, Cb, Cr for ycc420."""
    ims: list[np.ndarray] = []
    bar = tqdm(desc="quantising for the context model", unit="img", disable=not progress, file=sys.stderr)
    for src in srcs:
        for smp in sources.iter_samples(src):
            if limit_images is not None and len(ims) >= limit_images:
                break
            try:
                a = smp.array()
            except Exception as exc:  # noqa: BLE001 - a corrupt image is skipped, not fatal
                print(f"warning: skipping {smp.key}: {exc}", file=sys.stderr)
                continue
            a = a if a.ndim == 3 else a[:, :, None]
            if ims and a.shape != ims[0].shape:
                continue  # context statistics are gathered over equal-sized images only
            ims.append(a[:, :, :3])
            bar.update(1)
    bar.close()
    if not ims:
        raise DatasetError("no readable images for the context model")
    x = np.stack(ims)
    if cb.colour == 1:
        pl = [np.stack(p) for p in zip(*(rgb_to_planes(im) for im in x))]
        return [quantize(p[..., None], cb)[:, 0] for p in pl]
    sym = quantize(x, cb)
    return [sym[:, c] for c in range(sym.shape[1])]


def with_context(cb: Codebook, srcs: Sequence[str | os.PathLike[str]], name: str | None = None, limit_images: int | None = None,
                 command: str | None = None, progress: bool = True, cmin: int = 3, tmin: int = 8) -> Codebook:
    """The same centroids and counts with entropy model 3 fitted on `srcs` (a new codebook, a new id)."""
    planes = quantised_planes(cb, srcs, limit_images, progress)
    layout = "ycc420" if cb.colour == 1 else "planes"
    model = train_ppm(planes, cb.k, layout, cmin=cmin, tmin=tmin, progress=progress)
    prov = dict(cb.provenance)
    prov["context_model"] = {
        "entropy_model": 3, "layout": layout, "d": 0.6, "cmin": cmin, "tmin": tmin, "maxlen": 255,
        "trained_on": ", ".join(os.path.basename(os.fspath(s).rstrip("/")) for s in srcs),
        "images": int(planes[0].shape[0]), "base_codebook": cb.hexid, "command": command or "",
    }
    return Codebook(cb.centroids, patch=cb.patch, counts=cb.counts, colour=cb.colour, name=cb.name if name is None else name,
                    provenance=prov, context=model)


def train_context(base: str, srcs: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str], name: str = "",
                  limit_images: int | None = None, command: str | None = None, progress: bool = True, cmin: int = 3,
                  tmin: int = 8) -> Codebook:
    """`symcodec train-context`: a codebook with entropy model 3 fitted on `srcs`, saved atomically to `output`."""
    cb = with_context(registry.get(base), srcs, name=name or None, limit_images=limit_images, command=command,
                      progress=progress, cmin=cmin, tmin=tmin)
    cb.save(output)
    return cb


__all__ = ["LAYOUTS", "contexts", "fit_level", "mean_bits", "quantised_planes", "train_context", "train_ppm", "with_context"]
