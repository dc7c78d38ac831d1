"""Compiled kernels of entropy model 3 (formats/sym-v3.md): escape-chain context tables, rANS, one lookup per level.

Per symbol the coder walks its slot's levels: a level's context (one or two earlier symbols) picks a
row of (symbol, frequency) entries; a symbol in the row is coded there, any other symbol codes the
row's escape and goes on to the next level, and the last resort is the slot's static table. All
integer arithmetic, so encoder and decoder agree bit-exactly on every machine.
"""
from __future__ import annotations

import numba
import numpy as np

from .kernels import _TOUCH_NEVER
from .rans import _encode as rans_encode

_JIT = {"cache": True, "nogil": True, "boundscheck": False}

PREC = 16
TOTAL = 1 << PREC
RANS_L = 1 << 16
MAX_LEVELS = 4
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


@numba.njit(inline="always", **_JIT)
def _ctx(sym, p, y, x, slot, lev, off, gh, gw, ymap, xmap, nref, rsrc, rdy, rdx, k):  # pragma: no cover
    """Context value of level `lev` for symbol (p, y, x): one symbol, or a * K + b for two; -1 if unavailable."""
    key = 0
    for r in range(nref[slot, lev]):
        q = p - rsrc[slot, lev, r]
        if q < 0:
            return -1
        yy = ymap[p, q, y] + rdy[slot, lev, r]
        xx = xmap[p, q, x] + rdx[slot, lev, r]
        if yy < 0 or yy >= gh[q] or xx < 0 or xx >= gw[q]:
            return -1
        key = key * k + np.int64(sym[off[q] + yy * gw[q] + xx])
    return key


@numba.njit(**_JIT)
def encode_events(sym, off, gh, gw, ymap, xmap, nlev, nref, rsrc, rdy, rdx, dense_off, dense, ht, bits,
                  ent, xent, sfreq, scum, k, starts, freqs):  # pragma: no cover
    """Forward pass: (start, freq) of every coded event in decoding order; returns the event count.

    The encoder knows every symbol up front, so it looks up all contexts' rows level by level first,
    touching every first hash probe slot in a loop of independent loads so their cache misses overlap,
    then walks each symbol's escape chain.
    """
    n = sym.shape[0]
    for i in range(n):
        if sym[i] < 0 or sym[i] >= k:
            return -1
    ns = nlev.shape[0]
    rows = np.full((MAX_LEVELS, n), -1, np.int64)
    keys = np.empty(n, np.int64)
    touch = np.int64(0)
    for p in range(gh.shape[0]):
        slot = min(p, ns - 1)
        o = off[p]
        for lev in range(nlev[slot]):
            t = slot * 4 + lev
            single = nref[slot, lev] == 1
            for y in range(gh[p]):
                for x in range(gw[p]):
                    keys[o + y * gw[p] + x] = _ctx(sym, p, y, x, slot, lev, off, gh, gw, ymap, xmap, nref, rsrc, rdy, rdx, k)
            if not single:  # touch every first probe slot with independent loads, so the misses overlap
                for i in range(o, o + gh[p] * gw[p]):
                    kk = (t << 40) | keys[i]
                    touch += ht[np.int64((np.uint64(kk) * _HMUL) >> np.uint64(64 - bits)), 0]
            for i in range(o, o + gh[p] * gw[p]):
                if keys[i] >= 0:
                    rows[lev, i] = _row(t, keys[i], dense_off, dense, ht, bits, single)
    if touch == _TOUCH_NEVER:  # never: keeps the touching loads from being optimised away
        return -1
    ne = 0
    for p in range(gh.shape[0]):
        slot = min(p, ns - 1)
        for i in range(off[p], off[p] + gh[p] * gw[p]):
            s = sym[i]
            done = False
            for lev in range(nlev[slot]):
                r = rows[lev, i]
                if r < 0:
                    continue
                lo = r >> 33
                ln = (r >> 16) & 0x1FFFF
                while ln > 1:  # the row's entries again, sorted by symbol (xent = symbol, start, freq): the last
                    half = ln >> 1  # entry <= s, by a branch-free search (a select, not a mispredicted branch)
                    lo = lo + half if xent[lo + half, 0] <= s else lo
                    ln -= half
                if xent[lo, 0] == s:
                    starts[ne] = xent[lo, 1]
                    freqs[ne] = xent[lo, 2]
                    ne += 1
                    done = True
                    break
                tot = r & 0xFFFF
                starts[ne] = tot
                freqs[ne] = TOTAL - tot
                ne += 1
            if not done:
                starts[ne] = scum[slot, s]
                freqs[ne] = sfreq[slot, s]
                ne += 1
    return ne


@numba.njit(**_JIT)
def encode_words(sym, off, gh, gw, ymap, xmap, nlev, nref, rsrc, rdy, rdx, dense_off, dense, ht, bits,
                 ent, xent, sfreq, scum, k):  # pragma: no cover
    """`encode_events` then rANS in one call: the stream's u16 words, padded to an even count (empty if a symbol is bad)."""
    n = sym.shape[0] * (MAX_LEVELS + 1)
    starts, freqs = np.empty(n, np.int64), np.empty(n, np.int64)
    ne = encode_events(sym, off, gh, gw, ymap, xmap, nlev, nref, rsrc, rdy, rdx, dense_off, dense, ht, bits,
                       ent, xent, sfreq, scum, k, starts, freqs)
    if ne < 0:
        return np.empty(0, np.uint16)
    out = np.empty(ne + 3, np.uint16)
    m = rans_encode(starts, freqs, ne, out)
    res = np.zeros(m + (m & 1), np.uint16)
    res[:m] = out[out.shape[0] - m :]
    return res


@numba.njit(**_JIT)
def decode_all(words, state, off, gh, gw, ymap, xmap, nlev, nref, rsrc, rdy, rdx, dense_off, dense, ht, bits,
               ent, sfreq, scum, sdec, k, sym):  # pragma: no cover
    """Decode every symbol in order (words[0:2] hold the state); returns words used, or -1 on a bad stream."""
    x = np.int64(state)
    wi = 2
    nw = words.shape[0]
    mask = TOTAL - 1
    ns = nlev.shape[0]
    pre = np.empty((MAX_LEVELS, np.max(gw)), np.int64)
    early = np.zeros(MAX_LEVELS, np.bool_)
    touch = np.int64(0)
    for p in range(gh.shape[0]):
        slot = min(p, ns - 1)
        for lev in range(nlev[slot]):
            # a level whose context lies in earlier planes or rows only: its rows for a whole row of symbols
            # are looked up before that row is decoded, with independent loads whose cache misses overlap;
            # only while every level before it is such a level too (after a late level most lookups are wasted)
            early[lev] = nref[slot, lev] > 0 and (lev == 0 or early[lev - 1])
            for r in range(nref[slot, lev]):
                early[lev] = early[lev] and (rsrc[slot, lev, r] > 0 or rdy[slot, lev, r] < 0)
        for y in range(gh[p]):
            for lev in range(nlev[slot]):
                if not early[lev]:
                    continue
                t = slot * 4 + lev
                single = nref[slot, lev] == 1
                for xg in range(gw[p]):
                    key = _ctx(sym, p, y, xg, slot, lev, off, gh, gw, ymap, xmap, nref, rsrc, rdy, rdx, k)
                    pre[lev, xg] = key
                    if key >= 0 and not single:
                        touch += ht[np.int64((np.uint64((t << 40) | key) * _HMUL) >> np.uint64(64 - bits)), 0]
                for xg in range(gw[p]):
                    if pre[lev, xg] >= 0:
                        pre[lev, xg] = _row(t, pre[lev, xg], dense_off, dense, ht, bits, single)
                        if pre[lev, xg] >= 0:
                            touch += ent[pre[lev, xg] >> 33, 0]
            for xg in range(gw[p]):
                s = -1
                for lev in range(nlev[slot]):
                    if early[lev]:
                        r = pre[lev, xg]
                    else:
                        key = _ctx(sym, p, y, xg, slot, lev, off, gh, gw, ymap, xmap, nref, rsrc, rdy, rdx, k)
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
                    if x < RANS_L:
                        if wi >= nw:
                            return -1
                        x = (x << 16) | np.int64(words[wi])
                        wi += 1
                    if s >= 0:
                        break
                if s < 0:
                    sl = x & mask
                    s = np.int64(sdec[slot, sl])
                    x = np.int64(sfreq[slot, s]) * (x >> PREC) + sl - np.int64(scum[slot, s])
                    if x < RANS_L:
                        if wi >= nw:
                            return -1
                        x = (x << 16) | np.int64(words[wi])
                        wi += 1
                sym[off[p] + y * gw[p] + xg] = s
    if x != RANS_L or touch == _TOUCH_NEVER:  # (never the latter: keeps the touching loads)
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
