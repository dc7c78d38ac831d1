"""Per-shape plans for the common case of `encode` and `decode`: one image, no metadata, no alpha.

Small images (a CIFAR tile codes in ~0.1 ms) spend as much time in Python around the kernels as in
them: building the container, checking the header, splitting and restacking planes. A plan does that
work once per (codebook, image shape): it holds the framed HEAD, the plane geometry and the checks
already passed, so each image costs the kernels plus a few lines. The bytes are the same as those of
`codec.assemble` and the general reader (tests/test_plans.py); any file outside the common layout
(HEAD, SDAT, SEND with good CRCs) or any plan that fails to build goes to the general path, which
raises the errors.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import replace
from typing import Any

import numpy as np

from . import chunks, codec, colour, container, kernels, ppmkernels, registry  # codec: used at call time (it imports plans)
from .codebook import Codebook
from .errors import SymcodecError

_MAX_PLANS = 256
_U32 = struct.Struct("<I")
_SDAT_CRC = zlib.crc32(b"SDAT")
_SEND = chunks.pack_chunk(chunks.END, b"")
_PRE = len(container.SIGNATURE) + 4  # signature, major, minor, reserved
_HEAD_AT = _PRE + 8
_SDAT_AT = _HEAD_AT + container._HEAD.size + 4


class _Plan:
    """What one (codebook, mode, width, height) needs: header bytes, plane grids and model geometry."""

    def __init__(self, cb: Codebook, hdr: container.Header, model: Any) -> None:
        self.cb, self.hdr, self.model = cb, hdr, model
        self.ppm = model.model_id == 3  # entropy model 3 codes the planes as one flat array (PPMModel.*_flat)
        if self.ppm:
            self.geo = model.layout(hdr.plane_grids)
        self.prefix = chunks.pack_preamble(container.SIGNATURE, hdr.major, container.MINOR) + chunks.pack_chunk(b"HEAD", hdr.pack())
        small = hdr.width * hdr.height * cb.dim <= (1 << 24)
        self.small_ycc = cb.colour == 1 and small and self.ppm
        self.small_planes = cb.colour == 0 and small and self.ppm
        self.fused = self.small_planes and cb.patch == 2  # search and entropy coding in one kernel call

    # -- encoding ---------------------------------------------------------------------------------------
    def symbols(self, a: np.ndarray, threads: int = 1) -> Any:
        """Symbols of an (H, W, planes) uint8 image: flat int32 for model 3, else as `codec.symbols`."""
        cb = self.cb
        if self.small_ycc:  # colour conversion and patches in one kernel, one search, no per-plane arrays
            return cb.searcher.nearest(colour._ycc_patches(a, cb.patch), threads=threads)
        if not self.ppm:
            return codec.symbols(a, cb, threads)
        if self.small_planes:  # patches straight into one (planes * gh * gw, dim) array, one search
            p = cb.patch
            gh, gw = self.hdr.grid
            pt = np.empty((1, self.hdr.planes, gh, gw, p * p), np.float32)
            kernels.extract_u8(a[None], p, pt)
            return cb.searcher.nearest(pt.reshape(-1, cb.dim), threads=threads)
        if cb.colour == 1:
            return np.concatenate([s.ravel() for s in codec.quantize_ycc(a, cb, threads=threads)])
        return codec.quantize(a, cb, threads=threads).ravel()

    def encode(self, a: np.ndarray, threads: int = 1) -> bytes:
        """The `.sym` bytes of an image matching this plan."""
        if self.fused and threads <= 1:
            s = self.cb.searcher
            words = ppmkernels.encode_image_u8(a[None], s.centroids, s.lut, s.bits, s.nbr, s.nbrd, s.table, s.cand,
                                               *self.geo, *self.model._encoder_tables())
            if words.size:  # else a search cell is not built yet: the long way builds it
                return b"".join((self.prefix, chunks.pack_chunk(b"SDAT", words.astype("<u2", copy=False).tobytes()), _SEND))
        syms = self.symbols(a, threads)
        data = self.model.encode_flat(syms, self.geo) if self.ppm else codec.payload(self.cb, syms)
        return b"".join((self.prefix, chunks.pack_chunk(b"SDAT", data), _SEND))

    # -- decoding ---------------------------------------------------------------------------------------
    def decode(self, payload: bytes) -> np.ndarray:
        """Pixels from a verified SDAT payload: (H, W) for L, (H, W, 3) for RGB."""
        hdr = self.hdr
        sym = self.model.decode_flat(payload, self.geo) if self.ppm else codec.decode_symbols(container.SymFile(hdr, payload), self.cb)
        out = codec.pixels(hdr, self.cb, sym)
        return out[:, :, 0] if hdr.mode == "L" else out


_ENC: dict[tuple[int, int, int, str], _Plan] = {}
_DEC: dict[tuple[int, bytes, int], _Plan] = {}


def _remember(cache: dict, key: Any, plan: _Plan) -> _Plan:
    if len(cache) >= _MAX_PLANS:
        cache.clear()
    cache[key] = plan
    return plan


def encoder(cb: Codebook, width: int, height: int, mode: str) -> _Plan:
    """The (cached) plan that encodes images of this size and mode (L or RGB) with cb."""
    key = (id(cb), width, height, mode)
    plan = _ENC.get(key)
    if plan is None or plan.cb is not cb:
        model = cb.context_model if cb.context_model is not None else cb.model
        hdr = container.Header(width, height, mode, cb.patch, cb.colour, model.model_id, cb.k, cb.id, 0)
        hdr = replace(hdr, symbols=sum(h * w for h, w in hdr.plane_grids))
        plan = _remember(_ENC, key, _Plan(cb, hdr, model))
    return plan


def decode(data: bytes, codebook: Codebook | str | None = None) -> np.ndarray | None:
    """Pixels of a `.sym` file laid out as HEAD, SDAT, SEND (no metadata, codebook or alpha), else None."""
    b = data
    if len(b) < _SDAT_AT + 8 or b[: len(container.SIGNATURE)] != container.SIGNATURE:
        return None
    major = b[len(container.SIGNATURE)]
    if major not in (container.MAJOR, container.MAJOR_V2, container.MAJOR_V3):
        return None
    hl, ht = _U32.unpack_from(b, _PRE)[0], b[_PRE + 4 : _HEAD_AT]
    if ht != b"HEAD" or hl != container._HEAD.size:
        return None
    head = b[_HEAD_AT : _HEAD_AT + hl]
    if zlib.crc32(head, zlib.crc32(b"HEAD")) != _U32.unpack_from(b, _HEAD_AT + hl)[0]:
        return None
    (sl,) = _U32.unpack_from(b, _SDAT_AT)
    o = _SDAT_AT + 8
    if b[_SDAT_AT + 4 : o] != b"SDAT" or len(b) < o + sl + 4 + len(_SEND) or sl % 4:
        return None
    payload = b[o : o + sl]
    if zlib.crc32(payload, _SDAT_CRC) != _U32.unpack_from(b, o + sl)[0] or b[o + sl + 4 : o + sl + 4 + len(_SEND)] != _SEND:
        return None
    try:
        cb = _codebook(head, codebook)
        key = (id(cb), head, major)
        plan = _DEC.get(key)
        if plan is None or plan.cb is not cb:
            plan = _remember(_DEC, key, _decoder(cb, head, major))
    except SymcodecError:
        return None  # the general reader raises the error, in its own order of checks
    return plan.decode(payload)


def _codebook(head: bytes, codebook: Codebook | str | None) -> Codebook:
    cid = head[16:48]
    if isinstance(codebook, Codebook):
        cb = codebook
    elif codebook is None:
        cb = registry.by_id(cid)
    else:
        cb = registry.get(codebook)
    if cb.id != cid:
        raise SymcodecError("codebook does not match")
    return cb


def _decoder(cb: Codebook, head: bytes, major: int) -> _Plan:
    hdr = container.Header.unpack(head, None, major)
    if hdr.mode not in ("L", "RGB") or cb.k != hdr.k or cb.patch != hdr.patch or cb.colour != hdr.colour:
        raise SymcodecError("not a plain image for this codebook")
    ctx = cb.context_model
    if ctx is not None and ctx.model_id == hdr.model_id:
        return _Plan(cb, hdr, ctx)
    if hdr.model_id == cb.model.model_id:  # also a model-1 file read with a context-model codebook
        return _Plan(cb, hdr, cb.model)
    raise SymcodecError("entropy model not supported")


__all__ = ["decode", "encoder"]
