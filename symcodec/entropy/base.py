"""The entropy-model protocol (formats/sym.md section 5) and what every model shares.

A model codes the symbols of an image's planes, plane after plane in row-major order, as one rANS
stream. Each model class has a `model_id` (HEAD's entropy model id, which is also the `.sym` major
version) and a codebook chunk `tag` that holds its tables; `from_bytes`/`to_bytes` read and write that
chunk. `layout(shapes)` prepares (and caches) whatever a model needs for planes of given grid shapes;
`encode_flat`/`decode_flat` code the planes concatenated into one int array, the form the codec keeps
them in; `encode(planes)`/`decode(data, shapes)` are the same on a list of 2-D planes.
"""
from __future__ import annotations

import struct
import zlib
from typing import Any, ClassVar, Sequence

import numpy as np

from ..errors import FormatError
from .rans import PREC

MAX_RAW = 1 << 28  # largest inflated table chunk (CTXM, PPMT) a reader accepts
MAX_RATIO, RATIO_SLACK = 16, 1 << 16  # and at most 16x its compressed bytes plus 64 KiB
_MAX_LAYOUTS = 64


class EntropyModel:
    """Base class of the entropy models: the protocol, layout caching, plane helpers and code lengths."""

    model_id: ClassVar[int]
    tag: ClassVar[bytes]
    k: int

    @classmethod
    def from_bytes(cls, data: bytes, k: int) -> EntropyModel:
        """Parse the model's codebook chunk for a codebook of K centroids (FormatError if invalid)."""
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """The model's codebook chunk payload."""
        raise NotImplementedError

    def _layout(self, shapes: tuple[tuple[int, int], ...]) -> Any:
        raise NotImplementedError

    def events(self, sym: np.ndarray, layout: Any) -> tuple[np.ndarray, np.ndarray, int]:
        """The (starts, frequencies, count) of the rANS events that code `sym` (for code lengths)."""
        raise NotImplementedError

    def encode_flat(self, sym: np.ndarray, layout: Any) -> bytes:
        """The stream of the planes concatenated into `sym` (int32 or int64), given their `layout`."""
        raise NotImplementedError

    def decode_flat(self, data: bytes | memoryview, layout: Any) -> np.ndarray:
        """The planes of `layout`, concatenated (int32), from a stream (DecodeError if it is corrupt)."""
        raise NotImplementedError

    def layout(self, shapes: Sequence[tuple[int, int]]) -> Any:
        """What coding planes of these (rows, columns) grid shapes needs; cached per shapes."""
        key = tuple((int(h), int(w)) for h, w in shapes)
        cache = self.__dict__.setdefault("_layouts", {})
        lay = cache.get(key)
        if lay is None:
            if len(cache) >= _MAX_LAYOUTS:
                cache.clear()
            lay = cache[key] = self._layout(key)
        return lay

    def encode(self, planes: Sequence[np.ndarray]) -> bytes:
        """rANS-code planes (each (gh, gw), coded in order)."""
        sym = np.concatenate([np.asarray(p).ravel() for p in planes]).astype(np.int64, copy=False)
        return self.encode_flat(sym, self.layout([np.shape(p) for p in planes]))

    def decode(self, data: bytes | memoryview, shapes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        """Decode planes of the given grid shapes from a stream written by `encode`."""
        sym = self.decode_flat(data, self.layout(shapes))
        out, o = [], 0
        for h, w in shapes:
            out.append(sym[o : o + h * w].reshape(h, w))
            o += h * w
        return out

    def code_length(self, planes: Sequence[np.ndarray]) -> float:
        """Ideal code length in bits of the planes under this model (what rANS writes, less ~32 bits)."""
        sym = np.concatenate([np.asarray(p).ravel() for p in planes]).astype(np.int64, copy=False)
        _, freqs, n = self.events(sym, self.layout([np.shape(p) for p in planes]))
        return float(np.sum(PREC - np.log2(np.asarray(freqs[:n], np.float64))))


def deflate(raw: bytes) -> bytes:
    """A table chunk's payload: u32 raw length, then a zlib stream of the raw tables."""
    return struct.pack("<I", len(raw)) + zlib.compress(raw, 9)


def inflate(data: bytes, tag: bytes) -> bytes:
    """The raw tables of a table chunk, inflated with the claimed length checked first (FormatError)."""
    what = f"corrupt context model: {tag.decode()}"
    if len(data) < 4:
        raise FormatError(f"{what} too short")
    (n_raw,) = struct.unpack_from("<I", data)
    if n_raw > MAX_RAW:
        raise FormatError(f"{what} claims too many bytes")
    if n_raw > MAX_RATIO * (len(data) - 4) + RATIO_SLACK:  # a bomb: real tables deflate about 2:1 (formats/symcb.md 3)
        raise FormatError(f"{what} claims {n_raw} bytes from {len(data) - 4} compressed (over {MAX_RATIO}:1)")
    try:
        raw = zlib.decompressobj().decompress(data[4:], n_raw + 1)
    except zlib.error:
        raise FormatError(f"{what} does not inflate") from None
    if len(raw) != n_raw:
        raise FormatError(f"{what} length mismatch")
    return raw


def geometry(shapes: Sequence[tuple[int, int]]) -> tuple[np.ndarray, ...]:
    """Plane offsets, grid sizes, and row/column maps between planes: (i * size_q) // size_p (sections 5.2, 5.3)."""
    gh = np.array([s[0] for s in shapes], np.int64)
    gw = np.array([s[1] for s in shapes], np.int64)
    off = np.concatenate([[0], np.cumsum(gh * gw)[:-1]]).astype(np.int64)
    ymap = (np.arange(gh.max())[None, None, :] * gh[None, :, None]) // gh[:, None, None]
    xmap = (np.arange(gw.max())[None, None, :] * gw[None, :, None]) // gw[:, None, None]
    return off, gh, gw, np.ascontiguousarray(ymap), np.ascontiguousarray(xmap)
