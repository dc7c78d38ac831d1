"""Compiled kernels of entropy model 3 (formats/sym.md section 5.3): escape-chain context tables, rANS, one lookup per level.

Per symbol the coder walks its slot's levels: a level's context (one or two earlier symbols) picks a
row of (symbol, frequency) entries; a symbol in the row is coded there, any other symbol codes the
row's escape and goes on to the next level, and the last resort is the slot's static table. All
integer arithmetic, so encoder and decoder agree bit-exactly on every machine.
"""
from __future__ import annotations

import numba
import numpy as np
from numba.extending import overload

from ..jit import JIT as _JIT
from ..jit import prefetch
from .rans import PREC, RANS_L, TOTAL
from .rans import step as rans_step
from .rans import encode_kernel as rans_encode

MAX_LEVELS = 4
AHEAD = 16  # software pipelining: prefetch for the item this many places ahead (16 beat 8 and 32 on CIFAR)
_HMUL = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(**_JIT)
def build_hash(tabs, keys, rows, bits):  # pragma: no cover - compiled
    """Open-addressing table of (table << 40 | key, row info) pairs, key -1 = empty slot."""
    size = 1 << bits
    ht = np.full((size, 2), -1, np.int64)
    mask = size - 1
    for i in range(keys.shape[0]):
        k = (tabs[i] << 40) | keys[i]
        h = np.int64((np.uint64(k) * _HMUL) >> np.uint64(64 - bits))
        while ht[h, 0] >= 0:
            h = (h + 1) & mask
        ht[h, 0] = k
        ht[h, 1] = rows[i]
    return ht


@numba.njit(inline="always", **_JIT)
def _row(t, key, dense_off, dense, ht, bits, single):  # pragma: no cover - compiled
    """Row info (entry start << 33 | length << 16 | total) of context `key` in table t, or -1."""
    if single:
        return np.int64(dense[dense_off[t] + key])
    k = (t << 40) | key
    mask = (1 << bits) - 1
    h = np.int64((np.uint64(k) * _HMUL) >> np.uint64(64 - bits))
    while True:
        c = ht[h, 0]
        if c == k:
            return ht[h, 1]
        if c < 0:
            return -1
        h = (h + 1) & mask


def _key(sym, nb, yrow, xcol, p, lev, i, y, x, two, k):  # pragma: no cover - compiled (see _key_impl)
    """Context value of level `lev` for symbol i at (p, y, x): one symbol, or a * K + b for two; -1 if unavailable."""


@overload(_key, jit_options=_JIT)
def _key_impl(sym, nb, yrow, xcol, p, lev, i, y, x, two, k):  # pragma: no cover - compiled
    """Reference r is the symbol nb[lev, r, i] where the layout has a table per symbol (a 3-d nb: small
    images), else yrow[p, lev, r, y] + xcol[p, lev, r, x] (its row start and its column); -1 marks a
    reference outside. Chosen by nb's type, so each kernel is compiled for one of the two."""
    if nb.ndim == 3:
        def per_symbol(sym, nb, yrow, xcol, p, lev, i, y, x, two, k):
            a0 = np.int64(nb[lev, 0, i])
            a1 = np.int64(nb[lev, 1, i]) if two else np.int64(0)
            if a0 < 0 or a1 < 0:
                return np.int64(-1)
            return np.int64(sym[a0]) * k + np.int64(sym[a1]) if two else np.int64(sym[a0])
        return per_symbol

    def per_row(sym, nb, yrow, xcol, p, lev, i, y, x, two, k):
        a0, b0 = yrow[p, lev, 0, y], xcol[p, lev, 0, x]
        a1, b1 = (yrow[p, lev, 1, y], xcol[p, lev, 1, x]) if two else (np.int64(0), np.int64(0))
        if a0 < 0 or b0 < 0 or a1 < 0 or b1 < 0:
            return np.int64(-1)
        return np.int64(sym[a0 + b0]) * k + np.int64(sym[a1 + b1]) if two else np.int64(sym[a0 + b0])
    return per_row


@numba.njit(inline="always", **_JIT)
def _pop(v):  # pragma: no cover - compiled
    """Set bits of a uint64."""
    v = v - ((v >> np.uint64(1)) & np.uint64(0x5555555555555555))
    v = (v & np.uint64(0x3333333333333333)) + ((v >> np.uint64(2)) & np.uint64(0x3333333333333333))
    v = (v + (v >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((v * np.uint64(0x0101010101010101)) >> np.uint64(56))


@numba.njit(inline="always", **_JIT)
def _find(xent, r, s):  # pragma: no cover - compiled
    """Entry index of symbol s in row r (xent: the row's entries sorted by symbol), or -1."""
    lo = r >> 33
    ln = (r >> 16) & 0x1FFFF
    while ln > 1:  # the last entry <= s, by a branch-free search (a select, not a mispredicted branch)
        half = ln >> 1
        lo = lo + half if xent[lo + half, 0] <= s else lo
        ln -= half
    return lo if xent[lo, 0] == s else -1


@numba.njit(**_JIT)
def encode_events(sym, off, gh, gw, nb, yrow, xcol, nlev, nref, dense_off, dense, ht, bits,
                  ent, xent, sfreq, scum, k, bm_off, bm, rk, nw, starts, freqs):  # pragma: no cover
    """Forward pass: (start, freq) of every coded event in decoding order; returns the event count.

    The encoder knows every symbol up front, so it finds each symbol's entry level by level for all the
    symbols of a plane still pending (independent loads, each prefetched AHEAD symbols early), then walks each
    symbol's escape chain. Single-reference levels with a bitmap (bm_off >= 0) answer "is s in the row of
    context c, at which entry" from one bitmap word and its rank; the others search the row. Work arrays
    are per plane; starts and freqs (int32, room for 5 events a symbol) are the only ones per image.
    """
    n = sym.shape[0]
    for i in range(n):
        if sym[i] < 0 or sym[i] >= k:
            return -1
    ns = nlev.shape[0]
    mx = np.max(gh * gw)  # per-plane work arrays, reused plane after plane (indices within the plane)
    rows = np.empty((MAX_LEVELS, mx), np.int64)  # read only up to each symbol's hit level
    hit = np.empty(mx, np.int64)  # entry (xent) that codes the symbol, -1 for the static table
    keys = np.empty(mx, np.int64)
    pend = np.empty(mx, np.int64)
    py, px = np.empty(mx, np.int32), np.empty(mx, np.int32)
    ne = 0
    hbase, xbase = ht.ctypes.data, xent.ctypes.data
    for p in range(gh.shape[0]):
        slot = min(p, ns - 1)
        o = off[p]
        m = gh[p] * gw[p]
        for y in range(gh[p]):
            for x in range(gw[p]):
                j = y * gw[p] + x
                pend[j], py[j], px[j], hit[j] = j, y, x, -1
        for lev in range(nlev[slot]):
            t = slot * 4 + lev
            two = nref[slot, lev] == 2
            for j in range(m):
                i = pend[j]
                keys[j] = _key(sym, nb, yrow, xcol, p, lev, o + i, py[i], px[i], two, k)
            b0 = bm_off[t]
            m2 = 0
            if b0 >= 0:  # branch-free, so the bitmap and entry loads of different symbols overlap
                d0 = dense_off[t]
                bmb, rkb = bm.ctypes.data, rk.ctypes.data
                for j in range(-AHEAD, m):  # symbol j + AHEAD's bitmap word and rank are prefetched at j
                    if j + AHEAD < m:
                        wi = b0 + max(keys[j + AHEAD], 0) * nw + (sym[o + pend[j + AHEAD]] >> 6)
                        prefetch(bmb + 8 * wi)
                        prefetch(rkb + 2 * wi)
                    if j < 0:
                        continue
                    i = pend[j]
                    kk = keys[j]
                    kc = max(kk, 0)
                    r = dense[d0 + kc]
                    r = r if kk >= 0 else -1
                    s = sym[o + i]
                    wi = b0 + kc * nw + (s >> 6)
                    wv = bm[wi]
                    bit = np.uint64(s & 63)
                    e = (r >> 33) + np.int64(rk[wi]) + _pop(wv & ((np.uint64(1) << bit) - np.uint64(1)))
                    e = e if ((wv >> bit) & np.uint64(1)) != 0 and r >= 0 else -1
                    prefetch(xbase + 6 * max(e, 0))  # for the final walk
                    rows[lev, i] = r
                    hit[i] = e
                    pend[m2] = i
                    m2 += e < 0
            else:
                single = nref[slot, lev] == 1
                for j in range(-AHEAD, m):  # symbol j + AHEAD's first probe slot is prefetched at j
                    if not single and j + AHEAD < m:
                        prefetch(hbase + 16 * np.int64((np.uint64((t << 40) | keys[j + AHEAD]) * _HMUL) >> np.uint64(64 - bits)))
                    if j < 0:
                        continue
                    kk = keys[j]
                    if single:
                        r = _row(t, kk, dense_off, dense, ht, bits, True) if kk >= 0 else -1
                    else:  # the first two probes by selects (at load <= 1/2 they almost always decide): no branch waits on a miss
                        key = (t << 40) | kk
                        h = np.int64((np.uint64(key) * _HMUL) >> np.uint64(64 - bits))
                        h1 = (h + 1) & ((1 << bits) - 1)
                        c0, c1, v0, v1 = ht[h, 0], ht[h1, 0], ht[h, 1], ht[h1, 1]
                        r = v0 if c0 == key else (v1 if c1 == key else -1)
                        if c0 != key and c0 >= 0 and c1 != key and c1 >= 0:
                            r = _row(t, kk, dense_off, dense, ht, bits, False)
                        r = r if kk >= 0 else -1
                    rows[lev, pend[j]] = r
                    keys[j] = r
                    lo = (r >> 33) if r >= 0 else 0
                    prefetch(xbase + 6 * lo)  # the row's entries (first and last line), for the search
                    prefetch(xbase + 6 * (lo + (((r >> 16) & 0x1FFFF) if r >= 0 else 1) - 1))
                for j in range(m):
                    i = pend[j]
                    r = keys[j]
                    e = _find(xent, r, sym[o + i]) if r >= 0 else -1
                    hit[i] = e
                    pend[m2] = i
                    m2 += e < 0
            m = m2
        for i in range(gh[p] * gw[p]):  # the plane's events, in coding order
            e = hit[i]
            for lev in range(nlev[slot]):
                r = rows[lev, i]
                if r < 0:
                    continue
                if e >= (r >> 33) and e < (r >> 33) + ((r >> 16) & 0x1FFFF):  # the hit is in this row
                    break
                tot = r & 0xFFFF
                starts[ne] = tot
                freqs[ne] = TOTAL - tot
                ne += 1
            if e >= 0:
                starts[ne] = xent[e, 1]
                freqs[ne] = xent[e, 2]
            else:
                starts[ne] = scum[slot, sym[o + i]]
                freqs[ne] = sfreq[slot, sym[o + i]]
            ne += 1
    return ne


@numba.njit(**_JIT)
def encode_words(sym, off, gh, gw, nb, yrow, xcol, nlev, nref, dense_off, dense, ht, bits,
                 ent, xent, sfreq, scum, k, bm_off, bm, rk, nw):  # pragma: no cover
    """`encode_events` then rANS in one call: the stream's u16 words, padded to an even count (empty if a symbol is bad)."""
    n = sym.shape[0] * (MAX_LEVELS + 1)
    starts, freqs = np.empty(n, np.int32), np.empty(n, np.int32)
    ne = encode_events(sym, off, gh, gw, nb, yrow, xcol, nlev, nref, dense_off, dense, ht, bits,
                       ent, xent, sfreq, scum, k, bm_off, bm, rk, nw, starts, freqs)
    if ne < 0:
        return np.empty(0, np.uint16)
    out = np.empty(ne + 3, np.uint16)
    m = rans_encode(starts, freqs, ne, out)
    res = np.zeros(m + (m & 1), np.uint16)
    res[:m] = out[out.shape[0] - m :]
    return res


@numba.njit(**_JIT)
def decode_all(words, state, off, gh, gw, nb, yrow, xcol, nlev, nref, dense_off, dense, ht, bits,
               ent, early, sfreq, scum, sdec, k, sym):  # pragma: no cover
    """Decode every symbol in order (words[0:2] hold the state); returns words used, or -1 on a bad stream."""
    x = np.int64(state)
    wi = 2
    mask = TOTAL - 1
    ns = nlev.shape[0]
    pre = np.empty((MAX_LEVELS, np.max(gw)), np.int64)
    hbase, ebase = ht.ctypes.data, ent.ctypes.data
    for p in range(gh.shape[0]):
        slot = min(p, ns - 1)
        # early levels (context in earlier planes or rows only, as for every level before them): their rows
        # for a whole row of symbols are looked up before that row is decoded, with independent loads whose
        # cache misses overlap (after a late level most lookups would be wasted)
        for y in range(gh[p]):
            for lev in range(nlev[slot]):
                if not early[slot, lev]:
                    continue
                t = slot * 4 + lev
                single = nref[slot, lev] == 1
                for xg in range(gw[p]):
                    key = _key(sym, nb, yrow, xcol, p, lev, off[p] + y * gw[p] + xg, y, xg, not single, k)
                    pre[lev, xg] = key
                    if key >= 0 and not single:
                        prefetch(hbase + 16 * np.int64((np.uint64((t << 40) | key) * _HMUL) >> np.uint64(64 - bits)))
                for xg in range(gw[p]):
                    if pre[lev, xg] >= 0:
                        pre[lev, xg] = _row(t, pre[lev, xg], dense_off, dense, ht, bits, single)
                        if pre[lev, xg] >= 0:
                            prefetch(ebase + 6 * (pre[lev, xg] >> 33))
            for xg in range(gw[p]):
                s = -1
                for lev in range(nlev[slot]):
                    if early[slot, lev]:
                        r = pre[lev, xg]
                    else:
                        key = _key(sym, nb, yrow, xcol, p, lev, off[p] + y * gw[p] + xg, y, xg, nref[slot, lev] == 2, k)
                        if key < 0:
                            continue
                        r = _row(slot * 4 + lev, key, dense_off, dense, ht, bits, nref[slot, lev] == 1)
                    if r < 0:
                        continue
                    sl = x & mask
                    tot = r & 0xFFFF
                    if sl < tot:
                        e = r >> 33
                        while np.int64(ent[e, 0]) + np.int64(ent[e, 1]) <= sl:  # ent = (start, freq, symbol)
                            e += 1
                        s = np.int64(ent[e, 2])
                        x = np.int64(ent[e, 1]) * (x >> PREC) + sl - np.int64(ent[e, 0])
                    else:
                        x = (TOTAL - tot) * (x >> PREC) + sl - tot
                    x, wi = rans_step(x, words, wi)
                    if wi < 0:
                        return -1
                    if s >= 0:
                        break
                if s < 0:
                    sl = x & mask
                    s = np.int64(sdec[slot, sl])
                    x = np.int64(sfreq[slot, s]) * (x >> PREC) + sl - np.int64(scum[slot, s])
                    x, wi = rans_step(x, words, wi)
                    if wi < 0:
                        return -1
                sym[off[p] + y * gw[p] + xg] = s
    if x != RANS_L:
        return -1
    return wi


@numba.njit(**_JIT)
def quantise_rows(rstart, rlen, cnt, tot, d, efreq):  # pragma: no cover - compiled
    """Training helper: entry frequencies round(2**16 (n - d) / N) >= 1, trimmed so each row leaves escape >= 1."""
    for r in range(rstart.shape[0]):
        a = rstart[r]
        b = a + rlen[r]
        sm = 0
        for e in range(a, b):
            f = np.int64(np.floor((cnt[e] - d) * TOTAL / tot[r] + 0.5))
            efreq[e] = max(f, 1)
            sm += efreq[e]
        while sm > TOTAL - 1:  # entries are in descending order: trim the largest first
            for e in range(a, b):
                if sm <= TOTAL - 1:
                    break
                if efreq[e] > 1:
                    efreq[e] -= 1
                    sm -= 1
