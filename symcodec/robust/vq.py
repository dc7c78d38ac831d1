"""VQ-specific adaptive analysis: which codewords a patch can reach inside the eps box, and an attack
that searches directly over those reachable codewords (robustness-anchors.md section 3, item 3).

For each patch we draw witness pre-images on the uint8 grid inside its eps box (the clean patch, the
2^d box corners and random points) and map each to its nearest centroid. The classifier only ever
sees centroids, so a search over witnesses is a search over what the attacker can make it see; each
chosen witness is a valid pre-image, so the result is a real adversarial image in the box.
"""
from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

from .defense import VQPurifier, _patches, _unpatch
from .common import box, margin


def witnesses(x: torch.Tensor, eps: float, p: int, samples: int = 47, seed: int = 0) -> torch.Tensor:
    """Witness pre-images per patch, (N,C,gh,gw,M,p*p): clean patch, box corners, random grid points."""
    lo, hi = box(x, eps)
    plo, _ = _patches(lo, p)
    phi, _ = _patches(hi, p)
    pc, _ = _patches(x, p)
    d = p * p
    corners = torch.tensor(list(itertools.product((0.0, 1.0), repeat=d)), device=x.device)  # (2^d, d)
    gen = torch.Generator().manual_seed(seed)
    rnd = torch.rand((*pc.shape[:4], samples, d), generator=gen).to(x.device)
    frac = torch.cat([corners.expand(*pc.shape[:4], -1, -1), rnd], dim=4 - 0)  # (...,M-1,d)
    pts = plo[..., None, :] + frac * (phi - plo)[..., None, :]
    pts = torch.round(pts * 255) / 255
    return torch.cat([pc[..., None, :], pts], dim=4)


def reachable_ids(pur: VQPurifier, w: torch.Tensor) -> torch.Tensor:
    """Nearest centroid of every witness, same shape as w without the last axis (int64, on w's device)."""
    return pur.knn_ids(w.reshape(-1, w.shape[-1]), 1)[:, 0].reshape(w.shape[:-1])


def reachable_counts(pur: VQPurifier, x: torch.Tensor, eps: float, samples: int = 47) -> np.ndarray:
    """Number of distinct codewords reached per patch (a lower bound on the true reachable set), flat int array."""
    ids = reachable_ids(pur, witnesses(x, eps, pur.p, samples)).reshape(-1, samples + 1 + 2 ** (pur.p * pur.p))
    s = torch.sort(ids, dim=1).values
    return (1 + (s[:, 1:] != s[:, :-1]).sum(1)).cpu().numpy()


def reachable_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, iters: int = 40,
                     samples: int = 47, seed: int = 0) -> torch.Tensor:
    """Greedy linearised search over reachable codewords for a deterministic VQ purifier + classifier.

    Each round takes the classifier's margin gradient at the current reconstruction, scores every
    witness of every patch by its first-order gain, switches the best `k` patches per image, and keeps
    the change if the exact margin rises (else halves k). Returns pre-images (uint8 grid, in the box).
    """
    pur, clf = model.purifier, model.classifier
    if not isinstance(pur, VQPurifier) or pur.randomized:
        raise ValueError("reachable_attack needs a deterministic VQ purifier")
    if eps <= 0:
        return x.clone()
    p, n = pur.p, len(x)
    w = witnesses(x, eps, p, samples, seed)  # (N,C,gh,gw,M,d)
    ids = reachable_ids(pur, w)  # (N,C,gh,gw,M)
    cent = pur.centroids
    _, shape = _patches(x, p)
    h, wd = x.shape[2], x.shape[3]
    choice = torch.zeros(ids.shape[:4], dtype=torch.int64, device=x.device)  # witness 0 = the clean patch
    npatch = choice[0].numel()
    k = torch.full((n,), max(1, npatch // 16), dtype=torch.int64, device=x.device)

    def recon(ch: torch.Tensor) -> torch.Tensor:
        sel = ids.gather(4, ch[..., None])[..., 0]
        return _unpatch(cent[sel], p, shape, h, wd)

    with torch.no_grad():
        cur = margin(clf(recon(choice)), y)
    for _ in range(iters):
        act = cur <= 0
        if not act.any():
            break
        r = recon(choice).requires_grad_(True)
        g, = torch.autograd.grad(margin(clf(r), y).sum(), r)
        gp, _ = _patches(g, p)  # (N,C,gh,gw,d)
        cc = cent[ids]  # (N,C,gh,gw,M,d)
        now = cc.gather(4, choice[..., None, None].expand(*choice.shape, 1, cc.shape[-1]))
        gain = ((cc - now) * gp[..., None, :]).sum(-1)  # (N,C,gh,gw,M)
        bg, bw = gain.max(-1)
        flat_g = bg.reshape(n, -1)
        new = choice.clone().reshape(n, -1)
        order = torch.argsort(flat_g, dim=1, descending=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(order.shape[1], device=x.device).expand(n, -1))
        sw = (rank < k[:, None]) & (flat_g > 0) & act[:, None]
        new[sw] = bw.reshape(n, -1)[sw]
        new = new.reshape(choice.shape)
        with torch.no_grad():
            m_new = margin(clf(recon(new)), y)
        ok = (m_new > cur) & act
        choice[ok] = new[ok]
        cur = torch.where(ok, m_new, cur)
        k = torch.where(ok | ~act, k, (k // 2).clamp_min(1))
    sel = choice[..., None, None].expand(*choice.shape, 1, w.shape[-1])
    pre = w.gather(4, sel)[..., 0, :]
    return _unpatch(pre, p, shape, h, wd).clamp(0, 1)
