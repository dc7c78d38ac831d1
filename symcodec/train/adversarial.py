"""Adversarial examples for training (`train-classifier --adversarial`), and the per-epoch PGD check.

Three ways to make a training batch adversarial inside the Linf ball of radius eps on [0, 1] pixels:
- `fgsm-rs`: FGSM from a uniform random start, one step of 1.25 eps, projected (Wong, Rice & Kolter 2020);
- `n-fgsm`: noise of 2 eps, one step of eps, no projection to the ball (de Jorge et al. 2022);
- `pgd-K`: K steps of 2.5 eps / K from a random start, projected (Madry et al. 2018).
Randomness comes from the caller's generator, so a resumed run draws the same starts. `check` measures accuracy
under PGD-10 on held-out images: a collapse of it while training accuracy stays high is catastrophic overfitting.
`StraightThrough` puts the codec's purifier in the loop: the exact purified image forward, the identity backward.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..codec.symbols import purify
from ..errors import OptionError

Forward = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class AdvSpec:
    """How training batches are perturbed."""

    kind: str  # fgsm-rs | n-fgsm | pgd
    steps: int = 1

    @property
    def name(self) -> str:
        """The spec as written on the command line."""
        return f"pgd-{self.steps}" if self.kind == "pgd" else self.kind


def parse_adversarial(spec: str) -> AdvSpec:
    """'fgsm-rs', 'n-fgsm' or 'pgd-K' (K steps, 1..100)."""
    s = spec.strip().lower()
    if s in ("fgsm-rs", "n-fgsm"):
        return AdvSpec(s)
    m = re.fullmatch(r"pgd-(\d+)", s)
    if m and 1 <= int(m.group(1)) <= 100:
        return AdvSpec("pgd", int(m.group(1)))
    msg = f"unknown adversarial training {spec!r}: expected fgsm-rs, n-fgsm or pgd-K (K from 1 to 100)"
    raise OptionError(msg)


def parse_eps(text: str | float) -> float:
    """An eps on [0, 1] pixels: '0.3', '8/255'."""
    try:
        if isinstance(text, str) and "/" in text:
            a, b = text.split("/", 1)
            v = float(a) / float(b)
        else:
            v = float(text)
    except (ValueError, ZeroDivisionError):
        v = float("nan")
    if not 0 <= v <= 1:
        msg = f"eps must be a number from 0 to 1 (or N/255), got {text!r}"
        raise OptionError(msg)
    return v


def _uniform(shape: torch.Size, gen: torch.Generator, radius: float, device: torch.device) -> torch.Tensor:
    return ((torch.rand(shape, generator=gen) * 2 - 1) * radius).to(device)


def _grad(fwd: Forward, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(fwd(x), y)
    g, = torch.autograd.grad(loss, x)
    return g


def perturb(fwd: Forward, x: torch.Tensor, y: torch.Tensor, eps: float, spec: AdvSpec, gen: torch.Generator) -> torch.Tensor:
    """The adversarial version of a [0, 1] batch (detached)."""
    if eps <= 0:
        return x
    if spec.kind == "fgsm-rs":
        delta = (x + _uniform(x.shape, gen, eps, x.device)).clamp(0, 1) - x
        g = _grad(fwd, x + delta, y)
        delta = (delta + 1.25 * eps * g.sign()).clamp(-eps, eps)
        return (x + delta).clamp(0, 1).detach()
    if spec.kind == "n-fgsm":
        xn = (x + _uniform(x.shape, gen, 2 * eps, x.device)).clamp(0, 1)
        return (xn + eps * _grad(fwd, xn, y).sign()).clamp(0, 1).detach()
    return pgd(fwd, x, y, eps, spec.steps, 2.5 * eps / spec.steps, gen)


def pgd(fwd: Forward, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int, step: float, gen: torch.Generator) -> torch.Tensor:
    """Linf PGD from a uniform random start, last iterate (training and the check; the evaluation has its own)."""
    lo, hi = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    xa = torch.minimum(torch.maximum(x + _uniform(x.shape, gen, eps, x.device), lo), hi)
    for _ in range(steps):
        xa = torch.minimum(torch.maximum(xa + step * _grad(fwd, xa, y).sign(), lo), hi)
    return xa.detach()


def check(fwd: Forward, x: torch.Tensor, y: torch.Tensor, eps: float, gen: torch.Generator, batch: int = 250) -> float:
    """Accuracy (0..1) under PGD-10 (step eps/4) on [0, 1] images: the per-epoch robustness check."""
    right = 0
    for s in range(0, len(x), batch):
        xb, yb = x[s:s + batch], y[s:s + batch]
        adv = pgd(fwd, xb, yb, eps, 10, eps / 4, gen)
        with torch.no_grad():
            right += int((fwd(adv).argmax(1) == yb).sum())
    return right / max(len(x), 1)


class StraightThrough(nn.Module):
    """The codec's purifier (`symcodec.purify` with a codebook) in the forward pass, the identity in the backward."""

    def __init__(self, codebook: str) -> None:
        super().__init__()
        self.codebook = codebook

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Purified pixels of a [0, 1] NCHW batch (rounded to uint8 first, as a file would be)."""
        u8 = (x.detach() * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        if u8.shape[-1] == 1:
            p = purify(u8[..., 0], self.codebook)[..., None]
        else:
            p = purify(u8, self.codebook)
        pt = torch.from_numpy(np.ascontiguousarray(p)).permute(0, 3, 1, 2).to(x.device, x.dtype) / 255
        return x + (pt - x).detach()
