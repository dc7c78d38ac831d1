"""Entropy coding of symbol planes with constriction's range coder (formats/sym-v1.md, section 5)."""
from __future__ import annotations

import numpy as np

import constriction

from .errors import DecodeError

STATIC = 1  # entropy model id 1: one static categorical table (the codebook's CNTS chunk)


class StaticModel:
    """A fixed categorical distribution over K symbols, built from integer counts."""

    model_id = STATIC

    def __init__(self, counts: np.ndarray) -> None:
        counts = np.asarray(counts, dtype=np.uint32)
        if counts.ndim != 1 or counts.size < 2 or int(counts.min()) < 1:
            msg = "symbol counts must be a 1-D table of at least 2 entries, each >= 1"
            raise ValueError(msg)
        self.k = int(counts.size)
        # float64 p = counts / sum: the exact input the spec fixes for constriction 0.5
        self.probs = counts.astype(np.float64) / float(counts.sum(dtype=np.float64))
        self._model = constriction.stream.model.Categorical(self.probs, perfect=False)

    def cross_entropy(self, symbols: np.ndarray) -> float:
        """Ideal code length of `symbols` under this model, in bits."""
        return float(-np.log2(self.probs[np.asarray(symbols).ravel()]).sum())

    def encode(self, symbols: np.ndarray) -> np.ndarray:
        """Range-code a flat int32 symbol array into uint32 words."""
        enc = constriction.stream.queue.RangeEncoder()
        sym = np.ascontiguousarray(symbols, dtype=np.int32).ravel()
        if sym.size:
            enc.encode(sym, self._model)
        return enc.get_compressed()

    def decode(self, words: np.ndarray, n: int) -> np.ndarray:
        """Decode exactly `n` symbols from uint32 words."""
        if n == 0:
            return np.zeros(0, np.int32)
        try:
            dec = constriction.stream.queue.RangeDecoder(np.ascontiguousarray(words, dtype=np.uint32))
            out = dec.decode(self._model, n)
        except BaseException as exc:  # constriction raises AssertionError or a pyo3 PanicException
            if isinstance(exc, (KeyboardInterrupt, SystemExit, MemoryError)):
                raise
            msg = f"corrupt symbol stream ({type(exc).__name__})"
            raise DecodeError(msg) from None
        return np.asarray(out, dtype=np.int32)
