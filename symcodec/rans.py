"""Static-model rANS (formats/sym-v1.md section 5): integer frequency tables and numba coder kernels.

constriction's Python range coder decodes about 25 Msym/s for K=2048 (a binary search per symbol);
this table-driven rANS decodes ~10x faster, which the decode-speed target needs. The stream is fully
specified by the spec (integer arithmetic only), so any implementation can decode it.
"""
from __future__ import annotations

from typing import Sequence

import numba
import numpy as np

from .errors import DecodeError

PREC = 16  # probabilities are f_k / 2^16
M = 1 << PREC
L = 1 << 16  # state lower bound; state is a u32 in [L, 2^32)
_JIT = {"cache": True, "nogil": True, "boundscheck": False}


def quantize_counts(counts: np.ndarray) -> np.ndarray:
    """Counts -> frequencies f_k >= 1 summing to 2^16 (largest remainders, ties to lower index)."""
    n = np.asarray(counts, dtype=np.uint64)
    k = n.size
    if not 2 <= k <= M or int(n.min()) < 1:
        msg = "counts must hold 2..65536 entries, each >= 1"
        raise ValueError(msg)
    total = int(n.sum())
    scaled = n * np.uint64(M - k)
    f = np.uint64(1) + scaled // np.uint64(total)
    rem = scaled % np.uint64(total)
    r = M - int(f.sum())
    if r:
        order = np.lexsort((np.arange(k), np.uint64(total) - rem))  # remainder descending, index ascending
        f[order[:r]] += np.uint64(1)
    return f.astype(np.uint32)


@numba.njit(**_JIT)
def _encode(starts, freqs, n, out):  # pragma: no cover - compiled
    """Encode events n-1 .. 0 (each a start c and frequency f out of 2^16), then the final state as two
    words; words fill `out` from its end. Returns the number of words written."""
    x = np.uint64(L)
    pos = out.shape[0]
    for i in range(n - 1, -1, -1):
        f = np.uint64(freqs[i])
        if x >= (f << np.uint64(16)):
            pos -= 1
            out[pos] = np.uint16(x & np.uint64(0xFFFF))
            x >>= np.uint64(16)
        x = ((x // f) << np.uint64(PREC)) + (x % f) + np.uint64(starts[i])
    pos -= 1
    out[pos] = np.uint16(x >> np.uint64(16))
    pos -= 1
    out[pos] = np.uint16(x & np.uint64(0xFFFF))
    return out.shape[0] - pos


def encode_events(starts: np.ndarray, freqs: np.ndarray, n: int | None = None) -> bytes:
    """rANS-code a sequence of (start, frequency) events into the spec's bytes (even number of u16 words).

    Shared by entropy model 1 (events from one static table) and models 2 and 3 (events from context tables).
    """
    n = len(freqs) if n is None else n
    out = np.empty(n + 3, np.uint16)
    m = _encode(starts, freqs, n, out)
    w = out[out.size - m :]
    if m % 2:
        w = np.concatenate([w, np.zeros(1, np.uint16)])
    return w.astype("<u2").tobytes()


@numba.njit(**_JIT)
def _decode(words, n, freq, cum, slot_sym, out):  # pragma: no cover - compiled
    """Decode n symbols; returns words consumed, or -1 if the stream is too short or ends in a wrong state."""
    m = words.shape[0]
    if m < 2:
        return -1
    x = np.uint64(words[0]) | (np.uint64(words[1]) << np.uint64(16))
    pos = 2
    mask = np.uint64(M - 1)
    for i in range(n):
        slot = x & mask
        s = slot_sym[slot]
        out[i] = s
        x = np.uint64(freq[s]) * (x >> np.uint64(PREC)) + slot - np.uint64(cum[s])
        if x < np.uint64(L):
            if pos >= m:
                return -1
            x = (x << np.uint64(16)) | np.uint64(words[pos])
            pos += 1
    if x != np.uint64(L):
        return -1
    return pos


class RansTable:
    """Frequency, cumulative and slot->symbol tables for one static model."""

    def __init__(self, counts: np.ndarray) -> None:
        self.freq = quantize_counts(counts)
        self.cum = np.zeros(self.freq.size, np.uint32)
        np.cumsum(self.freq[:-1], out=self.cum[1:])
        self.slot_sym = np.repeat(np.arange(self.freq.size, dtype=np.uint16 if self.freq.size <= 65536 else np.int32), self.freq)

    def encode(self, symbols: np.ndarray) -> bytes:
        """Encode int symbols (all < K) into the spec's byte stream (even number of u16 words)."""
        sym = np.ascontiguousarray(symbols, dtype=np.int32).ravel()
        return encode_events(self.cum[sym], self.freq[sym])

    def decode(self, data: bytes | memoryview | np.ndarray, n: int) -> np.ndarray | None:
        """Decode n symbols; None if the stream is inconsistent (wrong length, final state or padding)."""
        buf = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
        if len(buf) % 4:
            return None
        words = np.frombuffer(buf, "<u2").astype(np.uint16)
        out = np.empty(n, np.int32)
        used = _decode(words, n, self.freq, self.cum, self.slot_sym, out)
        if used < 0 or not (used == words.size or (used == words.size - 1 and words[-1] == 0)):
            return None
        return out


def stream_words(data: bytes | memoryview) -> tuple[np.ndarray, int]:
    """Split a stream written by `encode_events` into its u16 words and initial state (DecodeError if malformed)."""
    buf = bytes(data)
    if len(buf) < 4 or len(buf) % 4:
        raise DecodeError("corrupt symbol stream: bad length")
    words = np.frombuffer(buf, "<u2")
    return words, int(words[0]) | (int(words[1]) << 16)


class EventCoder:
    """encode / code_length for an entropy model whose `_events(planes)` gives rANS (starts, freqs, count)."""

    def _events(self, planes: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
        raise NotImplementedError

    def encode(self, planes: Sequence[np.ndarray]) -> bytes:
        """rANS-code planes (each (gh, gw), coded in order): state as two u16 words, then words, padded to 4 bytes."""
        starts, freqs, ne = self._events(planes)
        return encode_events(starts, freqs, ne)

    def code_length(self, planes: Sequence[np.ndarray]) -> float:
        """Ideal code length in bits of the planes under this model (what rANS writes, minus ~32 bits)."""
        _, freqs, ne = self._events(planes)
        return float(np.sum(PREC - np.log2(freqs[:ne].astype(np.float64))))

