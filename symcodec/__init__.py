"""symcodec: a symbolic (patch vector-quantised) image codec and purifier, after SymDNN.

The public API: `encode`/`decode`/`read` (`.sym` bytes), `quantize`/`reconstruct`/`purify` (symbols
without files), `Encoder` (one size and mode, batches), `Codebook`/`get_codebook`. Importing symcodec
registers `.sym` with Pillow (`register()` does it again). Errors are the classes of `symcodec.errors`.
"""
from __future__ import annotations

from . import errors
from .SymImagePlugin import register
from .codebook.codebook import Codebook
from .codebook.registry import get as get_codebook
from .codec.decoder import decode, read
from .codec.encoder import Encoder, encode
from .codec.symbols import purify, quantize, reconstruct
from .version import __version__

__all__ = ["__version__", "Codebook", "Encoder", "decode", "encode", "errors", "get_codebook", "purify", "quantize", "read",
           "reconstruct", "register"]

