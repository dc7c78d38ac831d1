"""Entropy model 1: one static table, the codebook's symbol counts (CNTS chunk), rANS-coded (formats/sym.md section 5.1)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import FormatError
from .base import EntropyModel
from .rans import decode_static, encode_events, quantize_counts, check_end, stream_words


class StaticModel(EntropyModel):
    """A fixed categorical distribution over K symbols, quantised from integer counts to 16-bit frequencies."""

    model_id = 1
    tag = b"CNTS"

    def __init__(self, counts: np.ndarray) -> None:
        counts = np.asarray(counts, dtype=np.uint32)
        if counts.ndim != 1 or counts.size < 2 or int(counts.min()) < 1:
            msg = "symbol counts must be a 1-D table of at least 2 entries, each >= 1"
            raise ValueError(msg)
        self.counts = counts
        self.k = int(counts.size)
        self.freq = quantize_counts(counts)
        self.cum = np.zeros(self.k, np.uint32)
        np.cumsum(self.freq[:-1], out=self.cum[1:])
        self.slot_sym = np.repeat(np.arange(self.k, dtype=np.uint16 if self.k <= 65536 else np.int32), self.freq)

    def max_symbols(self, nbytes: int) -> int:
        """The most symbols a stream of `nbytes` can hold: each costs at least log2(2^16 / the largest frequency) bits,
        and rANS spends the information it carries within its 32-bit state (64 bits of slack, 1% more)."""
        per = float(np.log2(65536.0 / float(self.freq.max())))
        return int((8 * nbytes + 64) * 1.01 / per) + 1

    @classmethod
    def from_bytes(cls, data: bytes, k: int) -> StaticModel:
        """Parse a CNTS payload: K u32 counts, each >= 1."""
        if len(data) != 4 * k:
            raise FormatError("corrupt codebook: CNTS does not hold K counts")
        counts = np.frombuffer(data, "<u4")
        if k < 2 or int(counts.min()) < 1:
            raise FormatError("corrupt codebook: symbol counts must be >= 1")
        return cls(counts)

    def to_bytes(self) -> bytes:
        """The CNTS payload."""
        return self.counts.astype("<u4").tobytes()

    def _layout(self, shapes: tuple[tuple[int, int], ...]) -> int:
        return sum(h * w for h, w in shapes)

    def events(self, sym: np.ndarray, layout: Any) -> tuple[np.ndarray, np.ndarray, int]:
        """One event per symbol: its start and frequency in the static table."""
        s = np.asarray(sym).ravel()
        return self.cum[s], self.freq[s], s.size

    def encode_flat(self, sym: np.ndarray, layout: Any = None) -> bytes:
        """rANS-code a flat array of symbols (each < K)."""
        s = np.ascontiguousarray(sym, dtype=np.int32).ravel()
        if s.size and (s.min() < 0 or s.max() >= self.k):
            msg = f"symbols outside 0..{self.k - 1}"
            raise ValueError(msg)
        return encode_events(self.cum[s], self.freq[s])

    def decode_flat(self, data: bytes | memoryview, layout: Any) -> np.ndarray:
        """Decode exactly `layout` (a symbol count) symbols; DecodeError if the stream is not exactly that."""
        words, state = stream_words(data)
        out = np.empty(int(layout), np.int32)
        check_end(decode_static(words, state, self.freq, self.cum, self.slot_sym, out), words, out.size)
        return out
