"""Reading and writing the `.sym` container, versions 1 and 2 (formats/sym-v1.md, formats/sym-v2.md)."""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from . import chunks
from .errors import FormatError, ImageTooLargeError

SIGNATURE = b"\x89SYM\r\n\x1a\n"
MAJOR, MINOR = 1, 0
MAJOR_V2 = 2  # version 2.0: entropy model 2 (context model, formats/sym-v2.md); model-1 files stay 1.0
MAJOR_V3 = 3  # version 3.0: entropy model 3 (escape-chain context tables, formats/sym-v3.md)
MAX_PIXELS = 1 << 28  # reader cap on W*H, checked from HEAD before any allocation
MAX_META = 1 << 24
MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
MODE_IDS = {v: k for k, v in MODES.items()}
PLANES = {"L": 1, "LA": 1, "RGB": 3, "RGBA": 3}
KNOWN = frozenset({b"HEAD", b"cbok", b"iccp", b"exif", b"xmpd", b"text", b"SDAT", b"ALPH"})
_HEAD = struct.Struct("<IIBBBBI32sI")


@dataclass(frozen=True)
class Header:
    """The fields of a HEAD chunk."""

    width: int
    height: int
    mode: str
    patch: int
    colour: int
    model_id: int
    k: int
    codebook_id: bytes
    symbols: int

    def pack(self) -> bytes:
        """Serialise as a HEAD payload."""
        return _HEAD.pack(
            self.width, self.height, MODE_IDS[self.mode], self.patch, self.colour, self.model_id,
            self.k, self.codebook_id, self.symbols,
        )

    @property
    def major(self) -> int:
        """Container major version these fields need: 2 for entropy model 2, 3 for model 3, else 1."""
        return {2: MAJOR_V2, 3: MAJOR_V3}.get(self.model_id, MAJOR)

    @property
    def plane_grids(self) -> list[tuple[int, int]]:
        """Patch grid of each coded plane; in colour 1 (ycc420) Cb and Cr are on the half-size image."""
        if self.colour == 1:
            p, ch, cw = self.patch, -(-self.height // 2), -(-self.width // 2)
            return [self.grid] + [(-(-ch // p), -(-cw // p))] * 2
        return [self.grid] * self.planes

    @property
    def planes(self) -> int:
        """Coded planes: 1 for L/LA, 3 for RGB/RGBA."""
        return PLANES[self.mode]

    @property
    def symbols_per_plane(self) -> int:
        """Patches per plane."""
        gh, gw = self.grid
        return gh * gw

    @property
    def grid(self) -> tuple[int, int]:
        """Patch rows and columns."""
        p = self.patch
        return -(-self.height // p), -(-self.width // p)

    @classmethod
    def unpack(cls, data: bytes, max_pixels: int | None = None, major: int = MAJOR) -> Header:
        """Parse and validate a HEAD payload."""
        if len(data) != _HEAD.size:
            msg = f"corrupt .sym: HEAD is {len(data)} bytes, expected {_HEAD.size}"
            raise FormatError(msg)
        w, h, mode, p, colour, model, k, cid, n_sym = _HEAD.unpack(data)
        if mode not in MODES:
            msg = f"corrupt .sym: unknown mode {mode}"
            raise FormatError(msg)
        if not (1 <= w < 2**31 and 1 <= h < 2**31):
            msg = f"corrupt .sym: bad dimensions {w}x{h}"
            raise FormatError(msg)
        cap = MAX_PIXELS if max_pixels is None else max_pixels
        if cap and w * h > cap:
            msg = f"image is {w}x{h} = {w * h} pixels, over the cap of {cap} (symcodec.container.MAX_PIXELS)"
            raise ImageTooLargeError(msg)
        if model != (major if major in (MAJOR_V2, MAJOR_V3) else 1):
            msg = f"corrupt .sym: entropy model {model} is not valid in container version {major}"
            raise FormatError(msg)
        if p not in (2, 4, 8) or colour not in ((0, 1) if major in (MAJOR_V2, MAJOR_V3) else (0,)) or not 2 <= k <= 65536:
            msg = f"corrupt .sym: unsupported geometry (patch {p}, colour {colour}, K {k})"
            raise FormatError(msg)
        hdr = cls(w, h, MODES[mode], p, colour, model, k, cid, n_sym)
        if colour == 1 and hdr.planes != 3:
            msg = "corrupt .sym: colour 1 (ycc420) needs an RGB or RGBA mode"
            raise FormatError(msg)
        if n_sym != sum(gh * gw for gh, gw in hdr.plane_grids):
            msg = "corrupt .sym: symbol count does not match the dimensions"
            raise FormatError(msg)
        return hdr


@dataclass
class SymFile:
    """Everything in a `.sym` file, still entropy-coded."""

    header: Header
    payload: bytes | None = None
    alpha: bytes | None = None
    codebook: bytes | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    text: dict[str, str] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """Serialise to `.sym` bytes."""
        out: list[tuple[bytes, bytes]] = [(b"HEAD", self.header.pack())]
        if self.codebook is not None:
            out.append((b"cbok", self.codebook))
        for ctype, val in ((b"iccp", self.icc_profile), (b"exif", self.exif), (b"xmpd", self.xmp)):
            if val:
                if len(val) > MAX_META:
                    msg = f"metadata chunk {ctype.decode()} is {len(val)} bytes, over {MAX_META}"
                    raise FormatError(msg)
                out.append((ctype, bytes(val)))
        for key, val in self.text.items():
            out.append((b"text", key.encode("utf-8") + b"\0" + str(val).encode("utf-8")))
        if self.payload is not None:
            out.append((b"SDAT", self.payload))
        if self.alpha is not None:
            out.append((b"ALPH", self.alpha))
        return chunks.pack_file(SIGNATURE, self.header.major, MINOR, out)

    def alpha_plane(self) -> np.ndarray:
        """Inflate the alpha plane to (H, W) uint8."""
        h, w = self.header.height, self.header.width
        try:
            d = zlib.decompressobj()
            raw = d.decompress(self.alpha or b"", h * w + 1)
        except zlib.error:
            msg = "corrupt .sym: alpha plane does not inflate"
            raise FormatError(msg) from None
        if len(raw) != h * w:
            msg = f"corrupt .sym: alpha plane has {len(raw)} bytes, expected {h * w}"
            raise FormatError(msg)
        return np.frombuffer(raw, np.uint8).reshape(h, w)


def _meta(ch: chunks.Chunk) -> bytes:
    if len(ch.data) > MAX_META:
        msg = f"corrupt .sym: {ch.type.decode()} chunk over {MAX_META} bytes"
        raise FormatError(msg)
    return ch.data


def read(data: bytes | BinaryIO, header_only: bool = False, max_pixels: int | None = None) -> SymFile:
    """Parse a `.sym` file. With header_only, stop at the first symbol chunk (no payload kept)."""

    fp = chunks.as_stream(data)
    major, _ = chunks.read_preamble(fp, SIGNATURE, (MAJOR, MAJOR_V2, MAJOR_V3), "SYM")
    it = chunks.iter_chunks(fp, ".sym", KNOWN)
    try:
        first = next(it)
    except StopIteration:
        msg = "corrupt .sym: no HEAD chunk"
        raise FormatError(msg) from None
    if first.type != b"HEAD":
        msg = f"corrupt .sym: first chunk is {first.type.decode()}, expected HEAD"
        raise FormatError(msg)
    sym = SymFile(Header.unpack(first.data, max_pixels, major))
    hdr = sym.header
    for ch in it:
        t = ch.type
        if t == b"SDAT":
            if header_only:
                return sym
            if sym.payload is not None or len(ch.data) % 4:
                msg = "corrupt .sym: second SDAT chunk or bad SDAT length"
                raise FormatError(msg)
            sym.payload = ch.data
        elif t == b"ALPH":
            if hdr.mode not in ("LA", "RGBA") or sym.alpha is not None or sym.payload is None:
                msg = "corrupt .sym: unexpected ALPH chunk"
                raise FormatError(msg)
            sym.alpha = ch.data
        elif t == b"HEAD":
            msg = "corrupt .sym: second HEAD chunk"
            raise FormatError(msg)
        elif t == b"cbok":
            sym.codebook = ch.data
        elif t == b"iccp":
            sym.icc_profile = _meta(ch)
        elif t == b"exif":
            sym.exif = _meta(ch)
        elif t == b"xmpd":
            sym.xmp = _meta(ch)
        elif t == b"text":
            key, _, val = _meta(ch).partition(b"\0")
            sym.text[key.decode("utf-8", "replace")] = val.decode("utf-8", "replace")
    if header_only:
        return sym
    if sym.payload is None:
        msg = "corrupt .sym: no SDAT chunk"
        raise FormatError(msg)
    if hdr.mode in ("LA", "RGBA") and sym.alpha is None:
        msg = "corrupt .sym: alpha plane missing"
        raise FormatError(msg)
    return sym
