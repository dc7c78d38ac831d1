"""Band coding for streaming: symbols -> independently decodable BAND packets, and back with concealment."""
from __future__ import annotations

import numpy as np

from ..codebook.codebook import Codebook
from ..errors import CodebookError, DecodeError, ImageTooLargeError
from . import packets as pk
from .packets import Geometry

MODE_IDS = {"L": 1, "RGB": 3}


def _code(cb: Codebook, seq: np.ndarray) -> bytes:
    """One band's symbols coded with the codebook's static table (entropy model 1), as bytes (whole u32 words)."""
    return cb.static.encode_flat(seq)


def _plan_seg(sym: np.ndarray, cb: Codebook, room: int) -> int:
    """Segment width so that one segment uses about half a packet."""
    bits = max(cb.static.code_length(list(sym)) / max(sym.size, 1), 1.0)
    return int(np.clip(room * 8 // (2 * bits), 1, sym.shape[2]))


def encode_bands(sym: np.ndarray, cb: Codebook, width: int, height: int, stream: int, image: int,
                 size: int = pk.DEFAULT_SIZE, fec: int = 0) -> list[bytes]:
    """BAND packets (at most `size` bytes each) for symbols (P, gh, gw) of a W x H L or RGB image.

    fec > 0 appends ceil(n / fec) PARITY packets, each able to restore one lost band of its group.
    """
    if size < pk.MIN_SIZE or size > 65535:
        raise ValueError(f"packet size {size} outside {pk.MIN_SIZE}..65535")
    sym = np.ascontiguousarray(sym, np.int32)
    mode = {1: 1, 3: 3}.get(sym.shape[0])
    if sym.ndim != 3 or mode is None:
        raise ValueError(f"symbols must have shape (1 or 3, gh, gw), got {sym.shape}")
    room = (size - pk.BAND_HEADER - pk.CRC) // 4 * 4
    seg = _plan_seg(sym, cb, room)
    total = cb.static.code_length(list(sym)) / 8
    while True:
        geo = Geometry(cb.id[:8], width, height, mode, cb.patch, cb.k, seg)
        geo.check()
        if geo.grid != sym.shape[1:]:
            raise ValueError(f"symbol grid {sym.shape[1:]} does not fit a {width}x{height} image with patch {cb.patch}")
        flat = sym.ravel()
        period = geo.nseg * geo.planes
        n = max(1, int(np.ceil(total / (room * 0.92))))
        while n <= min(geo.units, 65535):
            if n > 1 and (period % n == 0 or np.gcd(n, geo.planes) > 1):  # keep every band on all planes
                n += 1
                continue
            order, starts = geo.band_order(n)
            seq = flat[order]
            coded = [_code(cb, seq[starts[i]:starts[i + 1]]) for i in range(n)]
            worst = max(len(c) for c in coded)
            groups = -(-n // fec) if fec > 0 else 0
            limit = min(room, size - pk.BAND_HEADER - pk.CRC - 2 - 2 * -(-n // groups)) if groups else room
            if worst <= limit:
                out = [pk.band_packet(geo, stream, image, i, n, c) for i, c in enumerate(coded)]
                return out + (pk.parity_packets(geo, stream, image, coded, groups) if groups else [])
            n = max(n + 1, int(np.ceil(n * worst / limit)))
        if seg == 1:
            raise ImageTooLargeError(f"a {width}x{height} image does not fit in 65535 packets of {size} bytes")
        seg = max(1, seg // 2)


def recover(n: int, bands: dict[int, bytes], parity: dict[int, tuple[int, list[int], bytes]]) -> int:
    """Restore lost bands from PARITY data where exactly one member of a group is missing; return how many."""
    done = 0
    for j, (m, lengths, xor) in parity.items():
        members = list(range(j, n, m))
        lost = [i for i in members if i not in bands]
        if len(lost) != 1 or any(len(bands[i]) != n_ for i, n_ in zip(members, lengths) if i in bands):
            continue
        acc = np.frombuffer(xor, np.uint8).copy()
        for i in members:
            if i in bands:
                b = np.frombuffer(bands[i], np.uint8)
                acc[: b.size] ^= b
        bands[lost[0]] = acc[: lengths[members.index(lost[0])]].tobytes()
        done += 1
    return done


def decode_bands(geo: Geometry, n: int, bands: dict[int, bytes], cb: Codebook) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    """Symbols (P,gh,gw), a received-mask (both None if no band decoded), and the count of bands that failed to decode.

    A band that claims more symbols than its bytes can hold (`StaticModel.max_symbols`) fails without being
    decoded, so the work is bounded by the bytes received, not by the size a packet claims; the image-sized
    arrays are allocated only once some band decodes.
    """
    if cb.id[:8] != geo.cb_prefix or cb.k != geo.k or cb.patch != geo.patch:
        raise CodebookError(f"codebook {cb.name or cb.short_id} does not match the stream (prefix {geo.cb_prefix.hex()})")
    shape = (geo.planes, *geo.grid)
    flat = got = None
    bad = 0
    for i, payload in bands.items():
        most = cb.static.max_symbols(len(payload))
        if -(-(geo.units - i) // n) > most or _band_size(geo, n, i) > most:  # segments first: each holds >= 1 symbol
            bad += 1
            continue
        idx = geo.band_indices(n, i)
        try:
            dec = cb.static.decode_flat(payload, idx.size)
        except DecodeError:
            bad += 1
            continue
        if flat is None:
            flat, got = np.zeros(int(np.prod(shape)), np.int32), np.zeros(int(np.prod(shape)), bool)
        flat[idx] = dec
        got[idx] = True
    if flat is None:  # nothing decoded: no image-sized work at all
        return None, None, bad
    return flat.reshape(shape), got.reshape(shape), bad


def _band_size(geo: Geometry, n: int, b: int) -> int:
    """Symbols in band b of n, without listing them."""
    p, (gh, gw), s, ns = geo.planes, geo.grid, geo.seg, geo.nseg
    us = np.arange(b, geo.units, n, dtype=np.int64)
    return int(np.minimum(s, gw - ((us // p) % ns) * s).sum())


def _nearest_sym(vecs: np.ndarray, cb: Codebook) -> np.ndarray:
    return cb.searcher.nearest(np.ascontiguousarray(vecs, np.float32))


def _neighbours(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every place, the nearest received row at or above (-1 if none) and at or below (gh if none)."""
    gh = mask.shape[1]
    rows = np.arange(gh)[None, :, None]
    above = np.maximum.accumulate(np.where(mask, rows, -1), axis=1)
    below = np.flip(np.minimum.accumulate(np.flip(np.where(mask, rows, gh), axis=1), axis=1), axis=1)
    return above, below


def conceal(sym: np.ndarray, mask: np.ndarray, cb: Codebook) -> np.ndarray:
    """Fill symbols where mask is False: vertical interpolation, plus the other planes' detail where they arrived."""
    first = _conceal_vertical(sym, mask, cb)
    return first if sym.shape[0] == 1 or mask.all() else _conceal_planes(first, mask, cb)


def _conceal_planes(filled: np.ndarray, mask: np.ndarray, cb: Codebook) -> np.ndarray:
    """Missing patch = its plane's vertical interpolation + the mean deviation of received planes from theirs."""
    gh = mask.shape[1]
    above, below = _neighbours(mask)
    c, r, x = np.nonzero(~mask)
    a, b = above[c, r, x], below[c, r, x]
    keep = (a >= 0) | (b < gh)
    c, r, x, a, b = c[keep], r[keep], x[keep], a[keep], b[keep]
    a, b = np.where(a >= 0, a, b), np.where(b < gh, b, a)
    wb = np.where(b > a, (r - a) / np.maximum(b - a, 1), 0.5).astype(np.float32)[None, :, None]
    vec = cb.centroids[filled]  # (P, gh, gw, d)
    interp = vec[:, a, x] * (1 - wb) + vec[:, b, x] * wb  # (P, m, d): every plane interpolated at row r
    w = mask[:, r, x].astype(np.float32)
    w[c, np.arange(c.size)] = 0
    ws = w.sum(0)
    detail = ((vec[:, r, x] - interp) * w[..., None]).sum(0) / np.maximum(ws, 1)[:, None]
    est = interp[c, np.arange(c.size)] + detail
    ok = ws > 0
    out = filled.copy()
    if ok.any():
        out[c[ok], r[ok], x[ok]] = _nearest_sym(np.clip(est[ok], 0, 1), cb)
    return out


def _conceal_vertical(sym: np.ndarray, mask: np.ndarray, cb: Codebook) -> np.ndarray:
    """Fill symbols where mask is False from received neighbours above/below, other planes, or the mode."""
    out = sym.copy()
    if mask.all():
        return out
    p, gh, gw = sym.shape
    above, below = _neighbours(mask)
    c, r, x = np.nonzero(~mask)
    a, b = above[c, r, x], below[c, r, x]
    has_a, has_b = a >= 0, b < gh
    cent = cb.centroids
    both = has_a & has_b
    if both.any():
        va = cent[sym[c[both], a[both], x[both]]]
        vb = cent[sym[c[both], b[both], x[both]]]
        out[c[both], r[both], x[both]] = _nearest_sym((va + vb) / 2, cb)
    one_a = has_a & ~has_b
    out[c[one_a], r[one_a], x[one_a]] = sym[c[one_a], a[one_a], x[one_a]]
    one_b = has_b & ~has_a
    out[c[one_b], r[one_b], x[one_b]] = sym[c[one_b], b[one_b], x[one_b]]
    none = ~(has_a | has_b)
    if none.any():
        cn, rn, xn = c[none], r[none], x[none]
        other = mask[:, rn, xn]  # (P, m): which planes have this place
        fill = np.full(cn.size, int(np.argmax(cb.counts)), np.int32)
        some = other.any(axis=0)
        if some.any():
            vecs = cent[sym[:, rn[some], xn[some]]]  # (P, m', d)
            w = other[:, some, None].astype(np.float32)
            fill[some] = _nearest_sym((vecs * w).sum(0) / w.sum(0), cb)
        out[cn, rn, xn] = fill
    return out
