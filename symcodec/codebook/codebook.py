"""Codebooks (formats/symcb.md): patch codebooks (centroids, counts, a context model) and transform codebooks.

`CodebookFile` holds what both kinds share (name, provenance, the id over the critical chunks, the file
framing); `CodebookFile.from_bytes` (also reachable as `Codebook.from_bytes`) reads either kind.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import threading
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..atomic import atomic_write
from ..entropy import CONTEXT_TAGS, CoefModel, EntropyModel, StaticModel
from ..errors import CodebookError, FormatError
from ..format import chunks
from ..vq.search import Searcher

SIGNATURE = b"\x89SYC\r\n\x1a\n"
MINOR = 0
MAJORS = (1, 2, 3, 4)  # 2 adds CTXM and colour 1, 3 PPMT, 4 transform codebooks (formats/symcb.md, version table)
CONTEXT_CHUNK = {2: b"CTXM", 3: b"PPMT"}  # the context-model chunk each major allows
COLOUR_PLANES = 0  # each channel plane (L, or R, G, B) is cut into patches independently
COLOUR_YCC420 = 1  # RGB as Y, Cb, Cr planes (BT.601 full range), chroma subsampled 2x2 (symcodec.vq.colour)
COLOURS = {COLOUR_PLANES: "planes", COLOUR_YCC420: "ycc420"}
_BASE = frozenset({b"CBHD", b"CENT", b"CNTS", b"name", b"prov"})
_TRANSFORM = frozenset({b"CBHD", b"TQNT", b"TCTX", b"name", b"prov"})
_TQNT = struct.Struct("<B3x")
_HDR = struct.Struct("<IHBBBB")  # K, d, patch_h, patch_w, colour, reserved


class CodebookFile:
    """What both kinds of codebook share: name, provenance, identity and the `.symcb` framing."""

    name: str
    provenance: dict[str, Any]

    @property
    def major(self) -> int:
        """The format major version this codebook needs."""
        raise NotImplementedError

    def _critical_chunks(self) -> list[tuple[bytes, bytes]]:
        raise NotImplementedError

    @cached_property
    def id(self) -> bytes:
        """SHA-256 over the critical chunks (type, length, payload): changes exactly when decoding would."""
        h = hashlib.sha256(b"symcb-v1")
        for ctype, data in self._critical_chunks():
            h.update(ctype + struct.pack("<I", len(data)) + data)
        return h.digest()

    @property
    def hexid(self) -> str:
        """The id as 64 hex digits."""
        return self.id.hex()

    @property
    def short_id(self) -> str:
        """First 12 hex digits of the id, for display."""
        return self.hexid[:12]

    # -- serialisation --------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Serialise to the `.symcb` format (formats/symcb.md)."""
        extra: list[tuple[bytes, bytes]] = []
        if self.name:
            extra.append((b"name", self.name.encode("utf-8")))
        if self.provenance:
            extra.append((b"prov", json.dumps(self.provenance, sort_keys=True).encode("utf-8")))
        return chunks.pack_file(SIGNATURE, self.major, MINOR, self._critical_chunks() + extra)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically (temporary name, then rename)."""
        path = Path(path)
        atomic_write(path, self.to_bytes())
        return path

    @classmethod
    def from_bytes(cls, data: bytes | BinaryIO) -> Codebook | TransformCodebook:
        """Parse a `.symcb` file of either kind; every check happens before any large allocation."""
        fp = chunks.as_stream(data)
        major, _ = chunks.read_preamble(fp, SIGNATURE, MAJORS, "symcodec codebook")
        got: dict[bytes, bytes] = {}
        ctag = CONTEXT_CHUNK.get(major)
        known = _TRANSFORM if major == 4 else (_BASE | {ctag} if ctag else _BASE)
        for ch in chunks.iter_chunks(fp, "codebook", known):
            if ch.type in got:
                msg = f"corrupt codebook: duplicate chunk {ch.type.decode()}"
                raise FormatError(msg)
            got[ch.type] = ch.data
        name = _name(got.get(b"name", b""))
        prov = _provenance(got.get(b"prov"))
        return (TransformCodebook if major == 4 else Codebook)._parse(major, got, name, prov)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Codebook | TransformCodebook:
        """Read a `.symcb` file of either kind (a regular file: a FIFO or device is refused, never waited on)."""
        return cls.from_bytes(read_regular(path))


def _name(raw: bytes) -> str:
    """The `name` chunk; ignored (formats/symcb.md 3) if over 256 bytes or holding control characters or '/'."""
    name = raw.decode("utf-8", "replace")
    return "" if len(raw) > 256 or any(c < " " or c in "/\x7f" for c in name) else name


MAX_PROV = 1 << 20  # bytes of a `prov` chunk a reader parses
MAX_PROV_DEPTH = 32


def _provenance(raw: bytes | None) -> dict[str, Any]:
    """The `prov` chunk as a dict; anything else is ignored (formats/symcb.md 3): over 1 MiB, not UTF-8, not
    JSON, not an object, or brackets nested deeper than 32 (counted in strings too, before any recursion)."""
    if not raw or len(raw) > MAX_PROV:
        return {}
    if _depth(np.frombuffer(raw, np.uint8)) > MAX_PROV_DEPTH:
        return {}
    try:
        prov = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}
    return prov if isinstance(prov, dict) else {}


def _depth(b: np.ndarray) -> int:
    """Deepest bracket nesting of a byte array ([ and { open, ] and } close)."""
    step = ((b == 91) | (b == 123)).astype(np.int32) - ((b == 93) | (b == 125)).astype(np.int32)
    return int(np.cumsum(step).max(initial=0))


def read_regular(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a regular file; CodebookError for a FIFO, device or folder (opened without blocking, then checked)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            msg = f"codebook file {os.fspath(path)} is not a regular file"
            raise CodebookError(msg)
        with os.fdopen(fd, "rb", closefd=False) as fp:
            return fp.read()
    finally:
        os.close(fd)



def _header(got: dict[bytes, bytes], needs: tuple[bytes, ...]) -> tuple[int, int, int, int]:
    """(K, d, p, colour) from CBHD, once every chunk in `needs` is present."""
    for need in needs:
        if need not in got:
            msg = f"corrupt codebook: missing chunk {need.decode()}"
            raise FormatError(msg)
    if len(got[b"CBHD"]) != _HDR.size:
        msg = "corrupt codebook: bad CBHD length"
        raise FormatError(msg)
    k, d, ph, pw, colour, _ = _HDR.unpack(got[b"CBHD"])
    if ph != pw or d != ph * pw:
        msg = f"corrupt codebook: inconsistent geometry {ph}x{pw}, d={d}"
        raise FormatError(msg)
    return k, d, ph, colour


class Codebook(CodebookFile):
    """A k-means codebook over p x p patches with values in [0, 1], its symbol counts and at most one context model.

    `context` is an entropy model (2 or 3) or the (tag, payload) of its chunk as read from a file; its
    tables (megabytes) are parsed and checked on first use, so scanning the registry stays fast and small.
    """

    def __init__(
        self,
        centroids: np.ndarray,
        patch: int = 2,
        counts: np.ndarray | None = None,
        colour: int = COLOUR_PLANES,
        name: str = "",
        provenance: dict[str, Any] | None = None,
        context: EntropyModel | tuple[bytes, bytes] | None = None,
    ) -> None:
        cent = np.ascontiguousarray(centroids, dtype="<f4")
        if cent.ndim != 2 or cent.shape[1] != patch * patch:
            msg = f"centroids must have shape (K, {patch * patch}) for {patch}x{patch} patches, got {cent.shape}"
            raise CodebookError(msg)
        if patch not in (2, 4, 8):
            msg = f"patch size {patch} not supported, expected one of (2, 4, 8)"
            raise CodebookError(msg)
        if not 2 <= cent.shape[0] <= 65536:
            msg = f"codebook size K={cent.shape[0]} outside 2..65536"
            raise CodebookError(msg)
        if not np.isfinite(cent).all() or cent.min() < 0.0 or cent.max() > 1.0:
            msg = "centroids must be finite pixel values in [0, 1]"
            raise CodebookError(msg)
        if colour not in COLOURS:
            msg = f"unknown colour mode {colour}, expected one of {sorted(COLOURS)}"
            raise CodebookError(msg)
        if counts is None:
            counts = np.ones(cent.shape[0], np.uint32)
        counts = np.ascontiguousarray(counts, dtype="<u4")
        if counts.shape != (cent.shape[0],) or int(counts.min()) < 1:
            msg = "symbol counts must hold K values, each >= 1"
            raise CodebookError(msg)
        self.centroids = cent
        self.centroids.setflags(write=False)
        self.counts = counts
        self.counts.setflags(write=False)
        self.patch = patch
        self.colour = colour
        self.name = name
        self.provenance = dict(provenance or {})
        self.context_chunk: tuple[bytes, bytes] | None = None  # (tag, payload) of the CTXM or PPMT chunk
        if isinstance(context, EntropyModel):
            if context.tag not in CONTEXT_TAGS or context.k != self.k:
                msg = f"a context model for K={self.k} (entropy model 2 or 3) expected"
                raise CodebookError(msg)
            self.context_chunk = (context.tag, context.to_bytes())
            self.__dict__["context"] = context
        elif context is not None:
            tag, payload = context
            if tag not in CONTEXT_TAGS:
                msg = f"unknown context-model chunk {tag!r}"
                raise CodebookError(msg)
            self.context_chunk = (tag, bytes(payload))  # parsed on first use (`context`), never by a registry scan
        self._lock = threading.Lock()

    # -- identity -------------------------------------------------------------------------
    @property
    def k(self) -> int:
        """Number of centroids."""
        return int(self.centroids.shape[0])

    @property
    def dim(self) -> int:
        """Values per patch (p * p)."""
        return self.patch * self.patch

    def _critical_chunks(self) -> list[tuple[bytes, bytes]]:
        hdr = _HDR.pack(self.k, self.dim, self.patch, self.patch, self.colour, 0)
        out = [(b"CBHD", hdr), (b"CENT", self.centroids.tobytes()), (b"CNTS", self.counts.tobytes())]
        if self.context_chunk is not None:
            out.append(self.context_chunk)
        return out

    @property
    def major(self) -> int:
        """Format major version this codebook needs: 3 with a PPMT model, 2 with a CTXM model or colour 1, else 1."""
        if self.context_chunk is not None:
            return 3 if self.context_chunk[0] == b"PPMT" else 2
        return 2 if self.colour != COLOUR_PLANES else 1

    def __repr__(self) -> str:
        return f"Codebook(name={self.name!r}, K={self.k}, patch={self.patch}, id={self.short_id})"

    @classmethod
    def _parse(cls, major: int, got: dict[bytes, bytes], name: str, prov: dict[str, Any]) -> Codebook:
        k, d, ph, colour = _header(got, (b"CBHD", b"CENT", b"CNTS"))
        if len(got[b"CENT"]) != k * d * 4 or len(got[b"CNTS"]) != k * 4:
            msg = "corrupt codebook: table sizes do not match K and d"
            raise FormatError(msg)
        cent = np.frombuffer(got[b"CENT"], dtype="<f4").reshape(k, d)
        counts = np.frombuffer(got[b"CNTS"], dtype="<u4")
        if major == 3 and b"PPMT" not in got:
            msg = "corrupt codebook: version 3 without a PPMT chunk"
            raise FormatError(msg)
        if major == 1 and colour != COLOUR_PLANES:
            msg = f"corrupt codebook: colour {colour} needs format version 2"
            raise FormatError(msg)
        ctag = CONTEXT_CHUNK.get(major)
        ctx = (ctag, got[ctag]) if ctag in got else None
        try:
            return cls(cent, patch=ph, counts=counts, colour=colour, name=name, provenance=prov, context=ctx)
        except CodebookError as exc:
            msg = f"corrupt codebook: {exc}"
            raise FormatError(msg) from None

    # -- derived tables (lazy, cached) ----------------------------------------------------
    @cached_property
    def table_u8(self) -> np.ndarray:
        """Centroids as 8-bit pixels: clamp(rint(c * 255)) in float32, as the spec says."""
        return np.clip(np.rint(self.centroids * np.float32(255)), 0, 255).astype(np.uint8)

    @cached_property
    def table_mean_u8(self) -> np.ndarray:
        """Each centroid's mean as an 8-bit pixel (the 1/p-scale preview)."""
        m = self.centroids.mean(axis=1, dtype=np.float32)
        return np.clip(np.rint(m * np.float32(255)), 0, 255).astype(np.uint8)

    @cached_property
    def static(self) -> StaticModel:
        """Entropy model 1: the static table of the symbol counts."""
        return StaticModel(self.counts)

    @cached_property
    def context(self) -> EntropyModel | None:
        """The context model (entropy model 2 from CTXM, 3 from PPMT), parsed on first use; None without one."""
        if self.context_chunk is None:
            return None
        tag, payload = self.context_chunk
        try:
            return CONTEXT_TAGS[tag].from_bytes(payload, self.k)
        except FormatError as exc:
            raise CodebookError(str(exc)) from None

    @property
    def entropy(self) -> EntropyModel:
        """The model new files are coded with: the context model if there is one, else the static table."""
        return self.context or self.static

    def model(self, model_id: int) -> EntropyModel:
        """The model that decodes files of this entropy model id (FormatError if this codebook has none)."""
        if model_id == 1:
            return self.static
        if self.context_chunk is not None and CONTEXT_TAGS[self.context_chunk[0]].model_id == model_id:
            return self.context  # type: ignore[return-value]
        msg = f"entropy model {model_id} is not supported by this codebook (it needs a codebook with that context model)"
        raise FormatError(msg)

    @property
    def searcher(self) -> Searcher:
        """The exact nearest-centroid searcher (built on first use, about 0.3 s for K=2048)."""
        s = self.__dict__.get("_searcher")
        if s is not None:
            return s
        with self._lock:
            if "_searcher" not in self.__dict__:
                self.__dict__["_searcher"] = Searcher(self.centroids, self.patch)
            return self.__dict__["_searcher"]


class TransformCodebook(CodebookFile):
    """A transform codebook (formats/symcb.md version 4.0): the learned parts of the photo mode.

    `offsets` (2, 3, 64): the reconstruction offsets O[c][m][z] of the per-frequency scalar codebooks (plane
    kind, level magnitude 1 / 2 / >= 3, zigzag position), in 1/256 of a step; `model`: entropy model 4 with its
    initial context probabilities. The steps travel in each file (formats/sym.md section 5.4).
    """

    k = 128  # scalar codebooks: 2 plane kinds x 64 frequencies
    patch = 8
    dim = 64
    colour = COLOUR_YCC420
    major = 4
    context_chunk = None

    def __init__(self, offsets: np.ndarray, model: CoefModel, name: str = "", provenance: dict[str, Any] | None = None) -> None:
        off = np.asarray(offsets)
        if off.shape != (2, 3, 64) or np.abs(off).max() > 128:
            msg = "transform codebook offsets must be (2, 3, 64) values in -128..128"
            raise CodebookError(msg)
        self.offsets = np.ascontiguousarray(off, np.int64)
        self.offsets.setflags(write=False)
        self.entropy = model
        self.name = name
        self.provenance = dict(provenance or {})

    def __repr__(self) -> str:
        return f"TransformCodebook(name={self.name!r}, id={self.short_id})"

    def _critical_chunks(self) -> list[tuple[bytes, bytes]]:
        hdr = _HDR.pack(self.k, self.dim, self.patch, self.patch, self.colour, 0)
        return [(b"CBHD", hdr), (b"TQNT", _TQNT.pack(1) + self.offsets.astype("<i2").tobytes()), (b"TCTX", self.entropy.to_bytes())]

    @classmethod
    def _parse(cls, major: int, got: dict[bytes, bytes], name: str, prov: dict[str, Any]) -> TransformCodebook:
        if (k := _header(got, (b"CBHD", b"TQNT", b"TCTX"))) != (cls.k, cls.dim, cls.patch, cls.colour):
            msg = f"corrupt codebook: a transform codebook has K 128, 8x8 patches and colour 1, not {k}"
            raise FormatError(msg)
        tq = got[b"TQNT"]
        if len(tq) != _TQNT.size + 2 * 3 * 64 * 2 or tq[0] != 1:
            msg = "corrupt codebook: TQNT has the wrong size or version"
            raise FormatError(msg)
        off = np.frombuffer(tq, "<i2", 2 * 3 * 64, _TQNT.size).reshape(2, 3, 64)
        try:
            return cls(off, CoefModel.from_bytes(got[b"TCTX"], cls.k), name=name, provenance=prov)
        except CodebookError as exc:
            msg = f"corrupt codebook: {exc}"
            raise FormatError(msg) from None

    def model(self, model_id: int) -> EntropyModel:
        """The model that decodes files of this entropy model id (only 4)."""
        if model_id == CoefModel.model_id:
            return self.entropy
        msg = f"entropy model {model_id} is not supported by this codebook (a transform codebook codes model 4)"
        raise FormatError(msg)
