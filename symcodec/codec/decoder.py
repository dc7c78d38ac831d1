"""The decoder (formats/sym.md sections 2-6): a `.sym` file -> its codebook -> symbols -> pixels.

One `Decoder` per (codebook, HEAD) holds the checks already passed, the entropy model and its layout.
`decode` reads plain files (HEAD, SDAT, SEND) through `format.sym.parse_plain` and a cached decoder, and
everything else through the general reader; both end in the same model and reconstruction code, so they
give the same pixels and raise the same errors (tests/test_codec.py fuzzes that).
"""
from __future__ import annotations

import os
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from ..codebook import registry
from ..codebook.codebook import Codebook, TransformCodebook
from ..errors import CodebookError, FormatError, ImageTooLargeError, SymcodecError
from ..format import sym
from ..format.sym import Header, SymFile
from ..vq import kernels, patches
from ..vq.colour import ycc_pixels
from .transform import TransformDecoder

_MAX_DECODERS = 256
_DEC: dict[tuple[int, bytes, int], Decoder | TransformDecoder] = {}


class Decoder:
    """Decodes the payloads of files with one header and codebook: symbols, then pixels (no alpha)."""

    def __init__(self, cb: Codebook, hdr: Header) -> None:
        _check_fits(cb, hdr)
        if hdr.colour != cb.colour:
            msg = f"corrupt .sym: colour {hdr.colour} does not match the codebook's ({cb.colour})"
            raise FormatError(msg)
        self.cb, self.header = cb, hdr
        self.model = cb.model(hdr.model_id)
        self.grids = hdr.plane_grids
        self.layout = self.model.layout(self.grids)

    def symbols(self, payload: bytes) -> np.ndarray:
        """Every symbol, plane after plane, flat int32 (DecodeError if the payload is corrupt)."""
        return self.model.decode_flat(payload, self.layout)

    def planes(self, flat: np.ndarray) -> list[np.ndarray]:
        """Flat symbols as one (gh, gw) array per plane."""
        out, o = [], 0
        for h, w in self.grids:
            out.append(flat[o : o + h * w].reshape(h, w))
            o += h * w
        return out

    def pixels(self, flat: np.ndarray) -> np.ndarray:
        """(H, W, planes) uint8 pixels from flat symbols (section 4)."""
        hdr, cb = self.header, self.cb
        if hdr.colour == 1:  # ycc420: gather and colour conversion in one kernel
            return ycc_pixels(flat, cb.table_u8, cb.patch, hdr.height, hdr.width)
        gh, gw = self.grids[0]
        return patches.tile(np.reshape(flat, (1, hdr.planes, gh, gw)), cb.table_u8, cb.patch, hdr.height, hdr.width)[0]

    def preview(self, flat: np.ndarray) -> np.ndarray:
        """(ceil(H/p), ceil(W/p), planes) uint8: each patch's centroid mean (colour 1: block means of the pixels)."""
        hdr, cb = self.header, self.cb
        gh, gw = self.grids[0]
        if hdr.colour == 1:
            px = self.pixels(flat)
            return np.stack([patches.block_mean(px[:, :, c], hdr.patch) for c in range(3)], -1)
        out = np.empty((1, gh, gw, hdr.planes), np.uint8)
        kernels.patch_means(np.ascontiguousarray(np.reshape(flat, (1, hdr.planes, gh, gw)), dtype=np.int32), cb.table_mean_u8, out)
        return out[0]

    def image(self, payload: bytes, threads: int = 1) -> np.ndarray:
        """(H, W, planes) uint8 pixels of a payload."""
        return self.pixels(self.symbols(payload))

    def preview_image(self, payload: bytes) -> np.ndarray:
        """The 1/p-scale preview of a payload."""
        return self.preview(self.symbols(payload))

    def decode(self, payload: bytes, threads: int = 1) -> np.ndarray:
        """Pixels of a file without alpha: (H, W) for L, (H, W, 3) otherwise."""
        out = self.pixels(self.symbols(payload))
        return out[:, :, 0] if self.header.mode == "L" else out


def decoder_for(cb: Codebook | TransformCodebook, hdr: Header) -> Decoder | TransformDecoder:
    """The decoder of files with this header: the transform decoder for a transform codebook, else `Decoder`."""
    if isinstance(cb, TransformCodebook):
        return TransformDecoder(cb, hdr)
    if hdr.model_id == 4:
        msg = "entropy model 4 is not supported by this codebook (it needs a transform codebook)"
        raise FormatError(msg)
    return Decoder(cb, hdr)


def _check_fits(cb: Codebook, hdr: Header) -> None:
    if cb.k != hdr.k or cb.patch != hdr.patch:
        msg = "corrupt .sym: codebook K or patch size does not match HEAD"
        raise FormatError(msg)


def read(data: bytes | BinaryIO | str | os.PathLike[str], header_only: bool = False) -> SymFile:
    """Parse a `.sym` file from bytes, a stream, or a path."""
    if isinstance(data, (str, os.PathLike)):
        with open(data, "rb") as fp:
            return sym.read(fp, header_only=header_only)
    return sym.read(data, header_only=header_only)


def codebook_for(f: SymFile, codebook: Codebook | TransformCodebook | str | None = None) -> Codebook | TransformCodebook:
    """The codebook a parsed file needs: embedded, given, or from the registry by id (section 6)."""
    hdr = f.header
    if f.codebook is not None:
        cb = Codebook.from_bytes(f.codebook)
        if not cb.id.startswith(hdr.codebook_id):
            msg = "corrupt .sym: embedded codebook id does not match HEAD"
            raise FormatError(msg)
    elif codebook is not None:
        cb = registry.get(codebook)
        if not cb.id.startswith(hdr.codebook_id):  # a compact file holds the id's first 4 (version 1: 8) bytes
            msg = f"codebook {cb.name or cb.short_id} ({cb.hexid}) is not the one this file needs ({hdr.codebook_id.hex()})"
            raise CodebookError(msg)
    else:
        cb = registry.by_id(hdr.codebook_id)
    _check_fits(cb, hdr)
    return cb


def decode_symbols(f: SymFile, codebook: Codebook | str | None = None) -> list[np.ndarray]:
    """The symbol planes of a parsed file (one (gh, gw) int32 array per plane; colour 1: Y, Cb, Cr)."""
    dec = decoder_for(codebook_for(f, codebook), f.header)
    if isinstance(dec, TransformDecoder):
        return [dec.levels(f.payload or b"")]
    return dec.planes(dec.symbols(f.payload or b""))


MAX_EXPANSION = 1 << 18  # decoded bytes per coded byte; a flat 4096x4096 photo reaches about 82,000 (README, "Untrusted input")
_CHANNELS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


def check_budget(hdr: Header, coded: int, max_pixels: int | None = None, max_expansion: int | None = MAX_EXPANSION) -> None:
    """Refuse (ImageTooLargeError), before any work, a file that claims more than the caller allows.

    `max_pixels`: W x H at most this; None means Pillow's `Image.MAX_IMAGE_PIXELS` as it is now (the
    format's own cap if that is None). `max_expansion`: decoded bytes at most this many times the coded
    bytes `coded` (a decompression bomb proves little and claims much); None turns the check off.
    """
    w, h = hdr.width, hdr.height
    cap = max_pixels if max_pixels is not None else (Image.MAX_IMAGE_PIXELS or sym.MAX_PIXELS)
    if w * h > cap:
        msg = (f"image is {w}x{h} = {w * h} pixels, over the decode budget of {int(cap)} pixels "
               "(max_pixels, default Pillow's Image.MAX_IMAGE_PIXELS)")
        raise ImageTooLargeError(msg)
    out = w * h * _CHANNELS[hdr.mode]
    if max_expansion is not None and out > max_expansion * max(coded, 1):
        msg = (f"image is {w}x{h}: {out} bytes from {coded} coded bytes, over {max_expansion}:1 "
               "(max_expansion): a decompression bomb?")
        raise ImageTooLargeError(msg)


def coded_bytes(f: SymFile) -> int:
    """The bytes a parsed file proves: payload, alpha plane, embedded codebook, and its 64 bytes of framing."""
    return len(f.payload or b"") + len(f.alpha or b"") + len(f.codebook or b"") + 64


def _plain(plain: sym.Plain, codebook: Codebook | str | None) -> Decoder | None:
    """The cached decoder of a plain file's HEAD, or None if anything is amiss (the general path then says what)."""
    major, head, cid = plain.major, plain.head, plain.codebook_id
    try:
        if isinstance(codebook, (Codebook, TransformCodebook)):
            cb = codebook
        else:
            cb = registry.by_id(cid) if codebook is None else registry.get(codebook)
        if cb.id != cid:
            return None
        key = (id(cb), head, major)
        dec = _DEC.get(key)
        if dec is None or dec.cb is not cb:
            hdr = Header.unpack(head, None, major)
            if hdr.mode not in ("L", "RGB"):
                return None
            dec = decoder_for(cb, hdr)
            if len(_DEC) >= _MAX_DECODERS:
                _DEC.clear()
            _DEC[key] = dec
        return dec
    except SymcodecError:
        return None


def _open(data: bytes | BinaryIO | str | os.PathLike[str], codebook: Codebook | str | None, max_pixels: int | None,
          max_expansion: int | None) -> tuple[Decoder | TransformDecoder, bytes, SymFile | None]:
    """A file's decoder and payload after the budget check: a plain file through the cached decoder (no SymFile),
    anything else through the general reader (its SymFile, for the alpha plane)."""
    if isinstance(data, bytes):
        plain = sym.parse_plain(data)
        if plain is not None:
            dec = _plain(plain, codebook)
            if dec is not None:
                check_budget(dec.header, len(plain.payload) + 64, max_pixels, max_expansion)
                return dec, plain.payload, None
    f = read(data)
    check_budget(f.header, coded_bytes(f), max_pixels, max_expansion)
    return decoder_for(codebook_for(f, codebook), f.header), f.payload or b"", f


def decode(data: bytes | BinaryIO | str | os.PathLike[str], codebook: Codebook | str | None = None, threads: int = 1, *,
           max_pixels: int | None = None, max_expansion: int | None = MAX_EXPANSION) -> np.ndarray:
    """Decode `.sym` bytes (or a stream, or a path) to uint8 pixels: (H,W) for L, (H,W,C) otherwise.

    `threads` decodes a transform-mode file's strips in parallel. `max_pixels` and `max_expansion` bound
    what a file may claim (`check_budget`; ImageTooLargeError before any work).
    """
    dec, payload, f = _open(data, codebook, max_pixels, max_expansion)
    if f is None:
        return dec.decode(payload, threads)
    out = dec.image(payload, threads)
    if f.alpha is not None:
        out = np.concatenate([out, f.alpha_plane()[:, :, None]], axis=2)
    return out[:, :, 0] if f.header.mode == "L" else out


def decode_ids(data: bytes | BinaryIO | str | os.PathLike[str], codebook: Codebook | str | None = None, *,
               max_pixels: int | None = None, max_expansion: int | None = MAX_EXPANSION) -> tuple[Header, np.ndarray]:
    """A patch-mode file's header and its flat int32 symbols, plane after plane (what a symbol classifier reads).

    The same paths and checks as `decode`, without the pixels."""
    dec, payload, _ = _open(data, codebook, max_pixels, max_expansion)
    if not isinstance(dec, Decoder):
        msg = "a transform-mode .sym has coefficients, not patch symbols"
        raise FormatError(msg)
    return dec.header, dec.symbols(payload)


__all__ = ["MAX_EXPANSION", "Decoder", "check_budget", "codebook_for", "decode", "decode_ids", "decode_symbols", "decoder_for",
           "read"]
