"""Entropy models for symbol planes (formats/sym-v1.md, section 5)."""
from __future__ import annotations

import numpy as np

from .errors import DecodeError
from .rans import M, RansTable

STATIC = 1  # entropy model id 1: one static table (the codebook's CNTS chunk), rANS-coded


class StaticModel:
    """A fixed categorical distribution over K symbols, quantised from integer counts to 16-bit frequencies."""

    model_id = STATIC

    def __init__(self, counts: np.ndarray) -> None:
        counts = np.asarray(counts, dtype=np.uint32)
        if counts.ndim != 1 or counts.size < 2 or int(counts.min()) < 1:
            msg = "symbol counts must be a 1-D table of at least 2 entries, each >= 1"
            raise ValueError(msg)
        self.k = int(counts.size)
        self._rans = RansTable(counts)
        self.freq = self._rans.freq
        self.probs = self.freq.astype(np.float64) / M  # the model the coder really uses

    def cross_entropy(self, symbols: np.ndarray) -> float:
        """Ideal code length of `symbols` under this model, in bits."""
        return float(-np.log2(self.probs[np.asarray(symbols).ravel()]).sum())

    def encode(self, symbols: np.ndarray) -> bytes:
        """rANS-code a flat array of symbols (each < K) into bytes."""
        sym = np.asarray(symbols)
        if sym.size and (sym.min() < 0 or sym.max() >= self.k):
            msg = f"symbols outside 0..{self.k - 1}"
            raise ValueError(msg)
        return self._rans.encode(sym)

    def decode(self, data: bytes | memoryview | np.ndarray, n: int) -> np.ndarray:
        """Decode exactly `n` symbols; a stream of the wrong length or final state raises DecodeError."""
        out = self._rans.decode(data, n)
        if out is None:
            msg = f"corrupt symbol stream: it does not decode to exactly {n} symbols"
            raise DecodeError(msg)
        return out.astype(np.int32, copy=False)
