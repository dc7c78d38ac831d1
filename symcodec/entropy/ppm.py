"""Entropy model 3: escape-chain context tables (formats/sym.md section 5.3, PPMT chunk in formats/symcb.md).

A fast alternative to entropy model 2. Each plane slot lists up to four context levels, each keyed by
one or two already-decoded neighbour symbols; a level's row holds the likely symbols with 16-bit
frequencies and leaves the rest of 2**16 to an escape that moves on to the next level, and then to
the slot's static table. Coding costs one table lookup per level (no mixing), in compiled loops
(`ppm_kernels`).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import FormatError
from . import ppm_kernels as kern
from .base import EntropyModel, deflate, geometry, inflate
from .rans import TOTAL, check_end, stream_words

FORMAT = 1  # PPMT payload version
MAX_LEVELS = 4
_NB_MAX = 1 << 14  # layouts with a reference table per symbol (small images): 32 bytes a symbol, 512 KiB at most
_BITMAP_MAX_K = 4096  # the encoder's row bitmaps cost K * K / 8 bytes per single-reference level
_HDR = struct.Struct("<BBHI")  # version, slots S, reserved, K
_LEVEL = struct.Struct("<Bbbbbbb")  # refs (1 or 2), then (src, dy, dx) twice; src/dy/dx as int8 (src 0..3)


def _starts(lens: np.ndarray) -> np.ndarray:
    """Start offset of each row from the row lengths."""
    st = np.cumsum(lens, dtype=np.int64)
    st -= lens
    return st


@dataclass(frozen=True)
class Level:
    """One context level: one or two neighbour references (source plane offset, dy, dx)."""

    refs: tuple[tuple[int, int, int], ...]


@dataclass
class Table:
    """The rows of one level: sorted context keys, row lengths, and entries (symbol, frequency) row by row."""

    keys: np.ndarray
    lens: np.ndarray
    syms: np.ndarray
    freqs: np.ndarray


class PPMModel(EntropyModel):
    """Escape-chain context model over K symbols (entropy model id 3)."""

    model_id = 3
    tag = b"PPMT"

    def __init__(self, k: int, slots: Sequence[Sequence[Level]], static: np.ndarray, tables: Sequence[Sequence[Table]]) -> None:
        self.k = int(k)
        self.slots = [list(s) for s in slots]
        self.static = np.ascontiguousarray(static, np.int64)
        self.tables = [list(t) for t in tables]
        self._check()
        self._prepare()

    def _check(self) -> None:
        k, s = self.k, len(self.slots)
        if not 2 <= k <= 65535:
            raise FormatError("corrupt context model: entropy model 3 needs 2 <= K <= 65535")
        if not 1 <= s <= 4 or self.static.shape != (s, k) or len(self.tables) != s:
            raise FormatError("corrupt context model: 1 to 4 slots, each with a static table of K entries")
        if self.static.min() < 1 or (self.static.sum(1) != TOTAL).any():
            raise FormatError("corrupt context model: static frequencies must be >= 1 and sum to 2**16")
        for sl, tabs in zip(self.slots, self.tables):
            if not 1 <= len(sl) <= MAX_LEVELS or len(tabs) != len(sl):
                raise FormatError("corrupt context model: 1 to 4 levels per slot")
            for lev, tab in zip(sl, tabs):
                if len(lev.refs) not in (1, 2):
                    raise FormatError("corrupt context model: a level has one or two references")
                for src, dy, dx in lev.refs:
                    if not 0 <= src <= 3 or (src == 0 and not (dy < 0 or (dy == 0 and dx < 0))):
                        raise FormatError("corrupt context model: a reference must point at a decoded symbol")
                self._check_table(tab, k ** len(lev.refs))

    def _check_table(self, t: Table, nkeys: int) -> None:
        """Row keys increasing and in range, lengths >= 1, entries in range, room for every row's escape.

        Works on the arrays as stored (u32/u16 views of the chunk when parsed): no per-entry copies."""
        n = t.keys.size
        if t.lens.shape != (n,) or (n and (int(t.lens.min()) < 1 or int(t.keys.min()) < 0 or int(t.keys.max()) >= nkeys)):
            raise FormatError("corrupt context model: row keys or lengths out of range")
        if n > 1 and not (t.keys[1:] > t.keys[:-1]).all():
            raise FormatError("corrupt context model: row keys must increase")
        e = int(t.lens.sum(dtype=np.int64))
        if t.syms.shape != (e,) or t.freqs.shape != (e,):
            raise FormatError("corrupt context model: entry count does not match the row lengths")
        if e and (int(t.syms.max()) >= self.k or int(t.freqs.min()) < 1):
            raise FormatError("corrupt context model: entry symbol >= K or frequency 0")
        if e and (np.add.reduceat(t.freqs, _starts(t.lens), dtype=np.int64) > TOTAL - 1).any():
            raise FormatError("corrupt context model: a row leaves no room for its escape")

    def _prepare(self) -> None:
        """Flat arrays for the kernels: level refs, row lookups (dense or hashed), entries, static tables."""
        s, k = len(self.slots), self.k
        self.nlev = np.array([len(x) for x in self.slots], np.int64)
        self.nref = np.zeros((s, MAX_LEVELS), np.int64)
        # a level whose references all lie in earlier planes or rows, as has every level before it: the
        # decoder looks its rows up for a whole row of symbols at once (ppm_kernels.decode_all)
        self.early = np.zeros((s, MAX_LEVELS), np.bool_)
        dense_off = np.zeros(s * MAX_LEVELS, np.int64)
        dense, htab, hkey, hrow, rlen, syms, freqs = [], [], [], [], [], [], []
        nrow = nd = 0
        for i, (sl, tabs) in enumerate(zip(self.slots, self.tables)):
            for j, (lev, tab) in enumerate(zip(sl, tabs)):
                self.nref[i, j] = len(lev.refs)
                self.early[i, j] = (j == 0 or self.early[i, j - 1]) and all(src > 0 or dy < 0 for src, dy, _ in lev.refs)
                rows = nrow + np.arange(tab.keys.size, dtype=np.int64)
                if len(lev.refs) == 1:
                    d = np.full(k, -1, np.int64)
                    d[tab.keys] = rows
                    dense_off[i * MAX_LEVELS + j] = nd
                    dense.append(d)
                    nd += k
                else:
                    htab.append(np.full(tab.keys.size, i * MAX_LEVELS + j, np.int64))
                    hkey.append(tab.keys.astype(np.int64))
                    hrow.append(rows)
                nrow += tab.keys.size
                rlen.append(tab.lens.astype(np.int64))
        cat = lambda a: np.concatenate(a) if a else np.zeros(0, np.int64)  # noqa: E731
        rlen = cat(rlen)
        ne = int(rlen.sum())
        if ne >= 1 << 30:
            raise FormatError("context model too large: over 2**30 entries")
        # entries as (cumulative, frequency, symbol) u16 triples, built table by table: the chunk's own 4 bytes
        # an entry, these 6, the encoder's sorted copy 6, and one table's sort scratch at a time
        ent = np.empty((ne, 3), np.uint16)
        xent = np.empty((ne, 3), np.uint16)
        rtot = np.empty(nrow, np.int64)
        e0 = r0 = 0
        for tabs in self.tables:
            for t in tabs:
                e1, r1 = e0 + t.syms.size, r0 + t.keys.size
                if t.keys.size:
                    st = _starts(t.lens)
                    rtot[r0:r1] = np.add.reduceat(t.freqs, st, dtype=np.int64)
                    csum = np.cumsum(t.freqs, dtype=np.int64)
                    csum -= t.freqs
                    csum -= np.repeat(csum[st], t.lens)
                    ent[e0:e1, 0], ent[e0:e1, 1], ent[e0:e1, 2] = csum, t.freqs, t.syms
                    del csum
                    row = np.repeat(np.arange(t.keys.size, dtype=np.int64), t.lens)
                    row *= k
                    row += t.syms
                    perm = np.argsort(row, kind="stable")  # per row, the entries by symbol (the encoder's binary search)
                    row = row[perm]
                    if row.size > 1 and not (row[1:] != row[:-1]).all():
                        raise FormatError("corrupt context model: a symbol appears twice in one row")
                    del row
                    perm += e0
                    xent[e0:e1] = ent[perm][:, [2, 0, 1]]
                    del perm
                e0, r0 = e1, r1
        rstart = np.concatenate([[0], np.cumsum(rlen)[:-1]]).astype(np.int64) if nrow else np.zeros(0, np.int64)
        # one int64 per row, read with the row lookup itself: entry start << 33 | length << 16 | total
        info = (rstart << 33) | (rlen << 16) | rtot
        d = cat(dense)
        self.dense_off, self.dense = dense_off, np.where(d >= 0, info[np.maximum(d, 0)] if nrow else d, -1).astype(np.int64)
        hk, hr = cat(hkey), cat(hrow)
        self.bits = max(4, int(2 * max(hk.size, 1) - 1).bit_length())
        self.ht = kern.build_hash(cat(htab), hk, info[hr] if nrow else hr, self.bits)
        self.ent, self.xent = ent, xent
        self._bitmaps: tuple | None = None  # the encoder's row bitmaps, built at its first call
        self.sfreq = self.static.astype(np.int32)
        self.scum = np.ascontiguousarray(np.cumsum(self.static, 1) - self.static).astype(np.int32)
        self.sdec = np.ascontiguousarray(np.stack([np.repeat(np.arange(k), f) for f in self.static]).astype(np.uint16))
        self._args = self._tables()

    def encoder_tables(self) -> tuple:
        """Encoder arguments: the shared tables, then per single-reference level a bitmap of each row's symbols.

        Bit s of row c says whether symbol s has an entry in the row of context c; the rank of the bit (the
        set bits before it, from a per-word count and a popcount) is its entry's place in the row's
        symbol-sorted entries. One word replaces a binary search over rows of ~100-200 entries. Built for
        K <= 4096 (K * K / 8 bytes per level), else those levels are searched too.
        """
        if self._bitmaps is None:
            k = self.k
            nw = (k + 63) // 64
            bm_off = np.full(len(self.slots) * MAX_LEVELS, -1, np.int64)
            bms, rks, nb = [], [], 0
            for i, (sl, tabs) in enumerate(zip(self.slots, self.tables)):
                for j, (lev, t) in enumerate(zip(sl, tabs)):
                    if len(lev.refs) != 1 or k > _BITMAP_MAX_K:
                        continue
                    has = np.zeros((k, nw * 64), np.bool_)
                    has[np.repeat(t.keys, t.lens), t.syms] = True
                    words = np.packbits(has, axis=1, bitorder="little").view("<u8").astype(np.uint64)
                    pc = np.unpackbits(words.view(np.uint8), axis=1).reshape(k, nw, 64).sum(2)
                    rks.append((np.cumsum(pc, 1) - pc).astype(np.uint16).ravel())
                    bms.append(words.ravel())
                    bm_off[i * MAX_LEVELS + j] = nb
                    nb += k * nw
            bm = np.concatenate(bms) if bms else np.zeros(1, np.uint64)
            rk = np.concatenate(rks) if rks else np.zeros(1, np.uint16)
            self._bitmaps = (bm_off, bm, rk, nw)
        return (*self._args, self.xent, self.sfreq, self.scum, self.k, *self._bitmaps)

    def _tables(self) -> tuple:
        return (self.nlev, self.nref, self.dense_off, self.dense, self.ht, self.bits, self.ent)

    def _layout(self, key: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, ...]:
        """Kernel geometry of planes of these grid shapes: plane offsets, grid sizes, and where each level's
        context references lie.

        Reference r of level lev of a symbol at (y, x) of plane p is the flat symbol yrow[p, lev, r, y] +
        xcol[p, lev, r, x] (the start of its row and its column); either is -1 where the reference falls
        outside its plane, or the level or reference does not exist. Images of up to 2**14 symbols also get
        that sum per symbol, nb[lev, r, i] (-1 outside; 32 bytes a symbol, ~5% faster coding); larger ones
        a 2-d placeholder, which compiles the kernels for the maps.
        """
        off, gh, gw, ymap, xmap = geometry(key)
        npl = len(key)
        yrow = np.full((npl, MAX_LEVELS, 2, int(gh.max())), -1, np.int64)
        xcol = np.full((npl, MAX_LEVELS, 2, int(gw.max())), -1, np.int64)
        for p in range(npl):
            slot = min(p, len(self.slots) - 1)
            for lev, level in enumerate(self.slots[slot]):
                for r, (src, dy, dx) in enumerate(level.refs):
                    q = p - src
                    if q < 0:
                        continue
                    yy, xx = ymap[p, q, : gh[p]] + dy, xmap[p, q, : gw[p]] + dx
                    yrow[p, lev, r, : gh[p]] = np.where((yy >= 0) & (yy < gh[q]), off[q] + yy * gw[q], -1)
                    xcol[p, lev, r, : gw[p]] = np.where((xx >= 0) & (xx < gw[q]), xx, -1)
        n = int((gh * gw).sum())
        nb = np.full((MAX_LEVELS, 2, n) if n <= _NB_MAX else (1, 1), -1, np.int32)
        if nb.ndim == 3:
            for p in range(npl):
                yr, xc = yrow[p, :, :, : gh[p], None], xcol[p, :, :, None, : gw[p]]
                nb[:, :, off[p] : off[p] + gh[p] * gw[p]] = np.where((yr >= 0) & (xc >= 0), yr + xc, -1).reshape(MAX_LEVELS, 2, -1)
        return off, gh, gw, nb, yrow, xcol

    # -- serialisation --------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The PPMT chunk payload: u32 raw length, then a zlib stream of the raw tables."""
        parts = [_HDR.pack(FORMAT, len(self.slots), 0, self.k)]
        for sl in self.slots:
            parts.append(struct.pack("<B", len(sl)))
            for j in range(MAX_LEVELS):
                refs = list(sl[j].refs) if j < len(sl) else []
                flat = [x for r in refs for x in r] + [0] * (6 - 3 * len(refs))
                parts.append(_LEVEL.pack(len(refs), *flat))
        parts.append(self.static.astype("<u2").tobytes())
        for tabs in self.tables:
            for t in tabs:
                parts += [struct.pack("<I", t.keys.size), t.keys.astype("<u4").tobytes(), t.lens.astype("<u2").tobytes(),
                          t.syms.astype("<u2").tobytes(), t.freqs.astype("<u2").tobytes()]
        return deflate(b"".join(parts))

    @classmethod
    def from_bytes(cls, data: bytes, k: int) -> PPMModel:
        """Parse a PPMT payload for a codebook of K centroids."""
        raw = inflate(data, cls.tag)
        if len(raw) < _HDR.size:
            raise FormatError("corrupt context model: PPMT length mismatch")
        ver, s, _, kk = _HDR.unpack_from(raw)
        if ver != FORMAT:
            raise FormatError(f"context table version {ver} not supported (this reader handles {FORMAT})")
        if kk != k or not 1 <= s <= 4 or not 2 <= k <= 65535:
            raise FormatError("corrupt context model: PPMT header does not match the codebook")
        o = _HDR.size
        need = o + s * (1 + MAX_LEVELS * _LEVEL.size) + 2 * s * k
        if len(raw) < need:
            raise FormatError("corrupt context model: PPMT truncated")
        slots = []
        for _ in range(s):
            n = raw[o]
            o += 1
            if not 1 <= n <= MAX_LEVELS:
                raise FormatError("corrupt context model: 1 to 4 levels per slot")
            levs = []
            for j in range(MAX_LEVELS):
                nr, *v = _LEVEL.unpack_from(raw, o + j * _LEVEL.size)
                if j < n:
                    if nr not in (1, 2):
                        raise FormatError("corrupt context model: a level has one or two references")
                    levs.append(Level(tuple((v[3 * r], v[3 * r + 1], v[3 * r + 2]) for r in range(nr))))
            o += MAX_LEVELS * _LEVEL.size
            slots.append(levs)
        static = np.frombuffer(raw, "<u2", s * k, o).reshape(s, k)
        o += 2 * s * k
        tables = []
        for sl in slots:
            tabs = []
            for _ in sl:
                if o + 4 > len(raw):
                    raise FormatError("corrupt context model: PPMT truncated")
                (n,) = struct.unpack_from("<I", raw, o)
                o += 4
                if o + 6 * n > len(raw):
                    raise FormatError("corrupt context model: PPMT truncated")
                keys = np.frombuffer(raw, "<u4", n, o)  # views of the chunk: no copy per entry
                lens = np.frombuffer(raw, "<u2", n, o + 4 * n)
                o += 6 * n
                e = int(lens.sum(dtype=np.int64))
                if o + 4 * e > len(raw):
                    raise FormatError("corrupt context model: PPMT truncated")
                syms = np.frombuffer(raw, "<u2", e, o)
                freqs = np.frombuffer(raw, "<u2", e, o + 2 * e)
                o += 4 * e
                tabs.append(Table(keys, lens, syms, freqs))
            tables.append(tabs)
        if o != len(raw):
            raise FormatError("corrupt context model: PPMT has trailing bytes")
        return cls(k, slots, static, tables)

    # -- coding ---------------------------------------------------------------------------
    def events(self, sym: np.ndarray, layout: Any) -> tuple[np.ndarray, np.ndarray, int]:
        """Every coded event in decoding order: the escapes of the levels passed, then the symbol's own."""
        sym = np.asarray(sym).ravel().astype(np.int64, copy=False)
        n = sym.size * (MAX_LEVELS + 1)
        starts, freqs = np.empty(n, np.int32), np.empty(n, np.int32)
        ne = kern.encode_events(sym, *layout, *self.encoder_tables(), starts, freqs)
        if ne < 0:
            raise ValueError(f"symbols outside 0..{self.k - 1}")
        return starts, freqs, ne

    def encode_flat(self, sym: np.ndarray, layout: Any) -> bytes:
        """The stream of the concatenated planes `sym` (int32 or int64): events and rANS in one kernel call."""
        words = kern.encode_words(sym, *layout, *self.encoder_tables())
        if words.size == 0:
            raise ValueError(f"symbols outside 0..{self.k - 1}")
        return words.astype("<u2", copy=False).tobytes()

    def decode_flat(self, data: bytes | memoryview, layout: Any) -> np.ndarray:
        """The concatenated planes of `layout` (int32) from a stream (DecodeError if it is corrupt)."""
        words, state = stream_words(data)
        off, gh, gw = layout[0], layout[1], layout[2]
        sym = np.empty(int(off[-1] + gh[-1] * gw[-1]), np.int32)
        used = kern.decode_all(words, state, *layout, *self._args, self.early, self.sfreq, self.scum, self.sdec, self.k, sym)
        check_end(used, words, sym.size)
        return sym


__all__ = ["Level", "PPMModel", "Table"]
