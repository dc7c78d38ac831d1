"""The `.sym` container (formats/sym.md): HEAD, the one writer, the general reader, and the plain-file parse.

`pack` is the only code that frames a `.sym` file. `read` parses any valid file (sections 1-3);
`parse_plain` recognises the common layout (HEAD, SDAT, SEND; section 2) with its CRCs checked in a few
slices, and says None to anything else, which then goes to `read` and its errors.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

import numpy as np

from ..errors import FormatError, ImageTooLargeError, OptionError
from . import chunks

SIGNATURE = b"\x89SYM\r\n\x1a\n"
MINOR = 0
MAJORS = (1, 2, 3, 4)  # the major version is the entropy model id (section 1, version table)
COLOURS = {0: (1, 2, 3, 4), 1: (2, 3, 4)}  # colour -> the majors it is valid in
MAX_PIXELS = 1 << 28  # reader cap on W*H, checked from HEAD before any allocation
MAX_META = 1 << 24
# text keys with a meaning of their own in Pillow's `info` (its savers read them): section 2
RESERVED_TEXT = frozenset({
    "icc_profile", "exif", "xmp", "XML:com.adobe.xmp", "transparency", "dpi", "gamma", "duration", "loop",
    "background", "aspect", "comment", "extension", "version", "compression", "resolution", "progressive",
    "progression", "quality", "optimize", "interlace", "jfif", "adobe", "srgb", "chromaticity",
})
MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
MODE_IDS = {v: k for k, v in MODES.items()}
PLANES = {"L": 1, "LA": 1, "RGB": 3, "RGBA": 3}
KNOWN = frozenset({b"HEAD", b"cbok", b"iccp", b"exif", b"xmpd", b"text", b"SDAT", b"ALPH"})
_HEAD = struct.Struct("<IIBBBBI32sI")
_U32 = struct.Struct("<I")
_PRE = len(SIGNATURE) + 4  # signature, major, minor, reserved
_HEAD_AT = _PRE + 8  # HEAD's payload
_SDAT_AT = _HEAD_AT + _HEAD.size + 4  # SDAT's length field in a plain file
_SDAT_CRC = zlib.crc32(b"SDAT")
SEND = chunks.pack_chunk(chunks.END, b"")


@dataclass(frozen=True)
class Header:
    """The fields of a HEAD chunk (section 3)."""

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
        return _HEAD.pack(self.width, self.height, MODE_IDS[self.mode], self.patch, self.colour, self.model_id,
                          self.k, self.codebook_id, self.symbols)

    @property
    def major(self) -> int:
        """Container major version: the entropy model id."""
        return self.model_id

    @property
    def planes(self) -> int:
        """Coded planes: 1 for L/LA, 3 for RGB/RGBA."""
        return PLANES[self.mode]

    @property
    def grid(self) -> tuple[int, int]:
        """Patch rows and columns of a full-size plane."""
        p = self.patch
        return -(-self.height // p), -(-self.width // p)

    @property
    def plane_grids(self) -> list[tuple[int, int]]:
        """Patch grid of each coded plane; in colour 1 (ycc420) Cb and Cr are on the half-size image."""
        if self.colour == 1:
            p, ch, cw = self.patch, -(-self.height // 2), -(-self.width // 2)
            return [self.grid] + [(-(-ch // p), -(-cw // p))] * 2
        return [self.grid] * self.planes

    @classmethod
    def unpack(cls, data: bytes, max_pixels: int | None = None, major: int = 1) -> Header:
        """Parse and validate a HEAD payload of a file of this major version."""
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
            msg = f"image is {w}x{h} = {w * h} pixels, over the cap of {cap} (symcodec.format.sym.MAX_PIXELS)"
            raise ImageTooLargeError(msg)
        if model != major:
            msg = f"corrupt .sym: entropy model {model} is not valid in container version {major}"
            raise FormatError(msg)
        if p not in (2, 4, 8) or major not in COLOURS.get(colour, ()) or not 2 <= k <= 65536:
            msg = f"corrupt .sym: unsupported geometry (patch {p}, colour {colour}, K {k})"
            raise FormatError(msg)
        hdr = cls(w, h, MODES[mode], p, colour, model, k, cid, n_sym)
        if colour == 1 and hdr.planes != 3:
            msg = "corrupt .sym: colour 1 (ycc420) needs an RGB or RGBA mode"
            raise FormatError(msg)
        if model == 4 and (p != 8 or (colour == 0 and hdr.planes != 1)):
            msg = "corrupt .sym: entropy model 4 needs 8x8 blocks and, in colour 0, an L or LA mode"
            raise FormatError(msg)
        if n_sym != sum(gh * gw for gh, gw in hdr.plane_grids):
            msg = "corrupt .sym: symbol count does not match the dimensions"
            raise FormatError(msg)
        return hdr


def head(hdr: Header) -> bytes:
    """The start of every file with this header: signature, version, HEAD chunk."""
    return chunks.pack_preamble(SIGNATURE, hdr.major, MINOR) + chunks.pack_chunk(b"HEAD", hdr.pack())


def pack(hdr: Header, payload: bytes | None, *, alpha: bytes | None = None, codebook: bytes | None = None,
         icc_profile: bytes | None = None, exif: bytes | None = None, xmp: bytes | None = None,
         text: dict[str, str] | None = None, start: bytes | None = None) -> bytes:
    """A `.sym` file: HEAD, the codebook and metadata chunks, SDAT, ALPH, SEND (section 2's order).

    `alpha` is the deflated alpha plane (`deflate_alpha`); `start` is `head(hdr)`, when the caller keeps it.
    """
    start = start if start is not None else head(hdr)
    if not (alpha is not None or codebook is not None or icc_profile or exif or xmp or text) and payload is not None:
        return b"".join((start, chunks.pack_chunk(b"SDAT", payload), SEND))  # the plain layout, the common case
    parts = [start]
    if codebook is not None:
        parts.append(chunks.pack_chunk(b"cbok", codebook))
    for ctype, val in ((b"iccp", icc_profile), (b"exif", exif), (b"xmpd", xmp)):
        if val:
            if len(val) > MAX_META:
                msg = f"metadata chunk {ctype.decode()} is {len(val)} bytes, over {MAX_META}"
                raise FormatError(msg)
            parts.append(chunks.pack_chunk(ctype, bytes(val)))
    for key, val in (text or {}).items():
        if key in RESERVED_TEXT or "\0" in key or not key:
            msg = f"text key {key!r} is reserved or invalid (formats/sym.md section 2: {', '.join(sorted(RESERVED_TEXT))})"
            raise OptionError(msg)
        parts.append(chunks.pack_chunk(b"text", key.encode("utf-8") + b"\0" + str(val).encode("utf-8")))
    if payload is not None:
        parts.append(chunks.pack_chunk(b"SDAT", payload))
    if alpha is not None:
        parts.append(chunks.pack_chunk(b"ALPH", alpha))
    parts.append(SEND)
    return b"".join(parts)


def deflate_alpha(plane: np.ndarray) -> bytes:
    """The ALPH payload of an (H, W) uint8 alpha plane."""
    return zlib.compress(np.ascontiguousarray(plane, np.uint8).tobytes(), 9)


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
        """Serialise to `.sym` bytes (through `pack`)."""
        return pack(self.header, self.payload, alpha=self.alpha, codebook=self.codebook, icc_profile=self.icc_profile,
                    exif=self.exif, xmp=self.xmp, text=self.text)

    def alpha_plane(self) -> np.ndarray:
        """Inflate the alpha plane to (H, W) uint8."""
        h, w = self.header.height, self.header.width
        try:
            raw = zlib.decompressobj().decompress(self.alpha or b"", h * w + 1)
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
    major, _ = chunks.read_preamble(fp, SIGNATURE, MAJORS, "SYM")
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
            k = key.decode("utf-8", "replace")
            if k and k not in RESERVED_TEXT:  # a reserved key is ignored: it would pass for Pillow's own metadata
                sym.text[k] = val.decode("utf-8", "replace")
    if header_only:
        return sym
    if sym.payload is None:
        msg = "corrupt .sym: no SDAT chunk"
        raise FormatError(msg)
    if hdr.mode in ("LA", "RGBA") and sym.alpha is None:
        msg = "corrupt .sym: alpha plane missing"
        raise FormatError(msg)
    return sym


class Plain(NamedTuple):
    """The parts of a plain file (HEAD, SDAT, SEND): its major version, HEAD payload and its codebook id, SDAT payload."""

    major: int
    head: bytes
    codebook_id: bytes
    payload: bytes


def parse_plain(b: bytes) -> Plain | None:
    """The parts of a file laid out exactly as HEAD, SDAT, SEND with good CRCs, else None.

    None says nothing about validity: `read` decides, and raises its errors. The HEAD fields are not
    checked here (`Header.unpack` does that).
    """
    if len(b) < _SDAT_AT + 8 or b[: len(SIGNATURE)] != SIGNATURE:
        return None
    major = b[len(SIGNATURE)]
    if major not in MAJORS:
        return None
    if _U32.unpack_from(b, _PRE)[0] != _HEAD.size or b[_PRE + 4 : _HEAD_AT] != b"HEAD":
        return None
    hd = b[_HEAD_AT : _HEAD_AT + _HEAD.size]
    if zlib.crc32(hd, zlib.crc32(b"HEAD")) != _U32.unpack_from(b, _HEAD_AT + _HEAD.size)[0]:
        return None
    (sl,) = _U32.unpack_from(b, _SDAT_AT)
    o = _SDAT_AT + 8
    if b[_SDAT_AT + 4 : o] != b"SDAT" or len(b) < o + sl + 4 + len(SEND) or sl % 4:
        return None
    payload = b[o : o + sl]
    if zlib.crc32(payload, _SDAT_CRC) != _U32.unpack_from(b, o + sl)[0] or b[o + sl + 4 : o + sl + 4 + len(SEND)] != SEND:
        return None
    return Plain(major, hd, hd[16:48], payload)  # the codebook id: HEAD bytes 16-47 (section 3)
