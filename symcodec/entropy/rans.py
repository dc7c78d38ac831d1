"""The rANS coder every entropy model shares (formats/sym.md section 5): 32-bit state, 16-bit words, 2^16 precision.

A model turns symbols into events (a start and a frequency out of 2^16); `encode_events` codes any list
of events into the spec's bytes, and the decode loops of the models (static here, context tables in
`context_kernels` and `ppm_kernels`) run the inverse with `stream_words` before and `check_end` after.
All integer arithmetic, so every machine writes and reads the same bytes.
"""
from __future__ import annotations

import numba
import numpy as np

from ..errors import DecodeError
from ..jit import JIT

PREC = 16  # probabilities are f / 2^16
TOTAL = 1 << PREC
RANS_L = 1 << 16  # state lower bound; the state is a u32 in [RANS_L, 2^32)


def quantize_counts(counts: np.ndarray) -> np.ndarray:
    """Counts -> frequencies f_k >= 1 summing to 2^16 (largest remainders, ties to lower index)."""
    n = np.asarray(counts, dtype=np.uint64)
    k = n.size
    if not 2 <= k <= TOTAL or int(n.min()) < 1:
        msg = "counts must hold 2..65536 entries, each >= 1"
        raise ValueError(msg)
    total = int(n.sum())
    scaled = n * np.uint64(TOTAL - k)
    f = np.uint64(1) + scaled // np.uint64(total)
    rem = scaled % np.uint64(total)
    r = TOTAL - int(f.sum())
    if r:
        order = np.lexsort((np.arange(k), np.uint64(total) - rem))  # remainder descending, index ascending
        f[order[:r]] += np.uint64(1)
    return f.astype(np.uint32)


@numba.njit(**JIT)
def encode_kernel(starts, freqs, n, out):  # pragma: no cover - compiled
    """Encode events n-1 .. 0 (each a start c and frequency f out of 2^16), then the final state as two
    words; words fill `out` from its end. Returns the number of words written."""
    x = np.uint64(RANS_L)
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
    """rANS-code the first n (start, frequency) events into the spec's bytes (an even number of u16 words)."""
    n = len(freqs) if n is None else n
    out = np.empty(n + 3, np.uint16)
    m = encode_kernel(starts, freqs, n, out)
    w = out[out.size - m :]
    if m % 2:
        w = np.concatenate([w, np.zeros(1, np.uint16)])
    return w.astype("<u2").tobytes()


def stream_words(data: bytes | memoryview) -> tuple[np.ndarray, int]:
    """A stream's u16 words and initial state (DecodeError unless it has whole u32s and a state >= 2^16)."""
    buf = bytes(data)
    if len(buf) < 4 or len(buf) % 4:
        raise DecodeError("corrupt symbol stream: bad length")
    words = np.frombuffer(buf, "<u2")
    state = int(words[0]) | (int(words[1]) << 16)
    if state < RANS_L:
        raise DecodeError("corrupt symbol stream: bad initial state")
    return words, state


def check_end(used: int, words: np.ndarray, n: int) -> None:
    """DecodeError unless a decode loop ended well: final state 2^16 (used >= 0) and every word read, or all but one 0 pad."""
    if used < 0 or not (used == words.size or (used == words.size - 1 and words[-1] == 0)):
        raise DecodeError(f"corrupt symbol stream: it does not decode to exactly {n} symbols")


@numba.njit(inline="always", **JIT)
def step(x, words, wi):  # pragma: no cover - compiled
    """After a decoded event, refill an int64 state below 2^16 from the next word: (state, next word index),
    index -1 if the stream ran out (the stream is then invalid)."""
    if x < RANS_L:
        if wi >= words.shape[0]:
            return x, -1
        return (x << 16) | np.int64(words[wi]), wi + 1
    return x, wi


@numba.njit(**JIT)
def decode_static(words, state, freq, cum, slot_sym, out):  # pragma: no cover - compiled
    """Decode len(out) symbols under one static table; returns words used, or -1 if the stream runs out or ends in a wrong state."""
    m = words.shape[0]
    x = np.uint64(state)
    pos = 2
    mask = np.uint64(TOTAL - 1)
    for i in range(out.shape[0]):
        slot = x & mask
        s = slot_sym[slot]
        out[i] = s
        x = np.uint64(freq[s]) * (x >> np.uint64(PREC)) + slot - np.uint64(cum[s])
        if x < np.uint64(RANS_L):
            if pos >= m:
                return -1
            x = (x << np.uint64(16)) | np.uint64(words[pos])
            pos += 1
    if x != np.uint64(RANS_L):
        return -1
    return pos
