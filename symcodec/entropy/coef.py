"""Entropy model 4: the levels of the transform mode's 8x8 blocks (formats/sym.md section 5.4, TCTX chunk).

Adaptive binary contexts (from the neighbouring blocks' DC, counts and levels) over the shared rANS coder,
the image cut into strips of 32 block rows of the first plane that code independently. The codebook
holds only each context's starting probability, learned from photographs.
"""
from __future__ import annotations

import struct
from typing import Any

import numpy as np

from ..errors import FormatError
from . import coef_kernels as kern
from .base import EntropyModel
from .rans import RANS_L, check_end, encode_kernel, stream_words

FORMAT = 1  # TCTX payload version
STRIP_ROWS = 32  # block rows of the first plane per strip
_HDR = struct.Struct("<B3x")
_U32 = struct.Struct("<I")


class CoefModel(EntropyModel):
    """Adaptive-context coding of transform levels (entropy model id 4); `initial` (2, 674): starting probabilities."""

    model_id = 4
    tag = b"TCTX"

    def __init__(self, initial: np.ndarray, k: int = 128) -> None:
        init = np.asarray(initial)
        if init.shape != (2, kern.NCTX) or init.min() < kern.P_MIN or init.max() > kern.P_MAX:
            raise FormatError(f"corrupt transform model: {2 * kern.NCTX} initial probabilities in {kern.P_MIN}..{kern.P_MAX} expected")
        self.k = int(k)
        self.initial = np.ascontiguousarray(init, np.int64).ravel()
        self.initial.setflags(write=False)

    @classmethod
    def from_bytes(cls, data: bytes, k: int) -> CoefModel:
        """Parse a TCTX payload."""
        if len(data) != _HDR.size + 4 * kern.NCTX or data[0] != FORMAT:
            raise FormatError("corrupt transform model: TCTX has the wrong size or version")
        return cls(np.frombuffer(data, "<u2", 2 * kern.NCTX, _HDR.size).reshape(2, kern.NCTX), k)

    def to_bytes(self) -> bytes:
        """The TCTX payload."""
        return _HDR.pack(FORMAT) + self.initial.astype("<u2").tobytes()

    # -- layout: plane grids -> strips ----------------------------------------------------------
    def _layout(self, shapes: tuple[tuple[int, int], ...]) -> tuple:
        """(shapes, block offsets of the planes in the flat level array, per strip the block rows of each plane)."""
        offs = np.concatenate([[0], np.cumsum([h * w for h, w in shapes])[:-1]]).astype(np.int64)
        n = -(-shapes[0][0] // STRIP_ROWS)
        strips = []
        for t in range(n):
            rows = []
            for i, (gh, _) in enumerate(shapes):
                per = STRIP_ROWS if i == 0 else STRIP_ROWS // 2
                rows.append((min(t * per, gh), min((t + 1) * per, gh)))
            strips.append(rows)
        return shapes, offs, strips

    @staticmethod
    def plane_kind(i: int) -> int:
        """Plane kind of plane i: 0 for the first (Y or L), 1 for chroma."""
        return 0 if i == 0 else 1

    def strip_parts(self, lv: np.ndarray, layout: Any, t: int) -> list[np.ndarray]:
        """Views of strip t's block rows of each plane, (rows, gw, 64), in a flat level array (blocks x 64)."""
        shapes, offs, strips = layout
        return [lv[offs[i] + r0 * w : offs[i] + r1 * w].reshape(r1 - r0, w, 64) for i, ((r0, r1), (_, w)) in enumerate(zip(strips[t], shapes))]

    def _code(self, parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
        """(starts, frequencies, count, state): events of a strip, and the contexts' final state with bin counts."""
        nblk = sum(q.shape[0] * q.shape[1] for q in parts)
        nnz = sum(int(np.count_nonzero(q)) for q in parts)
        cap = nblk * 112 + 40 * nnz + 64  # per block <= 112 bins besides nonzero levels, <= 40 bins per nonzero
        st, fr = np.empty(cap, np.int32), np.empty(cap, np.int32)
        p = np.concatenate([self.initial, np.zeros(4 * kern.NCTX, np.int64)])  # probabilities, then zeros/ones per context
        ne = 0
        for i, q in enumerate(parts):
            if q.shape[0]:
                ne = kern.encode_plane(np.ascontiguousarray(q, np.int32), np.empty(q.shape[:2], np.int32), p,
                                       kern.NCTX * self.plane_kind(i), st, fr, ne)
                if ne < 0:
                    raise ValueError("a level is out of range (|level| <= 32767, DC residual <= 65535)")
        return st, fr, ne, p

    def strip_events(self, parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
        """Events of one strip from its planes' levels (each (rows, gw, 64) int32, zigzag)."""
        return self._code(parts)[:3]

    def bin_counts(self, parts: list[np.ndarray]) -> np.ndarray:
        """(2 * 674, 2) int64: how many 0 and 1 bins each context codes in this strip (training)."""
        return self._code(parts)[3][2 * kern.NCTX :].reshape(2 * kern.NCTX, 2)

    def strip_stream(self, parts: list[np.ndarray]) -> bytes:
        """The stream of one strip (section 5.0's layout) from its planes' levels."""
        st, fr, ne = self.strip_events(parts)
        out = np.empty(ne + 3, np.uint16)
        m = encode_kernel(st, fr, ne, out)
        w = out[out.size - m :]
        if m % 2:
            w = np.concatenate([w, np.zeros(1, np.uint16)])
        return w.astype("<u2").tobytes()

    def strip_decode(self, data: bytes | memoryview, parts: list[np.ndarray]) -> None:
        """Decode one strip's stream into its planes' level arrays (each (rows, gw, 64) int32); DecodeError if corrupt."""
        words, state = stream_words(data)
        p = self.initial.copy()
        x, wi = np.int64(state), 2
        for i, q in enumerate(parts):
            if q.shape[0]:
                x, wi = kern.decode_plane(words, x, wi, p, kern.NCTX * self.plane_kind(i), q, np.empty(q.shape[:2], np.int32))
                if wi < 0:
                    break
        check_end(wi if x == RANS_L else -1, words, sum(q.shape[0] * q.shape[1] for q in parts))

    def events(self, sym: np.ndarray, layout: Any) -> tuple[np.ndarray, np.ndarray, int]:
        """All strips' events one after another (for code lengths)."""
        lv = np.ascontiguousarray(sym, np.int32).reshape(-1, 64)
        ev = [self.strip_events(self.strip_parts(lv, layout, t)) for t in range(len(layout[2]))]
        return (np.concatenate([s[:n] for s, _, n in ev]), np.concatenate([f[:n] for _, f, n in ev]), sum(n for _, _, n in ev))

    def encode_flat(self, sym: np.ndarray, layout: Any) -> bytes:
        """Strip count, strip lengths, strip streams (the model-4 part of SDAT after the steps)."""
        lv = np.ascontiguousarray(sym, np.int32).reshape(-1, 64)
        return join_strips([self.strip_stream(self.strip_parts(lv, layout, t)) for t in range(len(layout[2]))])

    def decode_flat(self, data: bytes | memoryview, layout: Any) -> np.ndarray:
        """The flat level array (blocks x 64 int32, zigzag) of the strips in `data`."""
        lv = np.empty((sum(h * w for h, w in layout[0]), 64), np.int32)
        for t, part in enumerate(split_strips(data, len(layout[2]))):
            self.strip_decode(part, self.strip_parts(lv, layout, t))
        return lv.ravel()


def join_strips(streams: list[bytes]) -> bytes:
    """n, the n lengths, the n streams (formats/sym.md section 5.4)."""
    return b"".join([_U32.pack(len(streams)), *(_U32.pack(len(s)) for s in streams), *streams])


def split_strips(data: bytes | memoryview, n: int) -> list[memoryview]:
    """The n strip streams of a strip table (FormatError unless it holds exactly n streams, each whole u32s)."""
    b = memoryview(data)
    if len(b) < 4 + 4 * n or _U32.unpack_from(b, 0)[0] != n:
        raise FormatError(f"corrupt .sym: the transform payload does not list the {n} strips its height needs")
    lens = np.frombuffer(b, "<u4", n, 4).astype(np.int64)
    if (lens < 4).any() or (lens % 4).any() or 4 + 4 * n + int(lens.sum()) != len(b):
        raise FormatError("corrupt .sym: transform strip lengths do not add up to the payload")
    ends = 4 + 4 * n + np.cumsum(lens)
    return [b[e - ln : e] for e, ln in zip(ends, lens)]


__all__ = ["CoefModel", "STRIP_ROWS", "join_strips", "split_strips"]
