"""Codecs compared by `symcodec eval`: .sym with a codebook, and Pillow's JPEG and WebP (as CompressAI's bench).

Each codec turns one uint8 image (H,W,C) into real file bytes (all headers included) and back.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL
from PIL import Image, features

from ..codebook import registry
from ..codec.decoder import decode
from ..codec.encoder import encode
from ..errors import SymcodecError
from ..version import __version__

__all__ = ["CodecSetting", "parse_codec", "PILLOW_FORMATS"]

PILLOW_FORMATS = {"jpeg": "JPEG", "webp": "WEBP"}


@dataclass
class CodecSetting:
    """One codec at one setting (a quality, or a codebook)."""

    codec: str
    setting: str
    description: str
    _obj: Any = None

    @property
    def label(self) -> str:
        """Short label, e.g. `jpeg q50` or `sym cifar10-2x2-k2048`."""
        return f"{self.codec} q{self.setting}" if self.codec in PILLOW_FORMATS else f"{self.codec} {self.setting}"

    def encode(self, img: np.ndarray) -> bytes:
        """Encode an (H,W,C) uint8 image to file bytes."""
        if self.codec == "sym":
            return encode(img, self._obj)
        buf = io.BytesIO()
        _to_pil(img).save(buf, format=PILLOW_FORMATS[self.codec], quality=int(self.setting))
        return buf.getvalue()

    def decode(self, data: bytes, channels: int) -> np.ndarray:
        """Decode file bytes to an (H,W,channels) uint8 array."""
        if self.codec == "sym":
            a = decode(data, self._obj)
        else:
            with Image.open(io.BytesIO(data)) as im:
                a = np.asarray(im.convert("L" if channels == 1 else "RGB"))
        return a if a.ndim == 3 else a[:, :, None]


def _to_pil(img: np.ndarray) -> Image.Image:
    return Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)


def parse_codec(spec: str) -> list[CodecSetting]:
    """`sym:CB1,CB2` / `jpeg:10,50,90` / `webp:...` -> one CodecSetting per value."""
    name, _, values = spec.partition(":")
    name = name.strip().lower()
    vals = [v.strip() for v in values.split(",") if v.strip()]
    if not vals:
        msg = f"codec spec {spec!r} has no settings (expected e.g. jpeg:10,50,90 or sym:cifar10-2x2-k2048)"
        raise SymcodecError(msg)
    if name == "sym":
        out = []
        for v in vals:
            cb = registry.get(v)
            kind = ("YCbCr 4:2:0" if cb.colour == 1 else "per-channel") + (
                f", entropy model {cb.entropy.model_id}" if cb.context_chunk is not None else ", static table")
            out.append(CodecSetting("sym", v, f"symcodec {__version__}, codebook {cb.name or v} {cb.short_id} (K={cb.k}, "
                                    f"{cb.patch}x{cb.patch} patches, {kind}), rANS-coded .sym, header included", cb))
        return out
    if name in PILLOW_FORMATS:
        if name == "webp" and not features.check("webp"):
            msg = "this Pillow build has no WebP support"
            raise SymcodecError(msg)
        for v in vals:
            if not v.isdigit() or not 0 <= int(v) <= 100:
                msg = f"{name} quality must be an integer 0..100, got {v!r}"
                raise SymcodecError(msg)
        desc = f"Pillow {PIL.__version__} {PILLOW_FORMATS[name]} (library defaults" + (
            ", 4:2:0 chroma, standard Huffman tables)" if name == "jpeg" else ", lossy, method 4)")
        return [CodecSetting(name, str(int(v)), desc) for v in sorted(vals, key=int)]
    msg = f"unknown codec {name!r} (known: sym, jpeg, webp)"
    raise SymcodecError(msg)
