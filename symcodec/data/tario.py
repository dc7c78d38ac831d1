"""Fast plain-tar reading and writing for datasets of many small members (ustar, GNU long names, PAX paths).

`tarfile` costs ~50-200 us per member; these loops cost a few us, which matters at thousands of
images per second. Compressed archives go through `tarfile` (see `symcodec.sources`).
"""
from __future__ import annotations

import os
import struct
import tarfile
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from ..errors import DatasetError

BLOCK = 512
RECORD = tarfile.RECORDSIZE
_ZERO = b"\0" * BLOCK


@dataclass(frozen=True)
class Member:
    """A regular file in a tar: name, byte offset of its data, size."""

    name: str
    offset: int
    size: int


def _octal(field: bytes, path: str) -> int:
    s = field.rstrip(b"\0 ").lstrip(b" ")
    if s and field[0] & 0x80:  # GNU base-256 for huge values
        return int.from_bytes(field[1:], "big")
    try:
        return int(s or b"0", 8)
    except ValueError:
        msg = f"tar archive {path} is corrupt: bad number {field!r} in a header"
        raise DatasetError(msg) from None


def _checksum_ok(h: bytes) -> bool:
    stored = h[148:156].rstrip(b"\0 ").lstrip(b" ")
    try:
        want = int(stored, 8)
    except ValueError:
        return False
    return sum(h[:148]) + 256 + sum(h[156:]) == want


def _pax_path(data: bytes) -> str | None:
    pos, path = 0, None
    while pos < len(data):
        sp = data.find(b" ", pos)
        if sp < 0:
            break
        n = int(data[pos:sp])
        rec = data[sp + 1 : pos + n - 1]
        key, _, val = rec.partition(b"=")
        if key == b"path":
            path = val.decode("utf-8", "surrogateescape")
        pos += n
    return path


def iter_members(fp: BinaryIO, path: str = "tar", with_data: bool = True) -> Iterator[tuple[Member, bytes | None]]:
    """Regular files of an uncompressed tar in archive order, with their bytes (or None: seek past)."""
    pos = 0
    end: int | None = None  # the file's size, when members are listed without their data
    long_name: str | None = None
    while True:
        h = fp.read(BLOCK)
        if len(h) < BLOCK or h == _ZERO:
            if 0 < len(h) < BLOCK:
                msg = f"tar archive {path} is truncated"
                raise DatasetError(msg)
            return
        if not _checksum_ok(h):
            msg = f"tar archive {path} is corrupt: bad header checksum at byte {pos}"
            raise DatasetError(msg)
        size = _octal(h[124:136], path)
        typ = h[156:157]
        padded = size + (-size % BLOCK)
        data_at = pos + BLOCK
        pos = data_at + padded
        if typ in (b"L", b"x"):
            raw = fp.read(padded)[:size]
            if len(raw) < size:
                msg = f"tar archive {path} is truncated"
                raise DatasetError(msg)
            long_name = raw.rstrip(b"\0").decode("utf-8", "surrogateescape") if typ == b"L" else _pax_path(raw)
            continue
        if typ not in (b"0", b"\0", b"7"):
            fp.seek(padded, os.SEEK_CUR)
            long_name = None
            continue
        if long_name is not None:
            name = long_name
        else:
            name = h[:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            if h[257:262] == b"ustar" and h[345] != 0:
                name = h[345:500].split(b"\0", 1)[0].decode("utf-8", "surrogateescape") + "/" + name
        long_name = None
        if with_data:
            raw = fp.read(padded)
            if len(raw) < padded:
                msg = f"tar archive {path} is truncated in member {name}"
                raise DatasetError(msg)
            yield Member(name, data_at, size), raw[:size]
        else:
            if end is None:
                end = fp.seek(0, os.SEEK_END)
            if data_at + padded > end:
                msg = f"tar archive {path} is truncated in member {name}"
                raise DatasetError(msg)
            fp.seek(data_at + padded)
            yield Member(name, data_at, size), None


def is_plain_tar(path: str | os.PathLike[str]) -> bool:
    """An uncompressed tar file (by name and first header)."""
    if not str(path).endswith(".tar"):
        return False
    with open(path, "rb") as f:
        h = f.read(BLOCK)
    return len(h) == BLOCK and (h == _ZERO or _checksum_ok(h))


_USTAR = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s12x")


def member(name: str, data: bytes, mtime: int = 0) -> bytes:
    """One tar member: header (PAX when the name needs it), data, zero padding to 512 bytes."""
    raw = name.encode("utf-8", "surrogateescape")
    pad = b"\0" * (-len(data) % BLOCK)
    if len(raw) >= 100 or not raw.isascii():
        ti = tarfile.TarInfo(name)
        ti.size, ti.mtime, ti.mode = len(data), mtime, 0o644
        return ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + data + pad
    fields = [raw, b"0000644\0", b"0000000\0", b"0000000\0", b"%011o\0" % len(data), b"%011o\0" % mtime,
              b" " * 8, b"0", b"", b"ustar\0", b"00", b"", b"", b"", b"", b""]
    h = bytearray(_USTAR.pack(*fields))
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h) + data + pad


def end(size: int) -> bytes:
    """End-of-archive marker (two zero blocks), padded to a whole tar record like tarfile writes."""
    n = size + 2 * BLOCK
    return b"\0" * (2 * BLOCK + (-n % RECORD))
