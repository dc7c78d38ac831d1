"""Codebooks: centroids, patch geometry, colour handling, provenance and the entropy table."""
from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import threading
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from . import chunks
from .entropy import StaticModel
from .errors import CodebookError, FormatError

SIGNATURE = b"\x89SYC\r\n\x1a\n"
MAJOR, MINOR = 1, 0
MAJOR_CTX = 2  # version 2.0 adds the critical CTXM chunk and colour 1 (formats/codebook-v2.md)
MAJOR_PPM = 3  # version 3.0 adds the critical PPMT chunk: entropy model 3 (formats/codebook-v3.md)
COLOUR_PLANES = 0  # each channel plane (L, or R, G, B) is cut into patches independently
COLOUR_YCC420 = 1  # RGB as Y, Cb, Cr planes (BT.601 full range), chroma subsampled 2x2 (symcodec.colour)
COLOURS = {COLOUR_PLANES: "planes", COLOUR_YCC420: "ycc420"}
KNOWN = frozenset({b"CBHD", b"CENT", b"CNTS", b"CTXM", b"PPMT", b"name", b"prov"})
_HDR = struct.Struct("<IHBBBB")  # K, d, patch_h, patch_w, colour, reserved


class Codebook:
    """A k-means codebook over p x p patches with values in [0, 1], plus its symbol table."""

    def __init__(
        self,
        centroids: np.ndarray,
        patch: int = 2,
        counts: np.ndarray | None = None,
        colour: int = COLOUR_PLANES,
        name: str = "",
        provenance: dict[str, Any] | None = None,
        context: bytes | None = None,
        ppm: bytes | None = None,
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
        self.context = bytes(context) if context is not None else None  # raw CTXM payload (entropy model 2)
        self.ppm = bytes(ppm) if ppm is not None else None  # raw PPMT payload (entropy model 3)
        if self.context is not None and self.ppm is not None:
            msg = "a codebook carries at most one context model (CTXM or PPMT)"
            raise CodebookError(msg)
        if self.context is not None:
            self.context_model  # noqa: B018  (parse now: a bad table is a CodebookError here, not at decode)
        # a PPMT table (megabytes) is parsed and checked on first use, so scanning the registry stays fast
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
        if self.context is not None:
            out.append((b"CTXM", self.context))
        if self.ppm is not None:
            out.append((b"PPMT", self.ppm))
        return out

    @property
    def major(self) -> int:
        """Format major version this codebook needs: 1, 2 with a CTXM model or colour 1, 3 with a PPMT model."""
        if self.ppm is not None:
            return MAJOR_PPM
        return MAJOR_CTX if (self.context is not None or self.colour != COLOUR_PLANES) else MAJOR

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

    def __repr__(self) -> str:
        return f"Codebook(name={self.name!r}, K={self.k}, patch={self.patch}, id={self.short_id})"

    # -- serialisation --------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Serialise to the `.symcb` format (formats/codebook-v1.md)."""
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
    def from_bytes(cls, data: bytes | BinaryIO) -> Codebook:
        """Parse a `.symcb` file; every check happens before any large allocation."""

        fp = chunks.as_stream(data)
        major, _ = chunks.read_preamble(fp, SIGNATURE, (MAJOR, MAJOR_CTX, MAJOR_PPM), "symcodec codebook")
        got: dict[bytes, bytes] = {}
        known = {MAJOR: KNOWN - {b"CTXM", b"PPMT"}, MAJOR_CTX: KNOWN - {b"PPMT"}, MAJOR_PPM: KNOWN - {b"CTXM"}}[major]
        for ch in chunks.iter_chunks(fp, "codebook", known):
            if ch.type in got:
                msg = f"corrupt codebook: duplicate chunk {ch.type.decode()}"
                raise FormatError(msg)
            got[ch.type] = ch.data
        for need in (b"CBHD", b"CENT", b"CNTS"):
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
        if len(got[b"CENT"]) != k * d * 4 or len(got[b"CNTS"]) != k * 4:
            msg = "corrupt codebook: table sizes do not match K and d"
            raise FormatError(msg)
        cent = np.frombuffer(got[b"CENT"], dtype="<f4").reshape(k, d)
        counts = np.frombuffer(got[b"CNTS"], dtype="<u4")
        name = got.get(b"name", b"").decode("utf-8", "replace")
        prov: dict[str, Any] = {}
        if b"prov" in got:
            try:
                prov = json.loads(got[b"prov"].decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                prov = {}
        if major == MAJOR_PPM and b"PPMT" not in got:
            msg = "corrupt codebook: version 3 without a PPMT chunk"
            raise FormatError(msg)
        if major == MAJOR and colour != COLOUR_PLANES:
            msg = f"corrupt codebook: colour {colour} needs format version 2"
            raise FormatError(msg)
        try:
            return cls(cent, patch=ph, counts=counts, colour=colour, name=name, provenance=prov, context=got.get(b"CTXM"),
                       ppm=got.get(b"PPMT"))
        except CodebookError as exc:
            msg = f"corrupt codebook: {exc}"
            raise FormatError(msg) from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Codebook:
        """Read a `.symcb` file."""
        with open(path, "rb") as fp:
            return cls.from_bytes(fp)

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
    def model(self) -> StaticModel:
        """The static entropy model (entropy model id 1)."""
        return StaticModel(self.counts)

    @cached_property
    def context_model(self) -> Any:
        """The context model: entropy model 2 from the CTXM chunk, model 3 from the PPMT chunk, or None."""
        if self.context is None and self.ppm is None:
            return None
        from .context import ContextModel
        from .ppm import PPMModel

        try:
            if self.ppm is not None:
                return PPMModel.from_bytes(self.ppm, self.k)
            return ContextModel.from_bytes(self.context, self.k)
        except FormatError as exc:
            raise CodebookError(str(exc)) from None

    @property
    def searcher(self) -> Any:
        """The exact nearest-centroid searcher (built on first use, about 0.5 s for K=2048)."""
        s = self.__dict__.get("_searcher")
        if s is not None:
            return s
        with self._lock:
            if "_searcher" not in self.__dict__:
                from .search import Searcher

                self.__dict__["_searcher"] = Searcher(self.centroids, self.patch)
            return self.__dict__["_searcher"]


def atomic_write(path: Path, data: bytes) -> None:
    """Write bytes to a temporary file beside `path`, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
