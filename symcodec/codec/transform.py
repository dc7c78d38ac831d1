"""The transform mode's encoder and decoder (formats/sym.md sections 4.3 and 5.4): photographs as levels of 8x8 DCT blocks.

One `TransformEncoder` per (codebook, size, mode, steps) and one `TransformDecoder` per (codebook, HEAD)
hold the framed HEAD, the plane grids and the strip layout. Strips (256 image rows) are independent, so
both run them on `threads` threads, and the decoder never holds more than the planes and one strip's
levels per thread besides the output image.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..codebook.codebook import TransformCodebook
from ..entropy.coef import CoefModel, join_strips, split_strips
from ..errors import FormatError, UnsupportedModeError
from ..format import sym
from ..vq.colour import chroma_size, rgb_to_planes
from ..vq.patches import block_mean
from ..vq.transform import DEAD_ZONE, forward_levels, reconstruct_rows, smooth_rgb, steps_for_quality

STEPS = 128  # bytes of steps at the start of a model-4 payload


def _map(fn: Any, items: list, threads: int) -> list:
    if threads <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(min(threads, len(items))) as pool:
        return list(pool.map(fn, items))


def check_steps(steps: np.ndarray) -> np.ndarray:
    """(2, 64) uint8 steps, natural order, each >= 1 (UnsupportedModeError otherwise)."""
    s = np.asarray(steps)
    if s.shape != (2, 64) or s.min() < 1 or s.max() > 255:
        msg = "transform steps must be two tables of 64 values in 1..255 (luma, chroma; natural order)"
        raise UnsupportedModeError(msg)
    return np.ascontiguousarray(s, np.uint8)


class TransformEncoder:
    """Encodes images of one size and mode with a transform codebook and one pair of step tables."""

    def __init__(self, cb: TransformCodebook, width: int, height: int, mode: str, steps: np.ndarray | None = None) -> None:
        sym.check_encodable(width, height, mode)
        self.cb, self.mode, self.planes = cb, mode, sym.PLANES[mode]
        self.model: CoefModel = cb.entropy
        self.steps = check_steps(steps_for_quality(75) if steps is None else steps)
        colour = 1 if self.planes == 3 else 0
        hdr = sym.Header(width, height, mode, 8, colour, CoefModel.model_id, cb.k, cb.id, 0)
        self.grids = hdr.plane_grids
        self.header = sym.Header(width, height, mode, 8, colour, CoefModel.model_id, cb.k, cb.id, sum(h * w for h, w in self.grids))
        self.start = sym.head(self.header)
        self.layout = self.model.layout(self.grids)

    def planes_of(self, a: np.ndarray) -> list[np.ndarray]:
        """The coded planes of an (H, W, C) uint8 image: Y, Cb, Cr (section 4.2's conversion) or L."""
        if self.planes == 3:
            return rgb_to_planes(np.ascontiguousarray(a[:, :, :3]))
        return [np.ascontiguousarray(a[:, :, 0])]

    def strip_levels(self, planes: list[np.ndarray], t: int) -> list[np.ndarray]:
        """Levels (rows, gw, 64) int32 of strip t's block rows of each plane."""
        out = []
        for i, ((r0, r1), (_, gw)) in enumerate(zip(self.layout[2][t], self.grids)):
            lv = np.empty((r1 - r0, gw, 64), np.int32)
            forward_levels(planes[i], self.steps[CoefModel.plane_kind(i)], DEAD_ZONE, r0, r1, lv)
            out.append(lv)
        return out

    def levels(self, a: np.ndarray) -> np.ndarray:
        """All levels of one image: (blocks, 64) int32, planes one after another, blocks in raster order, zigzag."""
        planes = self.planes_of(a)
        parts = [[] for _ in self.grids]
        for t in range(len(self.layout[2])):
            for i, lv in enumerate(self.strip_levels(planes, t)):
                parts[i].append(lv.reshape(-1, 64))
        return np.concatenate([np.concatenate(p) for p in parts])

    def payload(self, a: np.ndarray, threads: int = 1) -> bytes:
        """The SDAT payload of one (H, W, C) uint8 image: steps, strip table, strip streams."""
        planes = self.planes_of(a)
        streams = _map(lambda t: self.model.strip_stream(self.strip_levels(planes, t)), list(range(len(self.layout[2]))), threads)
        return self.steps.tobytes() + join_strips(streams)

    def frame(self, payload: bytes, a: np.ndarray, meta: dict[str, bytes] | None = None, text: dict[str, str] | None = None,
              embed_codebook: bool = False) -> bytes:
        """The `.sym` file of a payload, with the image's alpha plane (if `a` has one), metadata and codebook."""
        if a.shape[2] == self.planes and not (meta or text or embed_codebook):
            return sym.pack(self.header, payload, start=self.start)
        m = meta or {}
        return sym.pack(self.header, payload, alpha=sym.deflate_alpha(a[:, :, self.planes]) if a.shape[2] > self.planes else None,
                        codebook=self.cb.to_bytes() if embed_codebook else None, icc_profile=m.get("icc_profile"),
                        exif=m.get("exif"), xmp=m.get("xmp"), text=text, start=self.start)

    def encode(self, a: np.ndarray, meta: dict[str, bytes] | None = None, text: dict[str, str] | None = None,
               embed_codebook: bool = False, threads: int = 1, compact: bool = False) -> bytes:
        """The `.sym` bytes of one (H, W, C) uint8 image of this encoder's size and mode (`compact` is moot: model 4 is chunked)."""
        return self.frame(self.payload(a, threads), a, meta, text, embed_codebook)

    def encode_batch(self, batch: np.ndarray, metas: list[dict[str, bytes]] | None = None, embed_codebook: bool = False,
                     threads: int = 1, compact: bool = False) -> list[bytes]:
        """The `.sym` bytes of each image of a (N, H, W, C) batch."""
        return [self.encode(batch[i], metas[i] if metas else None, None, embed_codebook, threads) for i in range(len(batch))]


class TransformDecoder:
    """Decodes model-4 payloads of one header with one transform codebook."""

    def __init__(self, cb: TransformCodebook, hdr: sym.Header) -> None:
        if hdr.patch != 8 or hdr.k != cb.k:
            msg = "corrupt .sym: codebook K or patch size does not match HEAD"
            raise FormatError(msg)
        self.cb, self.header = cb, hdr
        self.model: CoefModel = cb.model(hdr.model_id)  # type: ignore[assignment]
        self.grids = hdr.plane_grids
        self.layout = self.model.layout(self.grids)

    def _split(self, payload: bytes) -> tuple[np.ndarray, list[memoryview]]:
        if len(payload) < STEPS:
            msg = "corrupt .sym: the transform payload is shorter than its step tables"
            raise FormatError(msg)
        steps = np.frombuffer(payload, np.uint8, STEPS).reshape(2, 64)
        if steps.min() < 1:
            msg = "corrupt .sym: a transform step is 0"
            raise FormatError(msg)
        return steps, split_strips(memoryview(payload)[STEPS:], len(self.layout[2]))

    def levels(self, payload: bytes) -> np.ndarray:
        """All levels, (blocks, 64) int32 (DecodeError if the payload is corrupt)."""
        _, streams = self._split(payload)
        lv = np.empty((sum(h * w for h, w in self.grids), 64), np.int32)
        for t, data in enumerate(streams):
            self.model.strip_decode(data, self.model.strip_parts(lv, self.layout, t))
        return lv

    def planes(self, payload: bytes, threads: int = 1) -> list[np.ndarray]:
        """The decoded uint8 planes (Y, Cb, Cr, or L), strip by strip, on `threads` threads."""
        steps, streams = self._split(payload)
        hdr = self.header
        sizes = [(hdr.height, hdr.width)] + ([chroma_size(hdr.height, hdr.width)] * 2 if hdr.colour == 1 else [])
        planes = [np.empty(s, np.uint8) for s in sizes]
        off = self.cb.offsets

        def strip(t: int) -> None:
            rows = self.layout[2][t]
            parts = [np.empty((r1 - r0, gw, 64), np.int32) for (r0, r1), (_, gw) in zip(rows, self.grids)]
            self.model.strip_decode(streams[t], parts)
            for i, ((r0, _), lv) in enumerate(zip(rows, parts)):
                k = CoefModel.plane_kind(i)
                reconstruct_rows(lv, steps[k], off[k], planes[i], r0)

        _map(strip, list(range(len(streams))), threads)
        return planes

    def pixels(self, payload: bytes, threads: int = 1) -> np.ndarray:
        """(H, W, planes) uint8 pixels, no alpha (section 4.3)."""
        pl = self.planes(payload, threads)
        if self.header.colour == 0:
            return pl[0][:, :, None]
        h, w = self.header.height, self.header.width
        out = np.empty((h, w, 3), np.uint8)
        bands = [(r, min(h, r + 256)) for r in range(0, h, 256)]
        _map(lambda b: smooth_rgb(pl[0], pl[1], pl[2], out, b[0], b[1]), bands, threads)
        return out

    def image(self, payload: bytes, threads: int = 1) -> np.ndarray:
        """(H, W, planes) uint8 pixels of a payload."""
        return self.pixels(payload, threads)

    def symbols(self, payload: bytes) -> np.ndarray:
        """The levels (proves the payload decodes; DecodeError if not)."""
        return self.levels(payload)

    def preview_image(self, payload: bytes) -> np.ndarray:
        """The 1/8-scale preview: each 8x8 block's mean."""
        px = self.pixels(payload)
        return np.stack([block_mean(px[:, :, c], 8) for c in range(px.shape[2])], -1)

    def decode(self, payload: bytes, threads: int = 1) -> np.ndarray:
        """Pixels of a file without alpha: (H, W) for L, (H, W, 3) otherwise."""
        out = self.pixels(payload, threads)
        return out[:, :, 0] if self.header.mode == "L" else out

