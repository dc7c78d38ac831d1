"""Codebook training: faiss k-means over patches sampled uniformly from image sources (faiss: the [train] extra)."""
from __future__ import annotations

import datetime as _dt
import os
import sys
import time
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from ..codebook.codebook import COLOUR_YCC420, Codebook
from ..data import sources
from ..errors import DatasetError
from ..version import __version__
from ..vq import patches
from ..vq.colour import rgb_to_planes
from .ppm import train_ppm, with_context


def sample_patches(
    srcs: Sequence[str | os.PathLike[str]],
    patch: int = 2,
    max_patches: int = 2_000_000,
    seed: int = 0,
    limit_images: int | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, int]:
    """A uniform random sample (without replacement) of per-channel patches, and the image count.

    Each patch gets a random key; the `max_patches` smallest keys are kept, so memory stays
    O(max_patches) however large the sources are, and the sample depends only on the seed and data.
    """
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    kparts: list[np.ndarray] = []
    held = 0
    n_img = 0

    def shrink() -> None:
        nonlocal held
        pts, ks = np.concatenate(parts), np.concatenate(kparts)
        if len(ks) > max_patches:
            sel = np.argpartition(ks, max_patches)[:max_patches]
            pts, ks = pts[sel], ks[sel]
        parts[:], kparts[:] = [pts], [ks]
        held = len(ks)

    counts = [sources.count_samples(src) for src in srcs] if progress else [None]
    total = None if None in counts else sum(counts)  # type: ignore[arg-type]
    if total is not None and limit_images is not None:
        total = min(total, limit_images)
    bar = tqdm(total=total, desc="sampling patches", unit="img", disable=not progress, file=sys.stderr)
    for src in srcs:
        for s in sources.iter_samples(src):
            if limit_images is not None and n_img >= limit_images:
                break
            try:
                a = s.array()
            except Exception as exc:  # a corrupt image is skipped, not fatal
                print(f"warning: skipping {s.key}: {exc}", file=sys.stderr)
                continue
            batch, _ = patches.as_batch(a if a.ndim == 3 else a[:, :, None])
            batch = batch[..., : min(3, batch.shape[3])]  # never train on alpha
            pt = patches.extract(batch, patch).reshape(-1, patch * patch)
            parts.append(pt)
            kparts.append(rng.random(len(pt)))
            held += len(pt)
            if held > 2 * max_patches:
                shrink()
            n_img += 1
            bar.update(1)
    bar.close()
    if n_img == 0:
        msg = "no readable images in " + ", ".join(map(str, srcs))
        raise DatasetError(msg)
    shrink()
    keep, keys = parts[0], kparts[0]
    order = np.argsort(keys, kind="stable")  # order independent of arrival chunks
    return np.ascontiguousarray(keep[order]), n_img


def _kmeans(x: np.ndarray, k: int, patch: int, niter: int, seed: int, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """faiss k-means on patch vectors: centroids clipped to [0, 1] and each one's count on `x` (+1, never zero)."""
    import faiss  # heavy optional dependency (the [train] extra)

    km = faiss.Kmeans(patch * patch, k, niter=niter, seed=seed, verbose=False,
                      max_points_per_centroid=len(x) // k + 1, spherical=False)
    if progress:
        print(f"k-means: K={k} on {len(x):,} patches, {niter} iterations ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    km.train(x)
    if progress:
        print(f"k-means: done in {time.perf_counter() - t0:.1f} s (final objective {km.obj[-1]:.4g})", file=sys.stderr)
    cent = np.clip(km.centroids, 0.0, 1.0)
    counts = np.bincount(Codebook(cent, patch=patch).searcher.nearest(x), minlength=k).astype(np.uint32) + 1
    return cent, counts


def train_codebook(
    srcs: Sequence[str | os.PathLike[str]],
    k: int,
    patch: int = 2,
    seed: int = 0,
    max_patches: int = 2_000_000,
    niter: int = 25,
    name: str = "",
    limit_images: int | None = None,
    progress: bool = True,
    command: str | None = None,
    context_model: bool = False,
) -> Codebook:
    """Train a K-centroid codebook with faiss k-means and fit its symbol table on the same sample.

    With `context_model`, also fit entropy model 3 (escape-chain context tables) on the same sources.
    """
    import faiss  # heavy optional dependency (the [train] extra)

    x, n_img = sample_patches(srcs, patch, max_patches, seed, limit_images, progress)
    if len(x) < k:
        msg = f"only {len(x)} patches sampled, fewer than K={k}"
        raise DatasetError(msg)
    cent, counts = _kmeans(x, k, patch, niter, seed, progress)
    prov = {
        "trained_on": ", ".join(os.path.basename(os.fspath(s).rstrip("/")) for s in srcs),
        "images": n_img,
        "patches": int(len(x)),
        "seed": seed,
        "niter": niter,
        "k": k,
        "patch": patch,
        "pixel_space": "raw 8-bit samples / 255, each channel plane separately",
        "date": _dt.date.today().isoformat(),
        "symcodec": __version__,
        "faiss": faiss.__version__,
        "command": command or "",
    }
    cb = Codebook(cent, patch=patch, counts=counts, name=name, provenance=prov)
    if context_model:
        cb = with_context(cb, srcs, limit_images=limit_images, progress=progress, command=command)
    return cb


def train_ycc420(
    srcs: Sequence[str | os.PathLike[str]],
    k: int,
    patch: int = 2,
    seed: int = 0,
    max_patches: int = 2_000_000,
    niter: int = 25,
    name: str = "",
    limit_images: int | None = None,
    progress: bool = True,
    command: str | None = None,
    weigh: Callable[[list[np.ndarray]], np.ndarray] | None = None,
) -> Codebook:
    """A colour-1 (ycc420) codebook: k-means over pooled Y, Cb, Cr patches plus its entropy model 3 (equal-sized images).

    `weigh(planes)` (the Y, Cb, Cr stacks, uint8 (N, h, w)) may give each patch a weight, in the order of the
    pooled patches (all Y patches image by image, then Cb, then Cr); k-means then runs on a sample drawn in
    proportion to them (with replacement): `tools/train_aware_codebook.py`.
    """
    import faiss  # heavy optional dependency (the [train] extra)

    planes: list[list[np.ndarray]] = [[], [], []]
    shape = None
    for src in srcs:
        for s in tqdm(sources.iter_samples(src), desc="ycc420 planes", unit="img", disable=not progress, file=sys.stderr):
            if limit_images is not None and len(planes[0]) >= limit_images:
                break
            a = s.array()
            if a.ndim != 3 or a.shape[2] < 3 or (shape is not None and a.shape != shape):
                continue
            shape = a.shape
            for i, pl in enumerate(rgb_to_planes(a[:, :, :3])):
                planes[i].append(pl)
    if not planes[0]:
        msg = "no readable RGB images in " + ", ".join(map(str, srcs))
        raise DatasetError(msg)
    stacks = [np.stack(p) for p in planes]  # Y, Cb, Cr: (N, h, w) each
    pts = [patches.extract(st[..., None], patch) for st in stacks]  # (N, 1, gh, gw, d)
    flat = np.concatenate([p.reshape(-1, patch * patch) for p in pts])
    rng = np.random.default_rng(seed)
    if weigh is not None:  # a sample drawn in proportion to the weights (Lloyd's updates alone keep the uniform start's layout)
        w = np.asarray(weigh(stacks), np.float64)
        x = flat[np.sort(rng.choice(len(flat), size=min(max_patches, len(flat)), p=w / w.sum()))]
    else:
        x = flat[np.sort(rng.permutation(len(flat))[:max_patches])] if len(flat) > max_patches else flat
    cent, counts = _kmeans(np.ascontiguousarray(x), k, patch, niter, seed, progress)
    cb0 = Codebook(cent, patch=patch, counts=counts)
    sym = [cb0.searcher.nearest(p.reshape(-1, patch * patch)).reshape(p.shape[0], p.shape[2], p.shape[3]) for p in pts]
    ctx = train_ppm(sym, k, "ycc420", progress=progress)
    prov = {
        "trained_on": ", ".join(os.path.basename(os.fspath(s).rstrip("/")) for s in srcs),
        "images": len(planes[0]), "patches": int(len(x)), "seed": seed, "niter": niter, "k": k, "patch": patch,
        "pixel_space": "Y, Cb, Cr (BT.601 full range, chroma 2x2-averaged) 8-bit samples / 255, one codebook for all",
        "context_model": {"entropy_model": 3, "layout": "ycc420", "fitted_on": "all training images"},
        "date": _dt.date.today().isoformat(), "symcodec": __version__, "faiss": faiss.__version__, "command": command or "",
    }
    return Codebook(cent, patch=patch, counts=counts, colour=COLOUR_YCC420, name=name, provenance=prov, context=ctx)
