"""Adversarial examples for training (`train-classifier --adversarial`), and the per-epoch PGD check.

Three ways to make a training batch adversarial inside the Linf ball of radius eps on [0, 1] pixels:
- `fgsm-rs`: FGSM from a uniform random start, one step of 1.25 eps, projected (Wong, Rice & Kolter 2020);
- `n-fgsm`: noise of 2 eps, one step of eps, no projection to the ball (de Jorge et al. 2022);
- `pgd-K`: K steps of 2.5 eps / K from a random start, projected (Madry et al. 2018);
- `trades-K`: K steps of 2.5 eps / K that push the prediction away from the clean one (KL divergence) from a
  start of 0.001-scale Gaussian noise, projected; the loss is then the clean cross-entropy plus beta times the KL
  divergence between the clean and the adversarial predictions (Zhang et al. 2019, `trades_loss`).
Randomness comes from the caller's generator, so a resumed run draws the same starts. `check` measures accuracy
under PGD-10 on held-out images: a collapse of it while training accuracy stays high is catastrophic overfitting.
`in_loop` puts a purifier in the loop: the codec's (`StraightThrough`: the exact purified image forward, the
identity backward) or any defense of `symcodec robustness` (`sym:CB,random=R`: SymDNN's randomized pick, drawn
from the purifier's own generator, which checkpoints save).
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
from ..errors import OptionError, SymcodecError
from ..robust.defense import make_purifier

Forward = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class AdvSpec:
    """How training batches are perturbed."""

    kind: str  # fgsm-rs | n-fgsm | pgd | trades
    steps: int = 1

    @property
    def name(self) -> str:
        """The spec as written on the command line."""
        return f"{self.kind}-{self.steps}" if self.kind in ("pgd", "trades") else self.kind


def parse_adversarial(spec: str) -> AdvSpec:
    """'fgsm-rs', 'n-fgsm', 'pgd-K' or 'trades-K' (K steps, 1..100)."""
    s = spec.strip().lower()
    if s in ("fgsm-rs", "n-fgsm"):
        return AdvSpec(s)
    m = re.fullmatch(r"(pgd|trades)-(\d+)", s)
    if m and 1 <= int(m.group(2)) <= 100:
        return AdvSpec(m.group(1), int(m.group(2)))
    msg = f"unknown adversarial training {spec!r}: expected fgsm-rs, n-fgsm, pgd-K or trades-K (K from 1 to 100)"
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
    if spec.kind == "trades":
        return trades_perturb(fwd, x, eps, spec.steps, gen)
    return pgd(fwd, x, y, eps, spec.steps, 2.5 * eps / spec.steps, gen)


def kl(clean_logits: torch.Tensor, adv_logits: torch.Tensor, reduction: str = "batchmean") -> torch.Tensor:
    """KL(p_clean || p_adv) of two batches of logits ('batchmean' or 'sum' over the batch)."""
    return F.kl_div(F.log_softmax(adv_logits, 1), F.log_softmax(clean_logits, 1), reduction=reduction, log_target=True)


def trades_perturb(fwd: Forward, x: torch.Tensor, eps: float, steps: int, gen: torch.Generator,
                   clean: torch.Tensor | None = None) -> torch.Tensor:
    """TRADES' inner maximisation: K signed steps of 2.5 eps / K on KL(f(x) || f(x')), from x plus N(0, 0.001^2)
    noise, projected.

    `clean`: the logits f(x) if the caller has them (training computes them for its loss anyway)."""
    lo, hi, step = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1), 2.5 * eps / steps
    if clean is None:
        with torch.no_grad():
            clean = fwd(x)
    clean = clean.detach()
    xa = torch.minimum(torch.maximum(x + 0.001 * torch.randn(x.shape, generator=gen).to(x.device), lo), hi)
    for _ in range(steps):
        xa = xa.detach().requires_grad_(True)
        g, = torch.autograd.grad(kl(clean, fwd(xa), "sum"), xa)
        xa = torch.minimum(torch.maximum(xa + step * g.sign(), lo), hi)
    return xa.detach()


def trades_loss(clean_logits: torch.Tensor, adv_logits: torch.Tensor, y: torch.Tensor, beta: float,
                smoothing: float = 0.0, reduction: str = "mean") -> torch.Tensor:
    """TRADES' outer loss: cross-entropy on the clean batch plus beta times KL(clean || adversarial)."""
    ce = F.cross_entropy(clean_logits, y, label_smoothing=smoothing, reduction=reduction)
    return ce + beta * kl(clean_logits, adv_logits, "batchmean" if reduction == "mean" else "sum")


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


def in_loop(spec: str, seed: int = 0) -> nn.Module:
    """The purifier to train through: a codebook name (the codec's, `StraightThrough`) or a defense spec as
    `symcodec robustness --defense` takes it (`sym:CB[,random=R][,backward=soft]`, `jpeg:Q`, `bits:B`; seeded)."""
    if ":" not in spec:
        return StraightThrough(spec)
    try:
        return make_purifier(spec, seed)
    except SymcodecError as exc:
        raise OptionError(f"--purify-in-loop: {exc}") from None
