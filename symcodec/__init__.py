"""symcodec: a symbolic (patch vector-quantised) image codec and purifier, after SymDNN."""
from __future__ import annotations

from .codebook import Codebook
from .codec import decode, encode, purify, quantize, read, reconstruct
from .registry import get as get_codebook

__version__ = "0.1.0"
__all__ = ["Codebook", "decode", "encode", "get_codebook", "purify", "quantize", "read", "reconstruct", "register"]


def register() -> None:
    """Register the `.sym` format with Pillow (Pillow has no plugin discovery)."""
    from . import SymImagePlugin  # noqa: F401  (registration happens on import)
