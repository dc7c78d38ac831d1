"""File-level helpers behind the CLI: encode/decode paths atomically, describe a .sym file."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image, UnidentifiedImageError

from ..atomic import atomic_write
from ..errors import CodebookNotFoundError, FormatError, UnsupportedModeError
from .decoder import check_budget, codebook_for, coded_bytes, decode, decoder_for, read
from .encoder import encode


def open_image(path: str | os.PathLike[str] | BinaryIO) -> Image.Image:
    """Open an image with Pillow, mapping Pillow's failures to symcodec errors."""
    try:
        im = Image.open(path)
        im.load()
    except UnidentifiedImageError:
        msg = f"{path} is not an image Pillow can read"
        raise FormatError(msg) from None
    except (OSError, SyntaxError, ValueError) as exc:
        msg = f"cannot read image {path}: {exc}"
        raise FormatError(msg) from None
    return im


def encode_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], **kw: Any) -> int:
    """Encode an image file to a .sym file (atomic); return the byte count."""
    data = encode(open_image(src), **kw)
    atomic_write(Path(dst), data)
    return len(data)


def decode_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], codebook: Any = None, threads: int = 1) -> None:
    """Decode a .sym file to an image file whose format Pillow picks from the extension (atomic)."""
    f = read(src)
    px = decode(src, codebook=codebook, threads=threads)
    im = Image.fromarray(px, mode=None)
    fmt = Image.registered_extensions().get(Path(dst).suffix.lower())
    if fmt is None:
        msg = f"unknown output extension {Path(dst).suffix!r}"
        raise UnsupportedModeError(msg)
    buf = io.BytesIO()
    kw: dict[str, Any] = {}
    if f.icc_profile:
        kw["icc_profile"] = f.icc_profile
    if f.exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        kw["exif"] = f.exif
    im.save(buf, format=fmt, **kw)
    atomic_write(Path(dst), buf.getvalue())


def describe(src: str | os.PathLike[str]) -> dict[str, Any]:
    """Header fields, codebook, and byte accounting of a .sym file (fully validated)."""
    size = os.path.getsize(src)
    f = read(src)
    h = f.header
    payload = len(f.payload or b"")
    cb_name = None
    try:
        cb = codebook_for(f)
        cb_name = cb.name
        check_budget(h, coded_bytes(f))
        decoder_for(cb, h).symbols(f.payload or b"")  # proves the payload decodes
    except CodebookNotFoundError:
        cb_name = "(not installed)"
    n_sym = h.symbols  # HEAD's N (in colour 1 the chroma planes are smaller)
    return {
        "file": str(src),
        "bytes": size,
        "width": h.width,
        "height": h.height,
        "mode": h.mode,
        "patch": f"{h.patch}x{h.patch}",
        "codebook": cb_name,
        "codebook_id": cb.hexid if cb_name not in (None, "(not installed)") else h.codebook_id.hex(),
        "form": "compact" if f.compact else "chunked",
        "codebook_embedded": f.codebook is not None,
        "K": h.k,
        "entropy_model": h.model_id,
        "symbols": n_sym,
        "payload_bytes": payload,
        "bits_per_symbol": round(payload * 8 / n_sym, 4),
        "bits_per_pixel": round(size * 8 / (h.width * h.height), 4),
        "alpha": f.alpha is not None,
        "metadata": [k for k in ("icc_profile", "exif", "xmp") if getattr(f, k)] + [f"text:{k}" for k in f.text],
    }
