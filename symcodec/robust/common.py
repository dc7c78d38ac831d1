"""Helpers shared by the attacks: the Linf box on the uint8 grid, margins, multi-draw verdicts."""
from __future__ import annotations

import torch
from torch import nn


def box(x0: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample bounds of the Linf ball around x0 inside [0, 1], snapped inwards to the uint8 grid."""
    lo = torch.ceil(((x0 - eps) * 255).clamp(0, 255) - 1e-4) / 255
    hi = torch.floor(((x0 + eps) * 255).clamp(0, 255) + 1e-4) / 255
    return lo, hi


def box_uint8(x: torch.Tensor, x0: torch.Tensor, eps: float) -> torch.Tensor:
    """Round adversarial images to uint8 values (as float /255) that stay inside the eps box of x0."""
    lo, hi = box(x0, eps)
    return torch.minimum(torch.maximum(torch.round(x * 255) / 255, lo), hi)


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """max_{j != y} z_j - z_y per example (positive means misclassified)."""
    true = logits.gather(1, y[:, None])[:, 0]
    other = logits.clone()
    other.scatter_(1, y[:, None], float("-inf"))
    return other.max(1).values - true


@torch.no_grad()
def correct_draws(model: nn.Module, x: torch.Tensor, y: torch.Tensor, draws: int = 1, batch: int = 500) -> torch.Tensor:
    """How many of `draws` forward passes classify each example correctly (int64, shape (N,))."""
    out = torch.zeros(len(x), dtype=torch.int64, device=x.device)
    for s in range(0, len(x), batch):
        xb, yb = x[s : s + batch], y[s : s + batch]
        for _ in range(draws):
            out[s : s + batch] += (model(xb).argmax(1) == yb).long()
    return out


def is_randomized(model: nn.Module) -> bool:
    """Whether the model's forward pass is random (a `Defended` with a randomized purifier)."""
    return bool(getattr(model, "randomized", False))
