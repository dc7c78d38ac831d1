"""Entropy model 2: symbol probabilities conditioned on already-decoded neighbours (formats/codebook-v2.md).

Each symbol's distribution is a product of experts. An expert is a table row picked by one neighbouring
symbol (left, above, the same place in an earlier plane, ...); the row lists the M most likely symbols
with integer log-ratio scores against the static table, plus a default score for all others. The
candidates of all experts form the coded alphabet, plus one escape entry that is followed by the symbol
under the static table. Coding is rANS in compiled loops (symcodec.ctxkernels), all in integers.
"""
from __future__ import annotations

import struct
import sys
import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import ctxkernels as kern
from .errors import DecodeError, FormatError
from .rans import EventCoder, stream_words

CONTEXT = 2  # entropy model id 2 in .sym HEAD
FORMAT = 1  # CTXM payload version
MAX_EXPERTS = 8
MAX_M = 255
_HDR = struct.Struct("<BBHIBB2x")  # version, tables T, M, K, slots S, experts per slot E
_EXPERT = struct.Struct("<BBbbBB")  # table, src plane offset, dy, dx, weight (1/16), candidate limit
MAX_RAW = 1 << 28


def exp_table() -> np.ndarray:
    """E(v) for v in -VMAX..VMAX (1/256 bit): EXP[v mod 256] shifted left by floor(v/256) (right if negative).

    EXP[j] = round(2**(15 + j/256)) for j in 0..255, integers in [2**15, 2**16).
    """
    base = np.array([round(2.0 ** (15 + j / 256)) for j in range(256)], dtype=np.int64)
    v = np.arange(-kern.VMAX, kern.VMAX + 1, dtype=np.int64)
    q, j = v >> 8, v & 255
    return np.where(q >= 0, base[j] << np.maximum(q, 0), base[j] >> np.maximum(-q, 0)).astype(np.int64)


def static_freqs(counts: np.ndarray) -> np.ndarray:
    """Quantise counts to frequencies >= 1 summing to 2**16: 1 + floor(c * (2**16 - K) / sum), rest to the first max."""
    c = np.asarray(counts, dtype=np.int64)
    k = c.size
    if not 2 <= k <= kern.TOTAL // 2:
        msg = f"entropy model 2 needs 2 <= K <= {kern.TOTAL // 2}, got {k}"
        raise FormatError(msg)
    f = 1 + (c * (kern.TOTAL - k)) // int(c.sum())
    f[int(np.argmax(c))] += kern.TOTAL - int(f.sum())
    return f


@dataclass(frozen=True)
class Expert:
    """One context: table index, source plane offset (0 = same plane), grid offset, weight in 1/16, row limit."""

    table: int
    src: int
    dy: int
    dx: int
    weight: int
    limit: int = MAX_M


class ContextModel(EventCoder):
    """Product-of-experts context model over K symbols (entropy model id 2)."""

    model_id = CONTEXT

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
        if self.f0.ndim != 1 or self.f0.min() < 1 or int(self.f0.sum()) != kern.TOTAL:
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
        raw = b"".join(parts)
        return struct.pack("<I", len(raw)) + zlib.compress(raw, 9)

    @classmethod
    def from_bytes(cls, data: bytes, k: int) -> ContextModel:
        """Parse a CTXM payload for a codebook of K centroids."""
        if len(data) < 4:
            raise FormatError("corrupt context model: CTXM too short")
        (n_raw,) = struct.unpack_from("<I", data)
        if n_raw > MAX_RAW:
            raise FormatError("corrupt context model: CTXM claims too many bytes")
        try:
            d = zlib.decompressobj()
            raw = d.decompress(data[4:], n_raw + 1)
        except zlib.error:
            raise FormatError("corrupt context model: CTXM does not inflate") from None
        if len(raw) != n_raw or len(raw) < _HDR.size:
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
    def _geometry(self, shapes: Sequence[tuple[int, int]]) -> tuple[np.ndarray, ...]:
        """Plane offsets, grid sizes, and row/column maps between planes: (i * size_q) // size_p."""
        gh = np.array([s[0] for s in shapes], np.int64)
        gw = np.array([s[1] for s in shapes], np.int64)
        off = np.concatenate([[0], np.cumsum(gh * gw)[:-1]]).astype(np.int64)
        ymap = (np.arange(gh.max())[None, None, :] * gh[None, :, None]) // gh[:, None, None]
        xmap = (np.arange(gw.max())[None, None, :] * gw[None, :, None]) // gw[:, None, None]
        return off, gh, gw, np.ascontiguousarray(ymap), np.ascontiguousarray(xmap)

    def _events(self, planes: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
        geo = self._geometry([p.shape for p in planes])
        sym = np.concatenate([np.asarray(p, np.int64).ravel() for p in planes])
        if sym.size and (sym.min() < 0 or sym.max() >= self.k):
            raise ValueError(f"symbols outside 0..{self.k - 1}")
        starts = np.empty(2 * sym.size, np.int64)
        freqs = np.empty(2 * sym.size, np.int64)
        ne = kern.encode_events(sym, *geo, self.cfg_n, *self.cfg, self.cand, self.score, self.dflt,
                                self.f0, self.c0, self.expt, starts, freqs)
        return starts, freqs, ne

    def decode(self, data: bytes | memoryview, shapes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        """Decode planes of the given grid shapes from a stream written by `encode`."""
        words, state = stream_words(data)
        words = words.astype(np.int64)
        geo = self._geometry(shapes)
        off, gh, gw = geo[:3]
        sym = np.zeros(int((gh * gw).sum()), np.int64)
        if state < kern.RANS_L:
            raise DecodeError("corrupt symbol stream: bad initial state")
        used = kern.decode_all(words, state, *geo, self.cfg_n, *self.cfg, self.cand, self.score, self.dflt,
                               self.f0, self.c0, self.expt, sym)
        if used < 0 or not (used == words.size or (used == words.size - 1 and words[-1] == 0)):
            raise DecodeError("corrupt symbol stream: it does not decode to exactly the symbols HEAD declares")
        out = sym.astype(np.int32)
        return [out[o : o + h * w].reshape(h, w) for o, h, w in zip(off, gh, gw)]


# -- training ---------------------------------------------------------------------------------
def pairs(planes: Sequence[np.ndarray], p: int, ex: Expert) -> tuple[np.ndarray, np.ndarray]:
    """(context, target) symbol pairs of one expert on plane p over a batch: planes[i] is (N, gh, gw)."""
    q = p - ex.src
    if q < 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    n, gh, gw = planes[p].shape
    ghq, gwq = planes[q].shape[1:]
    yy = (np.arange(gh) * ghq) // gh + ex.dy
    xx = (np.arange(gw) * gwq) // gw + ex.dx
    vy = (yy >= 0) & (yy < ghq)
    vx = (xx >= 0) & (xx < gwq)
    ctx = planes[q][:, yy[vy]][:, :, xx[vx]]
    tgt = planes[p][:, vy][:, :, vx]
    return ctx.reshape(-1).astype(np.int64), tgt.reshape(-1).astype(np.int64)


def fit_table(ctx: np.ndarray, tgt: np.ndarray, f0: np.ndarray, m: int, beta: float = 20.0,
              min_gain: float = 0.5, min_count: int = 2) -> tuple[np.ndarray, ...]:
    """One expert table: up to m symbols per context, log2-ratio scores and default score, in 1/256 bit.

    Symbols are taken in order of count; only those seen min_count times whose score beats the row's
    default by min_gain bits are listed (the others share the default).
    """
    k = f0.size
    ps = f0 / float(f0.sum())
    cnt = np.bincount(ctx * k + tgt, minlength=k * k).reshape(k, k).astype(np.float64)
    tot = cnt.sum(1, keepdims=True)
    prob = (cnt + beta * ps) / (tot + beta)
    order = np.argsort(-cnt, axis=1, kind="stable")[:, :m]
    rows = np.arange(k)[:, None]
    po, so = prob[rows, order], ps[order]
    score = np.rint(256 * np.log2(po / so))

    def default(keep: np.ndarray) -> np.ndarray:
        p_in, s_in = np.where(keep, po, 0.0).sum(1), np.where(keep, so, 0.0).sum(1)
        return np.rint(256 * np.log2(np.maximum(1 - p_in, 1e-9) / np.maximum(1 - s_in, 1e-9)))

    keep = cnt[rows, order] >= min_count
    keep &= score >= default(keep)[:, None] + 256 * min_gain
    dflt = default(keep)
    pos = np.argsort(~keep, axis=1, kind="stable")  # compact: kept entries first, in count order
    keep, order, score = keep[rows, pos], order[rows, pos], score[rows, pos]
    cand = np.where(keep, order, -1).astype(np.int32)
    lim = 20 * 256
    score = np.where(keep, np.clip(score, -lim, lim), 0).astype(np.int32)
    return cand, score, np.clip(dflt, -lim, lim).astype(np.int32)


# plane layouts: tables pool (plane, src, dy, dx) pairs; slots list (table, src, dy, dx, weight/16, row limit) per plane
LEFT, ABOVE = (0, 0, -1), (0, -1, 0)
LAYOUTS = {
    "planes": {
        "tables": [[(p, *LEFT) for p in range(3)], [(p, *ABOVE) for p in range(3)],
                   [(1, 1, 0, 0)], [(2, 1, 0, 0)], [(2, 2, 0, 0)]],
        "slots": [[(0, *LEFT, 13, 64), (1, *ABOVE, 13, 64)],
                  [(2, 1, 0, 0, 14, 64), (0, *LEFT, 8, 64), (1, *ABOVE, 8, 64)],
                  [(3, 1, 0, 0, 14, 64), (4, 2, 0, 0, 6, 64), (0, *LEFT, 6, 64), (1, *ABOVE, 6, 64)]],
    },
    "ycc420": {  # planes Y, Cb, Cr; chroma grids are half the luma grid, so Cb-from-Y looks at Y (2i, 2j)
        "tables": [[(0, *LEFT)], [(0, *ABOVE)], [(1, *LEFT), (2, *LEFT)], [(1, *ABOVE), (2, *ABOVE)],
                   [(1, 1, 0, 0)], [(2, 1, 0, 0)], [(2, 2, 0, 0)]],
        "slots": [[(0, *LEFT, 13, 64), (1, *ABOVE, 13, 64)],
                  [(4, 1, 0, 0, 8, 64), (2, *LEFT, 10, 64), (3, *ABOVE, 10, 64)],
                  [(5, 1, 0, 0, 14, 64), (6, 2, 0, 0, 6, 64), (2, *LEFT, 8, 64), (3, *ABOVE, 8, 64)]],
    },
}


def train_context(planes: Sequence[np.ndarray], counts: np.ndarray, layout: str = "planes", m: int = 64,
                  min_gain: float = 0.5, min_count: int = 2, progress: bool = True) -> ContextModel:
    """Fit the expert tables of a layout on training symbols: planes[i] is (N, gh_i, gw_i) int."""
    from tqdm import tqdm

    spec = LAYOUTS[layout]
    f0 = static_freqs(counts)
    k = f0.size
    cands, scores, dflts = [], [], []
    for tab in tqdm(spec["tables"], desc="context tables", disable=not progress, file=sys.stderr):
        cs, ts = [], []
        for p, src, dy, dx in tab:
            if p < len(planes):
                c, t = pairs(planes, p, Expert(0, src, dy, dx, 0))
                cs.append(c)
                ts.append(t)
        c, t = (np.concatenate(cs), np.concatenate(ts)) if cs else (np.zeros(0, np.int64),) * 2
        cand, score, dflt = fit_table(c, t, f0, m, min_gain=min_gain, min_count=min_count)
        cands.append(cand)
        scores.append(score)
        dflts.append(dflt)
    slots = [[Expert(*e) for e in sl] for sl in spec["slots"]]
    return ContextModel(f0, np.stack(cands), np.stack(scores), np.stack(dflts), slots)


def mean_bits(model: ContextModel, planes: Sequence[np.ndarray]) -> float:
    """Mean ideal bits per symbol over a batch (planes[i] is (N, gh_i, gw_i))."""
    n = planes[0].shape[0]
    total = sum(model.code_length([p[i] for p in planes]) for i in range(n))
    return total / (n * sum(int(np.prod(p.shape[1:])) for p in planes))


__all__ = ["CONTEXT", "ContextModel", "Expert", "LAYOUTS", "exp_table", "mean_bits", "static_freqs", "train_context"]


def fit_for_codebook(cb: object, srcs: Sequence[str], layout: str = "planes", m: int = 64,
                     limit_images: int | None = None, progress: bool = True) -> bytes:
    """Quantise training images with a codebook and fit a context model: the CTXM payload."""
    from .ppmtrain import quantised_planes

    planes = quantised_planes(cb, srcs, limit_images, progress)
    return train_context(planes, cb.counts, layout, m, progress=progress).to_bytes()  # type: ignore[attr-defined]
