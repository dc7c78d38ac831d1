"""Adversarial attacks and the worst-case evaluation runner for purification defenses.

`pgd` holds our PGD-Linf (restarts, best iterate, EOT, early stop) and the seed's weak BPDA loop,
`lib` wraps torchattacks (FGSM, APGD-CE/DLR, Square, CW-L2), `vq` the VQ-specific reachable-codeword
analysis and attack, `runner` the per-example worst case with a resumable state file.
"""
from __future__ import annotations

from .common import box_uint8, correct_draws, margin
from .pgd import pgd

__all__ = ["box_uint8", "correct_draws", "margin", "pgd"]
