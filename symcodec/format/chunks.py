"""PNG-style chunk framing shared by `.sym` images and `.symcb` codebooks (formats/sym.md section 1, formats/symcb.md section 1)."""
from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from ..errors import (
    ChecksumError,
    FormatError,
    NotSymFileError,
    TruncatedError,
    UnknownChunkError,
    UnsupportedVersionError,
)

MAX_CHUNK = 1 << 28  # 256 MiB: no legal chunk is larger; checked before any allocation
SAFEBLOCK = 1 << 20  # payloads are read in pieces, so a lying length cannot allocate much
END = b"SEND"


@dataclass(frozen=True)
class Chunk:
    """One chunk: its four-byte type and payload."""

    type: bytes
    data: bytes

    @property
    def critical(self) -> bool:
        """Critical chunks start with an upper-case letter (PNG's rule)."""
        return is_critical(self.type)


def is_critical(ctype: bytes) -> bool:
    """True when a chunk type's first letter is upper case."""
    return 65 <= ctype[0] <= 90


def pack_chunk(ctype: bytes, data: bytes) -> bytes:
    """Frame one chunk: length, type, payload, CRC-32 of type+payload (little-endian)."""
    if len(ctype) != 4 or not ctype.isalpha():
        msg = f"bad chunk type {ctype!r}"
        raise ValueError(msg)
    if len(data) > MAX_CHUNK:
        msg = f"chunk {ctype!r} is {len(data)} bytes, over the {MAX_CHUNK} byte limit"
        raise FormatError(msg)
    crc = zlib.crc32(data, zlib.crc32(ctype))
    return struct.pack("<I", len(data)) + ctype + data + struct.pack("<I", crc)


def pack_preamble(signature: bytes, major: int, minor: int) -> bytes:
    """Signature, then major and minor version and a reserved u16 (what `read_preamble` reads)."""
    return signature + struct.pack("<BBH", major, minor, 0)


def pack_file(signature: bytes, major: int, minor: int, chunks: list[tuple[bytes, bytes]]) -> bytes:
    """Signature, version and chunks, followed by the empty end chunk."""
    parts = [pack_preamble(signature, major, minor)]
    parts += [pack_chunk(t, d) for t, d in chunks]
    parts.append(pack_chunk(END, b""))
    return b"".join(parts)


def _read_exact(fp: BinaryIO, n: int, what: str) -> bytes:
    """Read exactly n bytes in SAFEBLOCK pieces, or raise TruncatedError."""
    if n <= SAFEBLOCK:
        b = fp.read(n)
        if len(b) != n:
            msg = f"truncated {what}: expected {n} bytes, got {len(b)}"
            raise TruncatedError(msg)
        return b
    out = bytearray()
    while len(out) < n:
        b = fp.read(min(SAFEBLOCK, n - len(out)))
        if not b:
            msg = f"truncated {what}: expected {n} bytes, got {len(out)}"
            raise TruncatedError(msg)
        out += b
    return bytes(out)


def read_preamble(fp: BinaryIO, signature: bytes, majors: tuple[int, ...], kind: str,
                  head: bytes | None = None) -> tuple[int, int]:
    """Check the signature and that the major version is one of `majors`; return (major, minor).

    `head`: the preamble's bytes when the caller has already read them from `fp`.
    """
    head = fp.read(len(signature) + 4) if head is None else head
    if len(head) < len(signature) or head[: len(signature)] != signature:
        if head and head == signature[: len(head)]:
            msg = f"truncated {kind} signature"
            raise TruncatedError(msg)
        msg = f"not a {kind} file"
        raise NotSymFileError(msg)
    if len(head) < len(signature) + 4:
        msg = f"truncated {kind} preamble"
        raise TruncatedError(msg)
    major, minor, _reserved = struct.unpack("<BBH", head[len(signature) :])
    if major not in majors:
        msg = f"{kind} major version {major} is not supported (this reader handles {', '.join(map(str, majors))})"
        raise UnsupportedVersionError(msg)
    return major, minor


def iter_chunks(fp: BinaryIO, kind: str, known: frozenset[bytes] | set[bytes]) -> Iterator[Chunk]:
    """Yield verified chunks up to (not including) the end chunk.

    Unknown ancillary chunks are skipped, unknown critical chunks raise.
    """
    while True:
        head = fp.read(8)
        if len(head) < 8:
            msg = f"truncated {kind}: missing end chunk"
            raise TruncatedError(msg)
        (length,) = struct.unpack("<I", head[:4])
        ctype = head[4:]
        if not ctype.isalpha():
            msg = f"corrupt {kind}: invalid chunk type {ctype!r}"
            raise FormatError(msg)
        if length > MAX_CHUNK:
            msg = f"corrupt {kind}: chunk {ctype.decode('latin-1')} claims {length} bytes"
            raise FormatError(msg)
        data = _read_exact(fp, length, f"{kind} chunk {ctype.decode('latin-1')}")
        crc_b = _read_exact(fp, 4, f"{kind} chunk {ctype.decode('latin-1')} CRC")
        (crc,) = struct.unpack("<I", crc_b)
        if zlib.crc32(data, zlib.crc32(ctype)) != crc:
            msg = f"corrupt {kind}: CRC mismatch in chunk {ctype.decode('latin-1')}"
            raise ChecksumError(msg)
        if ctype == END:
            if length:
                msg = f"corrupt {kind}: end chunk has a payload"
                raise FormatError(msg)
            return
        if ctype not in known:
            if is_critical(ctype):
                msg = f"unknown critical chunk {ctype.decode('latin-1')} in {kind}"
                raise UnknownChunkError(msg)
            continue
        yield Chunk(ctype, data)


def as_stream(data: bytes | bytearray | memoryview | BinaryIO) -> BinaryIO:
    """Wrap bytes in a stream; pass streams through."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(data))
    return data
