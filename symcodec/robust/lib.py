"""Thin wrappers over torchattacks 3.5.1 (FGSM, APGD-CE/DLR, targeted APGD, Square, CW-L2) with our conventions.

Every wrapper takes a model on [0, 1] images and returns adversarial images rounded into the uint8
eps box (CW-L2 is unbounded and returns its raw result, rounded to uint8).
"""
from __future__ import annotations

import torch
from torch import nn

from .common import box_uint8, is_randomized
from .pgd import _fooled


def _ta():
    import torchattacks  # imported lazily: only attacks need it

    return torchattacks


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """torchattacks.FGSM (single signed-gradient step of size eps)."""
    return box_uint8(_ta().FGSM(model, eps=eps)(x, y), x, eps)


def apgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, loss: str = "ce",
         steps: int = 100, restarts: int = 1, eot: int = 1, seed: int = 0) -> torch.Tensor:
    """torchattacks.APGD (Croce & Hein 2020 port, automatic step size), success judged after uint8 rounding.

    torchattacks' own loop decides success on the float iterate and returns the clean image where it fails,
    so rounding into the eps box could undo a success it counted, and a failure carried no perturbation. As
    in `apgd_t`, each restart here is one `attack_single_run` on the examples not yet fooled, the verdict is
    taken on the rounded image (majority over `eot` fresh draws for a randomized model), and an example that
    is never fooled gets the highest-loss iterate of its last run.
    """
    if eps <= 0:
        return x.clone()
    rnd = is_randomized(model)
    draws = eot if rnd else 1
    atk = _ta().APGD(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, loss=loss, eot_iter=eot if rnd else 1, seed=seed)
    torch.manual_seed(seed)
    best = x.clone()
    alive = ~_fooled(model, x, y, draws)
    for _ in range(restarts):
        idx = torch.nonzero(alive)[:, 0]
        if len(idx) == 0:
            break
        xb, acc, _, xadv = atk.attack_single_run(x[idx], y[idx])
        cand = box_uint8(torch.where((acc == 0).view(-1, 1, 1, 1), xadv, xb).detach(), x[idx], eps)
        ok = _fooled(model, cand, y[idx], draws)
        best[idx] = cand
        alive[idx[ok]] = False
    return best


def apgd_t(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 100, restarts: int = 1,
           targets: int = 9, eot: int = 1, seed: int = 0) -> torch.Tensor:
    """Targeted APGD (torchattacks APGDT: targeted DLR loss, automatic step size), one target class at a time.

    Targets are the `targets` highest-scoring wrong classes on the clean image (AutoAttack's APGD-T uses 9).
    Unlike torchattacks' own loop, success is decided on the uint8-rounded image in the eps box (majority
    over `eot` fresh draws for a randomized model), so an example only leaves once the verdict agrees; for
    the rest the highest-loss iterate of the last run is returned.
    """
    if eps <= 0:
        return x.clone()
    rnd = is_randomized(model)
    draws = eot if rnd else 1
    atk = _ta().APGDT(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, eot_iter=eot if rnd else 1,
                      seed=seed, n_classes=targets + 1)
    torch.manual_seed(seed)
    best = x.clone()
    alive = ~_fooled(model, x, y, draws)
    for target in range(2, targets + 2):  # rank 1 is the top class (the label, for a correct example)
        atk.target_class = target
        for _ in range(restarts):
            idx = torch.nonzero(alive)[:, 0]
            if len(idx) == 0:
                return best
            xb, acc, _, xadv = atk.attack_single_run(x[idx], y[idx])
            cand = box_uint8(torch.where((acc == 0).view(-1, 1, 1, 1), xadv, xb).detach(), x[idx], eps)
            ok = _fooled(model, cand, y[idx], draws)
            best[idx] = cand  # fooled ones keep this image: they leave `alive` now
            alive[idx[ok]] = False
    return best


def square(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, queries: int = 1000,
           seed: int = 0) -> torch.Tensor:
    """torchattacks.Square (score-based black box, margin loss)."""
    atk = _ta().Square(model, norm="Linf", eps=eps, n_queries=queries, n_restarts=1, loss="margin", seed=seed)
    return box_uint8(atk(x, y), x, eps)


def cw_l2(model: nn.Module, x: torch.Tensor, y: torch.Tensor, c: float = 1.0, steps: int = 100,
          lr: float = 0.01) -> torch.Tensor:
    """torchattacks.CW (L2, kappa 0): unbounded in Linf; the caller reports its L2 distortion."""
    adv = _ta().CW(model, c=c, kappa=0, steps=steps, lr=lr)(x, y)
    return torch.round(adv * 255) / 255
