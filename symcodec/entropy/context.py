"""Entropy model 2: a product of experts over already-decoded neighbours (formats/sym.md section 5.2, CTXM chunk).

Each symbol's distribution is a product of experts. An expert is a table row picked by one neighbouring
symbol (left, above, the same place in an earlier plane, ...); the row lists the M most likely symbols
with integer log-ratio scores against the static table, plus a default score for all others. The
candidates of all experts form the coded alphabet, plus one escape entry that is followed by the symbol
under the static table. Coding is rANS in compiled loops (`context_kernels`), all in integers.

Model 2 is frozen: readers decode it and the encoder still writes it for codebooks that carry a CTXM chunk,
but no new tables are trained. Model 3 codes within 6% of it at 10-15x its speed (formats/sym.md 5.2).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import FormatError
from . import context_kernels as kern
from .base import EntropyModel, deflate, geometry, inflate
from .rans import TOTAL, check_end, encode_events, stream_words

FORMAT = 1  # CTXM payload version
MAX_EXPERTS = 8
MAX_M = 255
_HDR = struct.Struct("<BBHIBB2x")  # version, tables T, M, K, slots S, experts per slot E
_EXPERT = struct.Struct("<BBbbBB")  # table, src plane offset, dy, dx, weight (1/16), candidate limit


def exp_table() -> np.ndarray:
    """E(v) for v in -VMAX..VMAX (1/256 bit): EXP[v mod 256] shifted left by floor(v/256) (right if negative).

    EXP[j] = round(2**(15 + j/256)) for j in 0..255, integers in [2**15, 2**16).
    """
    base = np.array([round(2.0 ** (15 + j / 256)) for j in range(256)], dtype=np.int64)
    v = np.arange(-kern.VMAX, kern.VMAX + 1, dtype=np.int64)
    q, j = v >> 8, v & 255
    return np.where(q >= 0, base[j] << np.maximum(q, 0), base[j] >> np.maximum(-q, 0)).astype(np.int64)


@dataclass(frozen=True)
class Expert:
    """One context: table index, source plane offset (0 = same plane), grid offset, weight in 1/16, row limit."""

    table: int
    src: int
    dy: int
    dx: int
    weight: int
    limit: int = MAX_M


class ContextModel(EntropyModel):
    """Product-of-experts context model over K symbols (entropy model id 2)."""

    model_id = 2
    tag = b"CTXM"

    def __init__(self, f0: np.ndarray, cand: np.ndarray, score: np.ndarray, dflt: np.ndarray,
                 slots: Sequence[Sequence[Expert]]) -> None:
        self.f0 = np.ascontiguousarray(f0, dtype=np.int64)
        self.k = int(self.f0.size)
        self.cand = np.ascontiguousarray(cand, dtype=np.int32)
        self.score = np.ascontiguousarray(score, dtype=np.int32)
        self.dflt = np.ascontiguousarray(dflt, dtype=np.int32)
        self.slots = [list(s) for s in slots]
        self._check()
        self.c0 = np.concatenate([[0], np.cumsum(self.f0)]).astype(np.int64)
        self.expt = exp_table()
        s, e, m = len(self.slots), max(1, max(len(x) for x in self.slots)), self.cand.shape[2]
        self.cfg_n = np.array([len(x) for x in self.slots], np.int64)
        arr = np.zeros((6, s, e), np.int64)
        for i, sl in enumerate(self.slots):
            for j, ex in enumerate(sl):
                arr[:, i, j] = (ex.table, ex.src, ex.dy, ex.dx, ex.weight, min(ex.limit, m))
        self.cfg = tuple(np.ascontiguousarray(a) for a in arr)

    def _check(self) -> None:
        t, k, m = self.cand.shape
        if self.f0.ndim != 1 or self.f0.min() < 1 or int(self.f0.sum()) != TOTAL:
            raise FormatError("corrupt context model: static frequencies must be >= 1 and sum to 2**16")
        if k != self.k or self.score.shape != self.cand.shape or self.dflt.shape != (t, k) or not 1 <= m <= MAX_M:
            raise FormatError("corrupt context model: table shapes do not match K and M")
        if self.cand.min() < -1 or self.cand.max() >= k:
            raise FormatError("corrupt context model: candidate symbol outside 0..K-1")
        empty = self.cand < 0
        if (empty[:, :, :-1] & ~empty[:, :, 1:]).any():
            raise FormatError("corrupt context model: empty candidate slot before a used one")
        if not 1 <= len(self.slots) <= 4:
            raise FormatError("corrupt context model: 1 to 4 plane slots expected")
        for sl in self.slots:
            if len(sl) > MAX_EXPERTS:
                raise FormatError(f"corrupt context model: more than {MAX_EXPERTS} experts in a slot")
            for ex in sl:
                if not (0 <= ex.table < t and 0 <= ex.src <= 3 and 0 <= ex.weight <= 64 and 0 <= ex.limit <= MAX_M):
                    raise FormatError("corrupt context model: bad expert (table, source plane or weight)")
                if ex.src == 0 and not (ex.dy < 0 or (ex.dy == 0 and ex.dx < 0)):
                    raise FormatError("corrupt context model: a same-plane expert must look at decoded symbols")

    # -- serialisation --------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The CTXM chunk payload: u32 raw length, then a zlib stream of the raw tables."""
        t, k, m = self.cand.shape
        e = max(1, max(len(x) for x in self.slots))
        parts = [_HDR.pack(FORMAT, t, m, k, len(self.slots), e), self.f0.astype("<u2").tobytes()]
        for sl in self.slots:
            parts.append(struct.pack("<B", len(sl)))
            for j in range(e):
                ex = sl[j] if j < len(sl) else Expert(0, 0, 0, 0, 0, 0)
                parts.append(_EXPERT.pack(ex.table, ex.src, ex.dy, ex.dx, ex.weight, min(ex.limit, MAX_M)))
        parts += [self.dflt.astype("<i2").tobytes(), self.cand.astype("<u2").tobytes(), self.score.astype("<i2").tobytes()]
        return deflate(b"".join(parts))

    @classmethod
    def from_bytes(cls, data: bytes, k: int) -> ContextModel:
        """Parse a CTXM payload for a codebook of K centroids."""
        raw = inflate(data, cls.tag)
        if len(raw) < _HDR.size:
            raise FormatError("corrupt context model: CTXM length mismatch")
        ver, t, m, kk, s, e = _HDR.unpack_from(raw)
        if ver != FORMAT:
            raise FormatError(f"context model version {ver} not supported (this reader handles {FORMAT})")
        if kk != k or not (1 <= t and 1 <= m <= MAX_M and 1 <= s <= 4 and 1 <= e <= MAX_EXPERTS):
            raise FormatError("corrupt context model: header does not match the codebook")
        size = _HDR.size + 2 * k + s * (1 + e * _EXPERT.size) + t * k * 2 + 2 * t * k * m * 2
        if len(raw) != size:
            raise FormatError("corrupt context model: table sizes do not match the header")
        o = _HDR.size
        f0 = np.frombuffer(raw, "<u2", k, o).astype(np.int64)
        o += 2 * k
        slots = []
        for _ in range(s):
            n = raw[o]
            o += 1
            if n > e:
                raise FormatError("corrupt context model: slot lists too many experts")
            exs = [Expert(*_EXPERT.unpack_from(raw, o + j * _EXPERT.size)) for j in range(n)]
            o += e * _EXPERT.size
            slots.append(exs)
        dflt = np.frombuffer(raw, "<i2", t * k, o).reshape(t, k)
        o += 2 * t * k
        cand = np.frombuffer(raw, "<u2", t * k * m, o).reshape(t, k, m).astype(np.int32)
        cand[cand == 0xFFFF] = -1
        o += 2 * t * k * m
        score = np.frombuffer(raw, "<i2", t * k * m, o).reshape(t, k, m)
        return cls(f0, cand, score, dflt, slots)

    # -- coding ---------------------------------------------------------------------------
    def _layout(self, shapes: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, ...]:
        return geometry(shapes)

    def events(self, sym: np.ndarray, layout: Any) -> tuple[np.ndarray, np.ndarray, int]:
        """Every coded event in decoding order (an escape adds a second, static-table event)."""
        sym = np.asarray(sym, np.int64).ravel()
        if sym.size and (sym.min() < 0 or sym.max() >= self.k):
            raise ValueError(f"symbols outside 0..{self.k - 1}")
        starts = np.empty(2 * sym.size, np.int64)
        freqs = np.empty(2 * sym.size, np.int64)
        ne = kern.encode_events(sym, *layout, self.cfg_n, *self.cfg, self.cand, self.score, self.dflt,
                                self.f0, self.c0, self.expt, starts, freqs)
        return starts, freqs, ne

    def encode_flat(self, sym: np.ndarray, layout: Any) -> bytes:
        """The stream of the concatenated planes `sym`."""
        return encode_events(*self.events(sym, layout))

    def decode_flat(self, data: bytes | memoryview, layout: Any) -> np.ndarray:
        """The concatenated planes of `layout` from a stream (DecodeError if it is corrupt)."""
        words, state = stream_words(data)
        off, gh, gw = layout[:3]
        sym = np.zeros(int((gh * gw).sum()), np.int64)
        used = kern.decode_all(words.astype(np.int64), state, *layout, self.cfg_n, *self.cfg, self.cand, self.score,
                               self.dflt, self.f0, self.c0, self.expt, sym)
        check_end(used, words, sym.size)
        return sym.astype(np.int32)


__all__ = ["ContextModel", "Expert", "exp_table"]
