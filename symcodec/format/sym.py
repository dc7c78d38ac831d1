"""The `.sym` container (formats/sym.md): HEAD, the one writer, the general reader, and the plain-file parse.

`pack` is the only code that frames a chunked `.sym` file, `pack_compact` the only one that writes the
compact form (section 9); `read` reads both. `read` parses any valid file (sections 1-3);
`parse_plain` recognises the common layout (HEAD, SDAT, SEND; section 2) with its CRCs checked in a few
slices, and says None to anything else, which then goes to `read` and its errors.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

import numpy as np

from ..errors import (ChecksumError, EmptyImageError, FormatError, ImageTooLargeError, OptionError, TruncatedError,
                      UnsupportedModeError, UnsupportedVersionError)
from . import chunks

SIGNATURE = b"\x89SYM\r\n\x1a\n"
COMPACT_MAGIC = b"\x89sym"  # the compact form (section 9)
COMPACT_VERSION = 2  # the version writers write; readers read COMPACT_VERSIONS
COMPACT_VERSIONS = (1, 2)
COMPACT_ID = {1: 8, 2: 4}  # bytes of the codebook id a compact file carries, by version
COMPACT_CHECK = {1: 4, 2: 2}  # bytes of its CRC-32 (all of it, or the low 16 bits)
COMPACT_MODELS = (1, 2, 3)
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


def check_encodable(width: int, height: int, mode: str) -> None:
    """What every encoder checks first: a non-empty image, within MAX_PIXELS, in one of the PLANES modes."""
    if width <= 0 or height <= 0:
        msg = f"cannot encode an empty {width}x{height} image"
        raise EmptyImageError(msg)
    if width * height > MAX_PIXELS:
        msg = f"image is {width}x{height}, over the cap of {MAX_PIXELS} pixels"
        raise ImageTooLargeError(msg)
    if mode not in PLANES:
        msg = f"mode {mode} is not one of {', '.join(PLANES)}"
        raise UnsupportedModeError(msg)
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
        return cls.make(*_HEAD.unpack(data), max_pixels=max_pixels, major=major)

    @classmethod
    def make(cls, w: int, h: int, mode: int, p: int, colour: int, model: int, k: int, cid: bytes, n_sym: int | None,
             max_pixels: int | None = None, major: int = 1) -> Header:
        """A validated header from raw field values (section 3); n_sym None: the count the geometry implies."""
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
        hdr = cls(w, h, MODES[mode], p, colour, model, k, cid, 0)
        if colour == 1 and hdr.planes != 3:
            msg = "corrupt .sym: colour 1 (ycc420) needs an RGB or RGBA mode"
            raise FormatError(msg)
        if model == 4 and (p != 8 or (colour == 0 and hdr.planes != 1)):
            msg = "corrupt .sym: entropy model 4 needs 8x8 blocks and, in colour 0, an L or LA mode"
            raise FormatError(msg)
        n = sum(gh * gw for gh, gw in hdr.plane_grids)
        if n_sym is not None and n_sym != n:
            msg = "corrupt .sym: symbol count does not match the dimensions"
            raise FormatError(msg)
        return cls(w, h, MODES[mode], p, colour, model, k, cid, n)


def head(hdr: Header) -> bytes:
    """The start of every file with this header: signature, version, HEAD chunk."""
    return chunks.pack_preamble(SIGNATURE, hdr.major, MINOR) + chunks.pack_chunk(b"HEAD", hdr.pack())


def pack(hdr: Header, payload: bytes | None, *, alpha: bytes | None = None, codebook: bytes | None = None,
         icc_profile: bytes | None = None, exif: bytes | None = None, xmp: bytes | None = None,
         text: dict[str, str] | None = None, start: bytes | None = None) -> bytes:
    """A `.sym` file: HEAD, the codebook and metadata chunks, SDAT, ALPH, SEND (section 2's order).

    `alpha` is the deflated alpha plane (`deflate_alpha`); `start` is `head(hdr)`, when the caller keeps it.
    """
    if len(hdr.codebook_id) != 32:
        msg = "the chunked form needs the codebook's whole id (a compact file's header carries 4 or 8 bytes of it)"
        raise OptionError(msg)
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


def is_sym(prefix: bytes) -> bool:
    """Whether bytes start like a `.sym` file, chunked (section 1) or compact (section 9)."""
    return prefix[: len(SIGNATURE)] == SIGNATURE or prefix[: len(COMPACT_MAGIC)] == COMPACT_MAGIC


def compactable(hdr: Header) -> bool:
    """Whether a plain file with this header has a compact form (section 9: modes L and RGB, entropy models 1-3)."""
    return hdr.mode in ("L", "RGB") and hdr.model_id in COMPACT_MODELS


def _leb(v: int) -> bytes:
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _read_leb(b: bytes, o: int, what: str) -> tuple[int, int]:
    """An unsigned LEB128 value at b[o:] (minimal, at most 5 bytes) and the offset after it."""
    v = 0
    for i in range(5):
        if o >= len(b):
            msg = f"truncated compact .sym: {what}"
            raise TruncatedError(msg)
        c = b[o]
        o += 1
        v |= (c & 0x7F) << (7 * i)
        if not c & 0x80:
            if c == 0 and i:
                msg = f"corrupt compact .sym: {what} is not minimally encoded"
                raise FormatError(msg)
            return v, o
    msg = f"corrupt compact .sym: {what} is longer than 5 bytes"
    raise FormatError(msg)


_PATCH_CODES = {2: 0, 4: 1, 8: 2}


def pack_compact(hdr: Header, payload: bytes, version: int = COMPACT_VERSION) -> bytes:
    """A plain file in the compact form (section 9): magic, version, descriptor, W, H, K, id prefix, payload, check."""
    if not compactable(hdr):
        msg = f"the compact form holds modes L and RGB with entropy models 1-3, not {hdr.mode} with model {hdr.model_id}"
        raise OptionError(msg)
    if version not in COMPACT_VERSIONS:
        msg = f"compact form version {version} does not exist (versions {COMPACT_VERSIONS})"
        raise OptionError(msg)
    if len(payload) % 4:
        msg = "an SDAT payload's length is a multiple of 4"
        raise FormatError(msg)
    if version >= 2 and payload[-2:] == b"\0\0":
        payload = payload[:-2]  # the reader puts it back
    d = hdr.model_id | _PATCH_CODES[hdr.patch] << 2 | hdr.colour << 4 | (hdr.mode == "RGB") << 5
    body = b"".join((COMPACT_MAGIC, bytes((version, d)), _leb(hdr.width), _leb(hdr.height), _leb(hdr.k),
                     hdr.codebook_id[:COMPACT_ID[version]], payload))
    return body + _U32.pack(zlib.crc32(body))[: COMPACT_CHECK[version]]


def read_compact(b: bytes, max_pixels: int | None = None) -> SymFile:
    """Parse a whole compact-form file (section 9), version 1 or 2."""
    if len(b) < len(COMPACT_MAGIC) + 2 or b[: len(COMPACT_MAGIC)] != COMPACT_MAGIC:
        msg = "truncated compact .sym: no version and descriptor"
        raise TruncatedError(msg)
    version = b[4]
    if version not in COMPACT_VERSIONS:
        msg = f"compact .sym version {version} is not supported (this reader handles {', '.join(map(str, COMPACT_VERSIONS))})"
        raise UnsupportedVersionError(msg)
    n_id, n_check = COMPACT_ID[version], COMPACT_CHECK[version]
    if len(b) < 4 + 2 + 3 + n_id + n_check:
        msg = f"truncated compact .sym: {len(b)} bytes"
        raise TruncatedError(msg)
    end = len(b) - n_check
    if _U32.pack(zlib.crc32(b[:end]))[:n_check] != b[end:]:
        msg = "corrupt compact .sym: CRC mismatch (or a truncated file)"
        raise ChecksumError(msg)
    d = b[5]
    model, pcode, colour, rgb = d & 3, d >> 2 & 3, d >> 4 & 1, d >> 5 & 1
    if d >> 6 or model == 0 or pcode == 3:
        msg = f"corrupt compact .sym: bad descriptor byte {d:#04x}"
        raise FormatError(msg)
    w, o = _read_leb(b, 6, "width")
    h, o = _read_leb(b, o, "height")
    k, o = _read_leb(b, o, "K")
    if o + n_id > end:
        msg = "truncated compact .sym: codebook id"
        raise TruncatedError(msg)
    cid, payload = b[o : o + n_id], b[o + n_id : end]
    if version == 1 and len(payload) % 4:
        msg = "corrupt compact .sym: payload length is not a multiple of 4"
        raise FormatError(msg)
    if version >= 2:
        if len(payload) % 2 or (len(payload) % 4 == 0 and payload[-2:] == b"\0\0"):
            msg = "corrupt compact .sym: a version-2 payload has an even length and no final 0x0000 word"
            raise FormatError(msg)
        if len(payload) % 4:
            payload += b"\0\0"
    hdr = Header.make(w, h, 3 if rgb else 1, (2, 4, 8)[pcode], colour, model, k, cid, None, max_pixels, model)
    return SymFile(hdr, payload, compact=True, compact_version=version)


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
    compact: bool = False  # read from (or to be written in) the compact form, section 9
    compact_version: int = COMPACT_VERSION  # the compact form's version it was read from (or is written in)

    def to_bytes(self) -> bytes:
        """Serialise to `.sym` bytes (through `pack`, or `pack_compact` for a compact file)."""
        if self.compact:
            if self.alpha is not None or self.codebook is not None or self.icc_profile or self.exif or self.xmp or self.text:
                msg = "the compact form holds plain files only (no alpha, embedded codebook or metadata)"
                raise OptionError(msg)
            return pack_compact(self.header, self.payload or b"", self.compact_version)
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
    """Parse a `.sym` file, chunked or compact. With header_only, stop at the first symbol chunk (no payload kept)."""
    fp = chunks.as_stream(data)
    pre = fp.read(len(SIGNATURE) + 4)
    if pre[: len(COMPACT_MAGIC)] == COMPACT_MAGIC:
        rest = fp.read(chunks.MAX_CHUNK + 1 - len(pre))  # no legal compact file is larger than a chunk
        if len(pre) + len(rest) > chunks.MAX_CHUNK:
            msg = f"corrupt compact .sym: over {chunks.MAX_CHUNK} bytes"
            raise FormatError(msg)
        return read_compact(pre + rest, max_pixels)
    major, _ = chunks.read_preamble(fp, SIGNATURE, MAJORS, "SYM", pre)
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
