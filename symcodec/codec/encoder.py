"""The encoder (formats/sym.md sections 2-5): pixels -> symbols -> entropy-coded payload -> a framed `.sym` file.

One `Encoder` per (codebook, width, height, mode) holds what every image of that shape shares: the framed
HEAD, the plane grids, the entropy model and its layout. `encode`, `symcodec convert` and the stream sender
all go through it; batches of equal-sized images share one centroid search. Small RGB and L images with
2x2 patches and entropy model 3 take one fused kernel call (codec.kernels); its bytes are those of the
stages one after another.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..codebook import registry
from ..codebook.codebook import Codebook, TransformCodebook
from ..errors import OptionError, UnsupportedModeError
from ..format import sym
from ..vq import kernels
from ..vq.colour import _ycc_patches, rgb_to_planes
from .image import samples
from .choice import check_quality, choose, jpeg_tables, transform_steps
from .kernels import encode_image_u8
from .symbols import STRIP_VALUES, quantize
from .transform import TransformEncoder

_MAX_ENCODERS = 256
_ENC: dict[tuple, Encoder | TransformEncoder] = {}


class Encoder:
    """Encodes images of one size and mode with one codebook (uint8 (H, W, C) arrays, or (N, H, W, C) batches)."""

    def __init__(self, cb: Codebook, width: int, height: int, mode: str) -> None:
        sym.check_encodable(width, height, mode)
        self.cb, self.mode, self.planes = cb, mode, sym.PLANES[mode]
        if cb.colour == 1 and (self.planes != 3 or cb.context is None):
            msg = f"codebook {cb.name or cb.short_id} (ycc420) encodes RGB/RGBA images and needs a context model"
            raise UnsupportedModeError(msg)
        self.model = cb.entropy
        hdr = sym.Header(width, height, mode, cb.patch, cb.colour, self.model.model_id, cb.k, cb.id, 0)
        self.grids = hdr.plane_grids
        self.n = sum(h * w for h, w in self.grids)  # symbols per image
        self.header = replace(hdr, symbols=self.n)
        self.start = sym.head(self.header)
        self.layout = self.model.layout(self.grids)
        self.small = width * height * cb.dim <= STRIP_VALUES  # patches of one image fit one buffer
        self.fused = cb.colour == 0 and cb.patch == 2 and self.small and self.model.model_id == 3
        self._tables: tuple | None = None  # the model's encoder tables, for the fused kernel

    def symbols(self, batch: np.ndarray, threads: int = 1) -> np.ndarray:
        """Symbols of a (N, H, W, C) uint8 batch (C >= planes; alpha is not coded): (N, symbols) int32, plane after plane."""
        cb, n = self.cb, batch.shape[0]
        p, d = cb.patch, cb.dim
        if cb.colour == 1:  # ycc420: colour conversion and patches in one kernel (small), else plane by plane
            if self.small:
                rows = np.concatenate([self._ycc_rows(a) for a in batch]) if n > 1 else self._ycc_rows(batch[0])
                return cb.searcher.nearest(rows, threads=threads).reshape(n, self.n)
            return np.stack([np.concatenate([quantize(pl, cb, threads).ravel() for pl in rgb_to_planes(a[:, :, :3])])
                             for a in batch])
        img = batch if batch.shape[3] == self.planes else batch[:, :, :, : self.planes]
        if n * self.n * d > STRIP_VALUES:
            return quantize(img, cb, threads).reshape(n, self.n)
        gh, gw = self.grids[0]
        pt = np.empty((n, self.planes, gh, gw, d), np.float32)
        kernels.extract_u8(img, p, pt)
        return cb.searcher.nearest(pt.reshape(-1, d), threads=threads).reshape(n, self.n)

    def _ycc_rows(self, a: np.ndarray) -> np.ndarray:
        """The Y, Cb and Cr patches of one RGB(A) image as float32 rows (one kernel call)."""
        return _ycc_patches(a if a.shape[2] == 3 else np.ascontiguousarray(a[:, :, :3]), self.cb.patch)

    def payload(self, a: np.ndarray, threads: int = 1) -> bytes:
        """The SDAT payload of one (H, W, C) uint8 image."""
        if self.fused and threads <= 1:
            words = self._fused(a[None] if a.shape[2] == self.planes else np.ascontiguousarray(a[None, :, :, : self.planes]))
            if words.size:  # else a search cell is not built yet: the long way builds it
                return words.astype("<u2", copy=False).tobytes()
        elif self.small and self.cb.colour == 1:
            return self.model.encode_flat(self.cb.searcher.nearest(self._ycc_rows(a), threads=threads), self.layout)
        return self.model.encode_flat(self.symbols(a[None], threads)[0], self.layout)

    def _fused(self, img: np.ndarray) -> np.ndarray:
        """The stream's words for a (1, H, W, planes) image in one kernel call; empty if a search cell is not built."""
        if self._tables is None:
            self._tables = self.model.encoder_tables()  # type: ignore[attr-defined]
        s = self.cb.searcher  # its cell arrays are read at each call: the cache may have grown
        return encode_image_u8(img, s.centroids, s.lut, s.bits, s.nbr, s.nbrd, s.table, s.cand, *self.layout, *self._tables)

    def frame(self, payload: bytes, a: np.ndarray, meta: dict[str, bytes] | None = None, text: dict[str, str] | None = None,
              embed_codebook: bool = False, compact: bool = False) -> bytes:
        """The `.sym` file of a payload, with the image's alpha plane (if `a` has one), metadata and codebook.

        `compact`: the compact form (section 9) where the file is plain and its mode and model allow it, else chunked.
        """
        if a.shape[2] == self.planes and not ((meta and any(meta.values())) or text or embed_codebook):
            if compact and sym.compactable(self.header):
                return sym.pack_compact(self.header, payload)
            return sym.pack(self.header, payload, start=self.start)  # plain: HEAD, SDAT, SEND
        m = meta or {}
        return sym.pack(self.header, payload, alpha=sym.deflate_alpha(a[:, :, self.planes]) if a.shape[2] > self.planes else None,
                        codebook=self.cb.to_bytes() if embed_codebook else None, icc_profile=m.get("icc_profile"),
                        exif=m.get("exif"), xmp=m.get("xmp"), text=text, start=self.start)

    def encode(self, a: np.ndarray, meta: dict[str, bytes] | None = None, text: dict[str, str] | None = None,
               embed_codebook: bool = False, threads: int = 1, compact: bool = False) -> bytes:
        """The `.sym` bytes of one (H, W, C) uint8 image of this encoder's size and mode (C: the mode's channels)."""
        return self.frame(self.payload(a, threads), a, meta, text, embed_codebook, compact)

    def encode_batch(self, batch: np.ndarray, metas: list[dict[str, bytes]] | None = None, embed_codebook: bool = False,
                     threads: int = 1, compact: bool = False) -> list[bytes]:
        """The `.sym` bytes of each image of a (N, H, W, C) batch: one centroid search for all (same bytes as `encode`)."""
        syms = self.symbols(batch, threads)
        return [self.frame(self.model.encode_flat(syms[i], self.layout), batch[i], metas[i] if metas else None,
                           embed_codebook=embed_codebook, compact=compact) for i in range(len(batch))]


def encoder_for(cb: Codebook | TransformCodebook, width: int, height: int, mode: str,
                steps: np.ndarray | None = None) -> Encoder | TransformEncoder:
    """The (cached) encoder of images of this size and mode with `cb` (and, for a transform codebook, these steps)."""
    key = (id(cb), width, height, mode, None if steps is None else steps.tobytes())
    enc = _ENC.get(key)
    if enc is None or enc.cb is not cb:
        enc = TransformEncoder(cb, width, height, mode, steps) if isinstance(cb, TransformCodebook) else Encoder(cb, width, height, mode)
        if len(_ENC) >= _MAX_ENCODERS:
            _ENC.clear()
        _ENC[key] = enc
    return enc


def encode(
    image: Any,
    codebook: Codebook | TransformCodebook | str | None = None,
    *,
    quality: int | None = None,
    embed_codebook: bool = False,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    xmp: bytes | None = None,
    text: dict[str, str] | None = None,
    threads: int = 1,
    compact: bool = False,
) -> bytes:
    """Encode a PIL image or uint8 array (L, LA, RGB, RGBA) to `.sym` bytes (metadata: the image's own unless given).

    With no codebook, the image's size picks one (`codec.choice`: small-image patch codebooks, or the transform
    codebook for photographs); `quality` (1..100) picks a rung of that ladder or sets a transform codebook's
    steps. `threads` runs the centroid search, or a photograph's strips, in parallel. `compact` writes the
    compact form (formats/sym.md section 9: 16 bytes of framing at 32x32 instead of 100) when the file is plain (no
    alpha, metadata or embedded codebook) in mode L or RGB with a patch codebook; the chunked form otherwise.
    """
    q = check_quality(quality)
    cb = registry.get(codebook) if codebook is not None else None
    a, mode, meta = samples(image)
    steps = None
    if cb is None:
        cb, steps = choose(a.shape[1], a.shape[0], mode, q, jpeg_tables(image))
    elif isinstance(cb, TransformCodebook):
        steps = transform_steps(q, jpeg_tables(image))
    elif q is not None:
        msg = f"quality sets a transform codebook's steps or picks a default codebook; {cb.name or cb.short_id} is a patch codebook"
        raise OptionError(msg)
    enc = encoder_for(cb, a.shape[1], a.shape[0], mode, steps)
    if icc_profile is not None or exif is not None or xmp is not None:
        meta = {**meta, **{k: v for k, v in (("icc_profile", icc_profile), ("exif", exif), ("xmp", xmp)) if v is not None}}
    return enc.encode(a, meta, text, embed_codebook, threads, compact)
