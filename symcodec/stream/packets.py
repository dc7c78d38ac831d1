"""Stream packets (formats/stream.md): build, validate and parse BAND, FILE and PARITY packets; resync on byte streams."""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import (
    ChecksumError, FormatError, ImageTooLargeError, SymcodecError, TruncatedError, UnsupportedVersionError,
)

MAGIC = b"SY"
VERSION = 1
BAND, FILE, PARITY = 1, 2, 3
DEFAULT_SIZE = 255
MIN_SIZE = 64
MAX_PIXELS = 1 << 24  # reference reader cap on W x H for BAND packets
MAX_FILE = 64 << 20  # reference reader cap on FILE size
PLANES = {1: 1, 3: 3}  # mode id -> planes
_COMMON = struct.Struct("<2sBBHHHHH")  # magic, version, type, length, stream, image, index, count
_BAND = struct.Struct("<8sHHBBHH")  # codebook prefix, W, H, mode, patch, K-1, segment width
_FILE = struct.Struct("<II")  # file size, offset
BAND_HEADER = _COMMON.size + _BAND.size  # 32
FILE_HEADER = _COMMON.size + _FILE.size  # 22
CRC = 4


@dataclass(frozen=True)
class Geometry:
    """An image's BAND descriptor: codebook prefix, size, mode, patch, K and segment width."""

    cb_prefix: bytes
    width: int
    height: int
    mode: int
    patch: int
    k: int
    seg: int

    @property
    def planes(self) -> int:
        """Colour planes P (1 for L, 3 for RGB)."""
        return PLANES[self.mode]

    @property
    def grid(self) -> tuple[int, int]:
        """Patch grid (gh, gw) of one plane."""
        return -(-self.height // self.patch), -(-self.width // self.patch)

    @property
    def nseg(self) -> int:
        """Segments per patch row."""
        return -(-self.grid[1] // self.seg)

    @property
    def units(self) -> int:
        """Segments in the image, U = P * gh * ns."""
        return self.planes * self.grid[0] * self.nseg

    def pack(self) -> bytes:
        """The 18 descriptor bytes (offsets 14..31)."""
        return _BAND.pack(self.cb_prefix, self.width, self.height, self.mode, self.patch, self.k - 1, self.seg)

    def check(self) -> None:
        """Raise FormatError (or ImageTooLargeError) if any field is out of range."""
        if len(self.cb_prefix) != 8 or not (1 <= self.width <= 65535 and 1 <= self.height <= 65535):
            raise FormatError("invalid stream packet: bad codebook prefix or image size")
        if self.mode not in PLANES or self.patch not in (2, 4, 8) or not 2 <= self.k <= 65536:
            raise FormatError(f"invalid stream packet: mode {self.mode}, patch {self.patch} or K {self.k} out of range")
        if self.width * self.height > MAX_PIXELS:
            raise ImageTooLargeError(f"streamed image {self.width}x{self.height} is over the cap of {MAX_PIXELS} pixels")
        if not 1 <= self.seg <= self.grid[1]:
            raise FormatError(f"invalid stream packet: segment width {self.seg} outside 1..{self.grid[1]}")

    @cached_property
    def _layout(self) -> tuple[np.ndarray, np.ndarray]:
        p, (gh, gw), s, ns = self.planes, self.grid, self.seg, self.nseg
        c, r, col = np.meshgrid(np.arange(p), np.arange(gh), np.arange(gw), indexing="ij")
        u = ((r * ns + col // s) * p + c).ravel().astype(np.int64)
        return u, (col % s).ravel().astype(np.int64)

    def band_indices(self, n: int, b: int) -> np.ndarray:
        """Flat symbol indices (into (P,gh,gw)) of band b of n, in coding order: `band_order`'s slice for b, in
        time and memory proportional to the band (a receiver never sorts a whole image a sender only claims)."""
        p, (gh, gw), s, ns = self.planes, self.grid, self.seg, self.nseg
        us = np.arange(b, self.units, n, dtype=np.int64)
        c, row, sg = us % p, (us // p) // ns, (us // p) % ns
        col0 = sg * s
        lens = np.minimum(s, gw - col0)
        base = c * (gh * gw) + row * gw + col0
        starts = np.cumsum(lens) - lens
        return np.repeat(base - starts, lens) + np.arange(int(lens.sum()), dtype=np.int64)

    def band_order(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Flat symbol indices (into (P,gh,gw)) of all bands concatenated, and each band's start offset."""
        u, within = self._layout
        key = ((u % n) * self.units + u) * self.seg + within
        order = np.argsort(key, kind="stable")
        sizes = np.bincount(u % n, minlength=n)
        return order, np.concatenate([[0], np.cumsum(sizes)])


@dataclass(frozen=True)
class Packet:
    """One parsed, CRC-checked packet."""

    type: int
    stream: int
    image: int
    index: int
    count: int
    desc: bytes  # type-specific header bytes
    payload: bytes

    @property
    def key(self) -> tuple[int, int]:
        """(stream id, image id): which image the packet belongs to."""
        return self.stream, self.image

    def geometry(self) -> Geometry:
        """The BAND descriptor (BAND packets only)."""
        pre, w, h, mode, patch, km1, seg = _BAND.unpack(self.desc)
        return Geometry(pre, w, h, mode, patch, km1 + 1, seg)

    def parity_fields(self) -> tuple[int, list[int], bytes]:
        """(groups m, member payload lengths in bytes, XOR of the zero-padded member payloads) of a PARITY packet."""
        m = int.from_bytes(self.payload[:2], "little")
        k = len(range(self.index, self.count, m))
        lengths = [4 * v for v in np.frombuffer(self.payload, "<u2", k, 2).tolist()]
        return m, lengths, self.payload[2 + 2 * k:]

    def file_fields(self) -> tuple[int, int]:
        """(file size, offset) of a FILE packet."""
        return _FILE.unpack(self.desc)


def build(ptype: int, stream: int, image: int, index: int, count: int, desc: bytes, payload: bytes) -> bytes:
    """Assemble a packet and append its CRC-32."""
    length = _COMMON.size + len(desc) + len(payload) + CRC
    if length > 65535:
        raise FormatError(f"stream packet of {length} bytes is over 65535")
    head = _COMMON.pack(MAGIC, VERSION, ptype, length, stream & 0xFFFF, image & 0xFFFF, index, count)
    body = head + desc + payload
    return body + struct.pack("<I", zlib.crc32(body))


def band_packet(geo: Geometry, stream: int, image: int, index: int, count: int, coded: bytes) -> bytes:
    """A BAND packet carrying one band's entropy-coded symbols."""
    if not coded or len(coded) % 4:
        raise FormatError("a band's coded symbols must be a positive whole number of 4-byte words")
    return build(BAND, stream, image, index, count, geo.pack(), coded)


def parity_packets(geo: Geometry, stream: int, image: int, coded: list[bytes], groups: int) -> list[bytes]:
    """PARITY packets: group j XORs the bands i = j, j + m, ... (each zero-padded to the group's longest)."""
    n = len(coded)
    out = []
    for j in range(groups):
        members = coded[j::groups]
        width = max(len(c) for c in members)
        acc = np.zeros(width, np.uint8)
        for c in members:
            acc[: len(c)] ^= np.frombuffer(c, np.uint8)
        head = struct.pack(f"<H{len(members)}H", groups, *[len(c) // 4 for c in members])
        out.append(build(PARITY, stream, image, j, n, geo.pack(), head + acc.tobytes()))
    return out


def file_packets(data: bytes, stream: int, image: int, size: int = DEFAULT_SIZE) -> list[bytes]:
    """Cut a file into FILE packets of at most `size` bytes."""
    room = size - FILE_HEADER - CRC
    if not data:
        raise FormatError("cannot stream an empty file")
    n = -(-len(data) // room)
    if n > 65535 or len(data) > 0xFFFFFFFF:
        raise ImageTooLargeError(f"file of {len(data)} bytes needs more than 65535 packets of {size} bytes")
    return [build(FILE, stream, image, i, n, _FILE.pack(len(data), i * room), data[i * room:(i + 1) * room]) for i in range(n)]


def parse(data: bytes) -> Packet:
    """Validate and parse one packet (the whole datagram); raises a SymcodecError subclass if invalid."""
    data = bytes(data)
    if len(data) < _COMMON.size + CRC:
        raise TruncatedError(f"stream packet of {len(data)} bytes is too short")
    magic, ver, ptype, length, stream, image, index, count = _COMMON.unpack_from(data)
    if magic != MAGIC:
        raise FormatError("not a stream packet (bad magic)")
    if length != len(data):
        raise TruncatedError(f"stream packet length field {length} != {len(data)} bytes received")
    if struct.unpack_from("<I", data, length - CRC)[0] != zlib.crc32(data[: length - CRC]):
        raise ChecksumError("stream packet CRC-32 mismatch")
    if ver != VERSION:
        raise UnsupportedVersionError(f"stream packet version {ver} is not supported (expected {VERSION})")
    if not (1 <= count and index < count):
        raise FormatError(f"invalid stream packet: index {index} of {count}")
    hsize = {BAND: BAND_HEADER, FILE: FILE_HEADER, PARITY: BAND_HEADER}.get(ptype)
    if hsize is None:
        raise FormatError(f"invalid stream packet: unknown type {ptype}")
    pay = data[hsize: length - CRC]
    pk = Packet(ptype, stream, image, index, count, data[_COMMON.size:hsize], pay)
    if ptype in (BAND, PARITY):
        if ptype == BAND and (not pay or len(pay) % 4):
            raise FormatError("invalid stream packet: BAND payload is not a positive whole number of words")
        if ptype == PARITY:
            _check_parity(pk)
        geo = pk.geometry()
        geo.check()
        if count > geo.units:
            raise FormatError(f"invalid stream packet: {count} bands for {geo.units} segments")
    else:
        fsize, off = pk.file_fields()
        if not pay or fsize < 1 or fsize > MAX_FILE or off + len(pay) > fsize:
            raise FormatError("invalid stream packet: FILE chunk outside the file")
    return pk


def _check_parity(p: Packet) -> None:
    m = int.from_bytes(p.payload[:2], "little") if len(p.payload) >= 2 else 0
    if not 1 <= m <= p.count or p.index >= m:
        raise FormatError(f"invalid stream packet: parity group {p.index} of {m} for {p.count} bands")
    k = len(range(p.index, p.count, m))
    if len(p.payload) < 2 + 2 * k + 4:
        raise FormatError("invalid stream packet: PARITY payload too short")
    _, lengths, xor = p.parity_fields()
    if min(lengths) < 4 or max(lengths) != len(xor):
        raise FormatError("invalid stream packet: PARITY member lengths do not match its data")


class Deframer:
    """Find packets in a byte stream (TCP): scan for the magic, check length and CRC, else skip one byte."""

    def __init__(self, max_size: int = 65535) -> None:
        self.buf = bytearray()
        self.max_size = max_size
        self.skipped = 0  # bytes dropped while resyncing
        self.rejected = 0  # candidate packets that failed validation

    def feed(self, data: bytes, final: bool = False) -> list[Packet]:
        """Add bytes; return every packet now complete and valid (final: the stream ended, rescan the tail)."""
        self.buf += data
        out: list[Packet] = []
        while True:
            i = self.buf.find(MAGIC)
            if i < 0:
                keep = 1 if self.buf.endswith(MAGIC[:1]) else 0
                self.skipped += len(self.buf) - keep
                del self.buf[: len(self.buf) - keep]
                return out
            if i:
                self.skipped += i
                del self.buf[:i]
            if len(self.buf) < 6:
                if final:
                    self.skipped += len(self.buf)
                    self.buf.clear()
                return out
            length = int.from_bytes(self.buf[4:6], "little")
            if length < _COMMON.size + CRC or length > self.max_size:
                self._slip()
                continue
            if len(self.buf) < length:
                if not final:
                    return out
                self._slip()
                continue
            try:
                out.append(parse(bytes(self.buf[:length])))
            except SymcodecError:
                self._slip()
                continue
            del self.buf[:length]

    def _slip(self) -> None:
        self.rejected += 1
        self.skipped += 1
        del self.buf[:1]
