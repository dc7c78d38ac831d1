"""Codec settings as round trips: .sym and Pillow's JPEG, WebP, AVIF and JPEG XL (what `symcodec eval` compares, as CompressAI's bench).

Each codec turns one uint8 image (H,W,C) into real file bytes (all headers included) and back. Settings:
`sym:CB[,CB...]` (codebooks), `sym:q30,q50` (the default choice at a quality, `symcodec.codec.choice`),
`sym:CB@50` (a transform codebook at a quality); `symc:...` (the same settings written in the compact form,
formats/sym.md section 9); `jpeg:Q,...` (4:2:0, optimised Huffman tables), `webp:Q`,
`avif:Q` (Pillow's built-in libavif, 4:2:0, speed 6), `jxl:Q` (pillow-jxl-plugin, effort 7).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL
from PIL import Image, features

from ..codebook import registry
from ..codebook.codebook import TransformCodebook
from .decoder import decode
from .encoder import encode
from ..errors import SymcodecError
from ..version import __version__

__all__ = ["CodecSetting", "parse_codec", "PILLOW_FORMATS", "SYM_CODECS"]

SYM_CODECS = ("sym", "symc")  # symc: the compact form
PILLOW_FORMATS = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF", "jxl": "JXL"}
_SAVE = {"jpeg": {"optimize": True, "subsampling": 2}, "webp": {}, "avif": {"subsampling": "4:2:0", "speed": 6},
         "jxl": {"effort": 7}}
_DESC = {"jpeg": "4:2:0 chroma, optimised Huffman tables", "webp": "lossy, method 4", "avif": "libavif, 4:2:0, speed 6",
         "jxl": "libjxl via pillow-jxl-plugin, effort 7"}


@dataclass
class CodecSetting:
    """One codec at one setting (a quality, a codebook, or a codebook at a quality)."""

    codec: str
    setting: str
    description: str
    _obj: Any = None
    quality: int | None = None
    compact: bool = False

    @property
    def label(self) -> str:
        """Short label, e.g. `jpeg q50` or `sym cifar10-2x2-k2048`."""
        return f"{self.codec} q{self.setting}" if self.codec in PILLOW_FORMATS else f"{self.codec} {self.setting}"

    def encode(self, img: np.ndarray) -> bytes:
        """Encode an (H,W,C) uint8 image to file bytes."""
        if self.codec in SYM_CODECS:
            return encode(img, self._obj, quality=self.quality, compact=self.compact)
        buf = io.BytesIO()
        _to_pil(img).save(buf, format=PILLOW_FORMATS[self.codec], quality=int(self.setting), **_SAVE[self.codec])
        return buf.getvalue()

    def decode(self, data: bytes, channels: int) -> np.ndarray:
        """Decode file bytes to an (H,W,channels) uint8 array."""
        if self.codec in SYM_CODECS:
            a = decode(data, self._obj)
        else:
            with Image.open(io.BytesIO(data)) as im:
                a = np.asarray(im.convert("L" if channels == 1 else "RGB"))
        return a if a.ndim == 3 else a[:, :, None]


def _to_pil(img: np.ndarray) -> Image.Image:
    return Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)


def _quality(name: str, v: str) -> int:
    if not v.isdigit() or not 1 <= int(v) <= 100:
        msg = f"{name} quality must be an integer 1..100, got {v!r}"
        raise SymcodecError(msg)
    return int(v)


def _sym(v: str, codec: str = "sym") -> CodecSetting:
    """`q50` (the default choice at quality 50), `CB@50` (a transform codebook at 50), or `CB`; codec symc: compact form."""
    compact = codec == "symc"
    form = ", compact form" if compact else ""
    if v[:1] == "q" and v[1:].isdigit():
        return CodecSetting(codec, v, f"symcodec {__version__}, the default codebook for each image's size at quality "
                            f"{int(v[1:])} (symcodec.codec.choice){form}, header included", None, _quality("sym", v[1:]), compact)
    name, _, q = v.partition("@")
    cb = registry.get(name)
    quality = _quality("sym", q) if q else None
    if quality is not None and not isinstance(cb, TransformCodebook):
        msg = f"{name} is a patch codebook: a quality (@{q}) applies to transform codebooks"
        raise SymcodecError(msg)
    if isinstance(cb, TransformCodebook):
        kind = f"transform mode, 8x8 DCT, entropy model 4, quality {quality or 'default'}"
    else:
        kind = ("YCbCr 4:2:0" if cb.colour == 1 else "per-channel") + (
            f", entropy model {cb.entropy.model_id}" if cb.context_chunk is not None else ", static table")
        kind = f"K={cb.k}, {cb.patch}x{cb.patch} patches, {kind}"
    return CodecSetting(codec, v, f"symcodec {__version__}, codebook {cb.name or name} {cb.short_id} ({kind}), rANS-coded "
                        f".sym{form}, header included", cb, quality, compact)


def parse_codec(spec: str) -> list[CodecSetting]:
    """`sym:CB1,q50,CB@50` / `jpeg:10,50,90` / `webp:...` / `avif:...` / `jxl:...` -> one CodecSetting per value."""
    name, _, values = spec.partition(":")
    name = name.strip().lower()
    vals = [v.strip() for v in values.split(",") if v.strip()]
    if not vals:
        msg = f"codec spec {spec!r} has no settings (expected e.g. jpeg:10,50,90, sym:q50 or sym:cifar10-2x2-k2048)"
        raise SymcodecError(msg)
    if name in SYM_CODECS:
        return [_sym(v, name) for v in vals]
    if name in PILLOW_FORMATS:
        if name == "jxl":
            try:
                import pillow_jxl  # noqa: F401  (registers JPEG XL with Pillow; the [eval] extra)
            except ImportError:
                msg = "jxl needs pillow-jxl-plugin (pip install 'symcodec[eval]')"
                raise SymcodecError(msg) from None
        elif not features.check(name if name != "jpeg" else "jpg"):
            msg = f"this Pillow build has no {PILLOW_FORMATS[name]} support"
            raise SymcodecError(msg)
        qs = sorted({_quality(name, v) for v in vals})
        desc = f"Pillow {PIL.__version__} {PILLOW_FORMATS[name]} ({_DESC[name]})"
        return [CodecSetting(name, str(q), desc) for q in qs]
    msg = f"unknown codec {name!r} (known: sym, symc, {', '.join(PILLOW_FORMATS)})"
    raise SymcodecError(msg)
