"""Thin wrappers over torchattacks 3.5.1 (FGSM, APGD-CE/DLR, Square, CW-L2) with our conventions.

Every wrapper takes a model on [0, 1] images and returns adversarial images rounded into the uint8
eps box (CW-L2 is unbounded and returns its raw result, rounded to uint8).
"""
from __future__ import annotations

import torch
from torch import nn

from .common import box_uint8, is_randomized


def _ta():
    import torchattacks  # imported lazily: only attacks need it

    return torchattacks


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """torchattacks.FGSM (single signed-gradient step of size eps)."""
    return box_uint8(_ta().FGSM(model, eps=eps)(x, y), x, eps)


def apgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, loss: str = "ce",
         steps: int = 100, restarts: int = 1, eot: int = 1, seed: int = 0) -> torch.Tensor:
    """torchattacks.APGD (Croce & Hein 2020 port, automatic step size); eot applies to randomized models."""
    atk = _ta().APGD(model, norm="Linf", eps=eps, steps=steps, n_restarts=restarts, loss=loss,
                     eot_iter=eot if is_randomized(model) else 1, seed=seed)
    return box_uint8(atk(x, y), x, eps)


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
