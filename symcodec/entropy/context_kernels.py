"""Compiled kernels of entropy model 2 (formats/sym.md section 5.2): context distributions and rANS.

All arithmetic is on integers, so encoder and decoder build identical tables on any machine.
"""
from __future__ import annotations

import numba
import numpy as np

from ..jit import JIT as _JIT
from .rans import PREC, RANS_L, TOTAL
from .rans import step as rans_step

VMAX = 15 * 256  # combined scores are clamped to +-15 bits (in 1/256 bit)


@numba.njit(inline="always", **_JIT)
def _dist(sym, p, y, x, off, gh, gw, ymap, xmap, cfg_n, cfg_t, cfg_src, cfg_dy, cfg_dx, cfg_w, cfg_m,
          cand, score, dflt, f0, expt, mark, pos, acc, stamp, clist, freq):  # pragma: no cover - compiled
    """Candidates (clist[:n]) and frequencies (freq[:n+1], freq[n] = escape) for symbol (p, y, x)."""
    slot = min(p, cfg_n.shape[0] - 1)
    base = 0
    n = 0
    for e in range(cfg_n[slot]):
        q = p - cfg_src[slot, e]
        if q < 0:
            continue
        yy = ymap[p, q, y] + cfg_dy[slot, e]
        xx = xmap[p, q, x] + cfg_dx[slot, e]
        if yy < 0 or yy >= gh[q] or xx < 0 or xx >= gw[q]:
            continue
        c = sym[off[q] + yy * gw[q] + xx]
        t = cfg_t[slot, e]
        w = cfg_w[slot, e]
        d = dflt[t, c]
        base += w * d
        for m in range(cfg_m[slot, e]):
            s = cand[t, c, m]
            if s < 0:
                break
            if mark[s] != stamp:
                mark[s] = stamp
                pos[s] = n
                acc[s] = 0
                clist[n] = s
                n += 1
            acc[s] += w * (score[t, c, m] - d)
    # weights w_j = f0[s] * E(v), E from the integer exponential table
    usum = 0
    wsum = 0
    for j in range(n):
        s = clist[j]
        v = (base + acc[s]) >> 4
        if v > VMAX:
            v = VMAX
        elif v < -VMAX:
            v = -VMAX
        fs = f0[s]
        usum += fs
        wj = fs * expt[v + VMAX]
        freq[j] = wj
        wsum += wj
    v = base >> 4
    if v > VMAX:
        v = VMAX
    elif v < -VMAX:
        v = -VMAX
    wj = (TOTAL - usum) * expt[v + VMAX]
    freq[n] = wj
    wsum += wj
    sh = 0
    while (wsum >> sh) >= (1 << 32):
        sh += 1
    r = ((TOTAL - (n + 1)) << 32) // (wsum >> sh)
    return n, sh, r


@numba.njit(inline="always", **_JIT)
def _freq(wj, sh, r):  # pragma: no cover - compiled
    """Quantised frequency of one weight."""
    return 1 + (((wj >> sh) * r) >> 32)


@numba.njit(**_JIT)
def encode_events(sym, off, gh, gw, ymap, xmap, cfg_n, cfg_t, cfg_src, cfg_dy, cfg_dx, cfg_w, cfg_m,
                  cand, score, dflt, f0, c0, expt, starts, freqs):  # pragma: no cover - compiled
    """Forward pass: the (start, freq) of every coded event, in decoding order; returns the count."""
    k = f0.shape[0]
    mark = np.full(k, -1, np.int64)
    pos = np.zeros(k, np.int64)
    acc = np.zeros(k, np.int64)
    clist = np.zeros(cand.shape[2] * cfg_t.shape[1] + 1, np.int64)
    freq = np.zeros(cand.shape[2] * cfg_t.shape[1] + 2, np.int64)
    ne = 0
    stamp = 0
    for p in range(gh.shape[0]):
        for y in range(gh[p]):
            for x in range(gw[p]):
                s = sym[off[p] + y * gw[p] + x]
                n, sh, r = _dist(sym, p, y, x, off, gh, gw, ymap, xmap, cfg_n, cfg_t, cfg_src, cfg_dy, cfg_dx, cfg_w, cfg_m,
                                 cand, score, dflt, f0, expt, mark, pos, acc, stamp, clist, freq)
                j = pos[s] if mark[s] == stamp else n
                st = 0
                for i in range(j):
                    st += _freq(freq[i], sh, r)
                if j < n:
                    fj = _freq(freq[j], sh, r)
                else:
                    fj = TOTAL - st
                starts[ne] = st
                freqs[ne] = fj
                ne += 1
                if j == n:
                    starts[ne] = c0[s]
                    freqs[ne] = f0[s]
                    ne += 1
                stamp += 1
    return ne


@numba.njit(**_JIT)
def decode_all(words, state, off, gh, gw, ymap, xmap, cfg_n, cfg_t, cfg_src, cfg_dy, cfg_dx, cfg_w, cfg_m,
               cand, score, dflt, f0, c0, expt, sym):  # pragma: no cover - compiled
    """Decode every symbol in order (words[0:2] hold the state); returns words used, or -1 on a bad stream."""
    k = f0.shape[0]
    mark = np.full(k, -1, np.int64)
    pos = np.zeros(k, np.int64)
    acc = np.zeros(k, np.int64)
    clist = np.zeros(cand.shape[2] * cfg_t.shape[1] + 1, np.int64)
    freq = np.zeros(cand.shape[2] * cfg_t.shape[1] + 2, np.int64)
    x = np.int64(state)
    wi = 2
    stamp = 0
    mask = TOTAL - 1
    for p in range(gh.shape[0]):
        for y in range(gh[p]):
            for xg in range(gw[p]):
                n, sh, r = _dist(sym, p, y, xg, off, gh, gw, ymap, xmap, cfg_n, cfg_t, cfg_src, cfg_dy, cfg_dx, cfg_w, cfg_m,
                                 cand, score, dflt, f0, expt, mark, pos, acc, stamp, clist, freq)
                slot = x & mask
                cum = 0
                j = 0
                fj = 0
                while j < n:
                    fj = _freq(freq[j], sh, r)
                    if cum + fj > slot:
                        break
                    cum += fj
                    j += 1
                if j == n:
                    fj = TOTAL - cum
                x = fj * (x >> PREC) + slot - cum
                x, wi = rans_step(x, words, wi)
                if wi < 0:
                    return -1
                if j < n:
                    s = clist[j]
                else:  # escape: the symbol itself under the static table
                    slot = x & mask
                    lo = 0
                    hi = k - 1
                    while lo < hi:
                        mid = (lo + hi + 1) >> 1
                        if c0[mid] <= slot:
                            lo = mid
                        else:
                            hi = mid - 1
                    s = lo
                    x = f0[s] * (x >> PREC) + slot - c0[s]
                    x, wi = rans_step(x, words, wi)
                    if wi < 0:
                        return -1
                sym[off[p] + y * gw[p] + xg] = s
                stamp += 1
    if x != RANS_L:
        return -1
    return wi
