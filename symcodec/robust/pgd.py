"""PGD-Linf with random restarts, best iterate, EOT and per-example early stop; and SymDNN's weak BPDA loop.

torchattacks' PGD returns the last iterate without restarts, and its EOTPGD cannot verify success over
fresh draws, so this loop is our own. Gradients flow through whatever backward pass the model's
purifier provides (straight-through or soft surrogate).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import box, box_uint8, is_randomized, margin


def _loss(logits: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-example loss to maximise: cross-entropy or the CW margin."""
    if kind == "ce":
        return F.cross_entropy(logits, y, reduction="none")
    if kind == "margin":
        return margin(logits, y)
    raise ValueError(f"unknown loss {kind!r} (expected 'ce' or 'margin')")


@torch.no_grad()
def _fooled(model: nn.Module, x: torch.Tensor, y: torch.Tensor, draws: int) -> torch.Tensor:
    """True where a majority of `draws` forward passes misclassify x."""
    wrong = torch.zeros(len(x), device=x.device)
    for _ in range(draws):
        wrong += (model(x).argmax(1) != y).float()
    return wrong > draws / 2


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 100,
    step_size: float | None = None,
    restarts: int = 1,
    loss: str = "ce",
    eot: int = 1,
    random_start: bool = True,
    keep: str = "best",
    early_stop: bool = True,
    seed: int = 0,
) -> torch.Tensor:
    """Untargeted Linf PGD on [0, 1] images; returns adversarial images rounded into the uint8 eps box.

    keep='best' returns, per example, the first iterate verified to fool the model (after uint8
    rounding, majority over `eot` fresh draws), else the iterate with the highest loss; keep='last'
    returns the final iterate of the last restart. Each restart attacks only examples not yet fooled.
    With `early_stop`, fooled examples leave the batch at once.
    """
    if eps <= 0:
        return x.clone()
    step = eps / 4 if step_size is None else step_size
    draws = eot if is_randomized(model) else 1
    gen = torch.Generator().manual_seed(seed)
    lo, hi = box(x, eps)
    best = x.clone()
    dev = x.device
    best_loss = torch.full((len(x),), float("-inf"), device=dev)
    done = torch.zeros(len(x), dtype=torch.bool, device=dev)
    for _ in range(restarts):
        idx = torch.nonzero(~done)[:, 0] if keep == "best" else torch.arange(len(x), device=dev)
        if len(idx) == 0:
            break
        x0, yy, l, h = x[idx], y[idx], lo[idx], hi[idx]
        xa = x0.clone()
        if random_start:
            xa = xa + (torch.rand(xa.shape, generator=gen).to(dev) * 2 - 1) * eps  # CPU stream: same start anywhere
        xa = torch.minimum(torch.maximum(xa, l), h)
        act = torch.arange(len(idx), device=dev)  # positions (into idx) still attacked
        for _ in range(steps):
            xs = xa[act].clone().requires_grad_(True)
            grad = torch.zeros_like(xs)
            lv = torch.zeros(len(act), device=dev)
            wrong = torch.zeros(len(act), device=dev)
            for _ in range(eot):
                logits = model(xs)
                per = _loss(logits, yy[act], loss)
                g, = torch.autograd.grad(per.sum(), xs)
                grad += g
                lv += per.detach()
                wrong += (logits.argmax(1) != yy[act]).float()
            lv /= eot
            gi = idx[act]
            better = lv > best_loss[gi]
            if keep == "best" and better.any():
                best_loss[gi[better]] = lv[better]
                best[gi[better]] = box_uint8(xs.detach()[better], x[gi[better]], eps)
            cand = wrong > eot / 2
            if keep == "best" and cand.any():  # verify on the rounded image with fresh draws
                xr = box_uint8(xs.detach()[cand], x0[act[cand]], eps)
                ok = _fooled(model, xr, yy[act[cand]], draws)
                if ok.any():
                    hit = gi[cand][ok]
                    best[hit], done[hit] = xr[ok], True
                    best_loss[hit] = float("inf")
                    if early_stop:
                        keep_mask = torch.ones(len(act), dtype=torch.bool, device=dev)
                        keep_mask[torch.nonzero(cand)[:, 0][ok]] = False
                        xa[act] = xs.detach()
                        act = act[keep_mask]
                        if len(act) == 0:
                            break
                        continue_step(xa, act, grad[keep_mask], step, l, h)
                        continue
            xa[act] = xs.detach()
            continue_step(xa, act, grad, step, l, h)
        if keep == "last":
            best[idx] = box_uint8(xa, x0, eps)
    return best


def continue_step(xa: torch.Tensor, act: torch.Tensor, grad: torch.Tensor, step: float,
                  lo: torch.Tensor, hi: torch.Tensor) -> None:
    """One signed-gradient ascent step on the active rows of xa, projected into the box (in place)."""
    nxt = xa[act] + step * grad.sign()
    xa[act] = torch.minimum(torch.maximum(nxt, lo[act]), hi[act])


def seed_bpda(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """SymDNN's released 'BPDAattack': 100 sign steps of 0.5, no random start, no restarts, last iterate, no EOT."""
    return pgd(model, x, y, eps, steps=100, step_size=0.5, restarts=1, loss="ce", eot=1,
               random_start=False, keep="last", early_stop=False)
