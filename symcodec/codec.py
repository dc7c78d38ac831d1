"""The public codec API: quantize/reconstruct (purification) and encode/decode (`.sym` bytes)."""
from __future__ import annotations

import os
import warnings
import zlib
from typing import Any, BinaryIO

import numpy as np

from . import container, patches, plans, registry
from .codebook import Codebook
from .container import Header, SymFile
from .errors import CodebookError, FormatError, ModeConversionWarning, UnsupportedModeError

_CONVERT = {"P": None, "1": "L", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB", "PA": "RGBA"}
_REFUSE = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_STRIP_VALUES = 1 << 24  # float32 patch values held at once (64 MiB)


def quantize(x: np.ndarray, codebook: Codebook | str | None = None, threads: int = 1) -> np.ndarray:
    """Symbols of an image or batch: (H,W)/(H,W,C) -> (C,gh,gw); (N,H,W,C) -> (N,C,gh,gw), int32.

    uint8 samples are scaled by 1/255; float samples are taken as [0, 1] values.
    """
    cb = registry.get(codebook)
    batch, single = patches.as_batch(x)
    n, h, w, c = batch.shape
    p = cb.patch
    gh, gw = patches.grid(h, w, p)
    sym = np.empty((n, c, gh, gw), np.int32)
    # strips of patch rows keep the float32 patch buffer small for large images
    rows = max(1, _STRIP_VALUES // max(1, n * c * gw * cb.dim))
    for r0 in range(0, gh, rows):
        r1 = min(gh, r0 + rows)
        pt = patches.extract(batch[:, r0 * p : min(h, r1 * p)], p)
        sym[:, :, r0:r1] = cb.searcher.nearest(pt.reshape(-1, cb.dim), threads=threads).reshape(pt.shape[:4])
    return sym[0] if single else sym


def quantize_ycc(a: np.ndarray, codebook: Codebook | str | None = None, threads: int = 1) -> list[np.ndarray]:
    """Symbols of an (H, W, 3) uint8 RGB image under a ycc420 codebook: the Y, Cb and Cr (gh, gw) int32 grids.

    Small images: colour conversion and patches in one kernel, one search; large ones plane by plane in strips.
    """
    from .colour import rgb_to_planes, ycc_patches

    cb = registry.get(codebook)
    if a.shape[0] * a.shape[1] * cb.dim > _STRIP_VALUES:
        return [quantize(pl, cb, threads=threads)[0] for pl in rgb_to_planes(a)]
    rows, grids = ycc_patches(a, cb.patch)
    idx = cb.searcher.nearest(rows, threads=threads)
    out, o = [], 0
    for gh, gw in grids:
        out.append(idx[o : o + gh * gw].reshape(gh, gw))
        o += gh * gw
    return out


def reconstruct(
    symbols: np.ndarray,
    codebook: Codebook | str | None = None,
    shape: tuple[int, ...] | None = None,
    dtype: Any = np.uint8,
) -> np.ndarray:
    """Images from symbols, cropped to `shape` (the original array's shape); uint8 or float32 output."""
    cb = registry.get(codebook)
    sym = np.asarray(symbols)
    single = sym.ndim == 3
    sym4 = sym[None] if single else sym
    if sym4.ndim != 4:
        msg = f"symbols must have shape (C,gh,gw) or (N,C,gh,gw), got {sym.shape}"
        raise ValueError(msg)
    if sym4.size and (sym4.min() < 0 or sym4.max() >= cb.k):
        msg = f"symbols outside 0..{cb.k - 1} for this codebook"
        raise CodebookError(msg)
    n, c, gh, gw = sym4.shape
    h, w = gh * cb.patch, gw * cb.patch
    if shape is not None:
        h, w = (shape[0], shape[1]) if single else (shape[1], shape[2])
        if patches.grid(h, w, cb.patch) != (gh, gw):
            msg = f"shape {shape} does not fit a {gh}x{gw} grid of {cb.patch}x{cb.patch} patches"
            raise ValueError(msg)
    table = cb.table_u8 if np.dtype(dtype) == np.uint8 else cb.centroids
    out = patches.tile(sym4, table, cb.patch, h, w)
    if np.dtype(dtype) not in (np.uint8, np.float32):
        out = out.astype(dtype)
    if single:
        out = out[0]
    if shape is not None and len(shape) == (2 if single else 3):
        out = out[..., 0]
    return out


def purify(x: np.ndarray, codebook: Codebook | str | None = None, threads: int = 1) -> np.ndarray:
    """Quantize and reconstruct in one call; same shape and dtype family as `x`."""
    x = np.asarray(x)
    dt = np.uint8 if x.dtype == np.uint8 else np.float32
    cb = registry.get(codebook)
    if cb.colour == 1 and x.ndim in (3, 4) and x.shape[-1] == 3:  # ycc420: Y, Cb, Cr planes (symcodec.colour)
        from .colour import purify as purify_ycc

        return purify_ycc(x, cb, threads)
    return reconstruct(quantize(x, cb, threads), cb, shape=x.shape, dtype=dt)


def _pixels(image: Any) -> tuple[np.ndarray, str, dict[str, Any]]:
    """(H,W,C) uint8 array, mode, and metadata from a PIL image or a numpy array."""
    meta: dict[str, Any] = {}
    if isinstance(image, np.ndarray):
        a = image
        if a.dtype != np.uint8:
            msg = f"encode needs uint8 samples, got {a.dtype}; scale floats with (x * 255).round().astype(np.uint8)"
            raise UnsupportedModeError(msg)
        if a.ndim == 2:
            a = a[:, :, None]
        if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
            msg = f"array of shape {image.shape} is not an L, LA, RGB or RGBA image"
            raise UnsupportedModeError(msg)
        mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[a.shape[2]]
    else:
        from PIL import Image

        if not isinstance(image, Image.Image):
            msg = f"cannot encode a {type(image).__name__}: pass a PIL image or a uint8 numpy array"
            raise UnsupportedModeError(msg)
        im = image
        if im.mode in _REFUSE:
            msg = f"mode {im.mode} (more than 8 bits per sample) is not supported: .sym stores 8-bit samples; convert first, e.g. im.convert('L')"
            raise UnsupportedModeError(msg)
        if im.mode not in container.MODE_IDS:
            target = _CONVERT.get(im.mode, "RGB")
            if target is None:  # palette: keep transparency if there is any
                target = "RGBA" if ("transparency" in im.info or im.palette and im.palette.mode == "RGBA") else "RGB"
            warnings.warn(f"converting mode {im.mode} to {target} for .sym", ModeConversionWarning, stacklevel=3)
            im = im.convert(target)
        mode = im.mode
        a = np.asarray(im)
        if a.ndim == 2:
            a = a[:, :, None]
        for key in ("icc_profile", "exif", "xmp"):
            if im.info.get(key):
                val = im.info[key]
                meta[key] = val.encode("utf-8") if isinstance(val, str) else bytes(val)
        if meta.get("exif", b"").startswith(b"Exif\x00\x00"):  # JPEG's APP1 prefix; the spec stores the TIFF data
            meta["exif"] = meta["exif"][6:]
    return np.ascontiguousarray(a), mode, meta


def encode(
    image: Any,
    codebook: Codebook | str | None = None,
    *,
    embed_codebook: bool = False,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    xmp: bytes | None = None,
    text: dict[str, str] | None = None,
    threads: int = 1,
) -> bytes:
    """Encode a PIL image or uint8 array (L, LA, RGB, RGBA) to `.sym` bytes."""
    cb = registry.get(codebook)
    a, mode, meta = _pixels(image)
    h, w = a.shape[:2]
    if h == 0 or w == 0:
        from .errors import EmptyImageError

        msg = f"cannot encode an empty {w}x{h} image"
        raise EmptyImageError(msg)
    if h * w > container.MAX_PIXELS:
        from .errors import ImageTooLargeError

        msg = f"image is {w}x{h}, over the cap of {container.MAX_PIXELS} pixels"
        raise ImageTooLargeError(msg)
    planes = container.PLANES[mode]
    if cb.colour == 1:  # ycc420: Y, Cb, Cr planes (symcodec.colour), context model only
        if planes != 3 or cb.context_model is None:
            msg = f"codebook {cb.name or cb.short_id} (ycc420) encodes RGB/RGBA images and needs a context model"
            raise UnsupportedModeError(msg)
    if not (embed_codebook or text or icc_profile or exif or xmp or meta) and a.shape[2] == planes:
        # the common case: one call per kernel, the container framed once per shape (symcodec.plans)
        return plans.encoder(cb, w, h, mode).encode(a, threads)
    syms = symbols(a[:, :, :planes], cb, threads)
    meta = {**meta, **{k: v for k, v in (("icc_profile", icc_profile), ("exif", exif), ("xmp", xmp)) if v is not None}}
    return assemble(cb, a, mode, syms, meta, embed_codebook=embed_codebook, text=text)


def symbols(a: np.ndarray, cb: Codebook, threads: int = 1) -> Any:
    """What `payload` codes for an (H, W, planes) uint8 image: Y, Cb, Cr grids for ycc420, else (P, gh, gw) int32."""
    return quantize_ycc(a, cb, threads=threads) if cb.colour == 1 else quantize(a, cb, threads=threads)


def payload(cb: Codebook, syms: Any) -> bytes:
    """The SDAT payload of `symbols`: the codebook's context model if it has one, else its static table."""
    ctx = cb.context_model
    return ctx.encode(list(syms)) if ctx is not None else cb.model.encode(syms)


def assemble(
    cb: Codebook,
    a: np.ndarray,
    mode: str,
    syms: Any,
    meta: dict[str, Any],
    *,
    embed_codebook: bool = False,
    text: dict[str, str] | None = None,
) -> bytes:
    """Entropy-code an image's symbols and wrap them with its alpha, codebook and metadata as `.sym` bytes.

    `syms` is (P, gh, gw) for per-plane codebooks, or the list of Y, Cb, Cr symbol planes for ycc420.
    """
    h, w = a.shape[:2]
    planes = container.PLANES[mode]
    ctx = cb.context_model
    n_sym = sum(int(x.size) for x in syms)
    model = ctx if ctx is not None else cb.model
    hdr = Header(w, h, mode, cb.patch, cb.colour, model.model_id, cb.k, cb.id, n_sym)
    f = SymFile(hdr, payload=payload(cb, syms))
    if planes < a.shape[2]:
        f.alpha = zlib.compress(np.ascontiguousarray(a[:, :, planes]).tobytes(), 9)
    if embed_codebook:
        f.codebook = cb.to_bytes()
    f.icc_profile, f.exif, f.xmp = meta.get("icc_profile"), meta.get("exif"), meta.get("xmp")
    f.text = dict(text or {})
    return f.to_bytes()


def codebook_for(f: SymFile, codebook: Codebook | str | None = None) -> Codebook:
    """The codebook a parsed file needs: embedded, given, or from the registry by id."""
    hdr = f.header
    if f.codebook is not None:
        cb = Codebook.from_bytes(f.codebook)
        if cb.id != hdr.codebook_id:
            msg = "corrupt .sym: embedded codebook id does not match HEAD"
            raise FormatError(msg)
    elif codebook is not None:
        cb = registry.get(codebook)
        if cb.id != hdr.codebook_id:
            msg = f"codebook {cb.name or cb.short_id} ({cb.hexid}) is not the one this file needs ({hdr.codebook_id.hex()})"
            raise CodebookError(msg)
    else:
        cb = registry.by_id(hdr.codebook_id)
    if cb.k != hdr.k or cb.patch != hdr.patch:
        msg = "corrupt .sym: codebook K or patch size does not match HEAD"
        raise FormatError(msg)
    return cb


def decode_symbols(f: SymFile, cb: Codebook) -> np.ndarray:
    """Entropy-decode every plane: (P, gh, gw) int32 (colour 1: a list of the Y, Cb, Cr symbol planes)."""
    hdr = f.header
    gh, gw = hdr.grid
    ctx = cb.context_model
    if hdr.colour != cb.colour:
        msg = f"corrupt .sym: colour {hdr.colour} does not match the codebook's ({cb.colour})"
        raise FormatError(msg)
    if hdr.model_id in (2, 3) and ctx is not None and ctx.model_id == hdr.model_id:
        planes = ctx.decode(f.payload or b"", hdr.plane_grids)
        return planes if hdr.colour == 1 else np.stack(planes)  # type: ignore[return-value]
    if hdr.model_id != cb.model.model_id:
        msg = f"entropy model {hdr.model_id} is not supported by this codebook/reader"
        raise FormatError(msg)
    return cb.model.decode(f.payload or b"", hdr.symbols).reshape(hdr.planes, gh, gw)


def pixels(hdr: Header, cb: Codebook, sym: Any) -> np.ndarray:
    """(H, W, planes) uint8 pixels, no alpha, from decoded symbols (per plane, or flat in plane order)."""
    if hdr.colour == 1:  # ycc420 (formats/sym-v2.md section 3): gather and colour conversion in one kernel
        from .colour import ycc_pixels as ycc

        flat = np.concatenate([np.ravel(x) for x in sym]) if isinstance(sym, list) else sym
        return ycc(flat, cb.table_u8, cb.patch, hdr.height, hdr.width)
    gh, gw = hdr.grid
    return patches.tile(np.reshape(sym, (1, hdr.planes, gh, gw)), cb.table_u8, cb.patch, hdr.height, hdr.width)[0]


def decode(data: bytes | BinaryIO | str | os.PathLike[str], codebook: Codebook | str | None = None) -> np.ndarray:
    """Decode `.sym` bytes (or a path) to uint8 pixels: (H,W) for L, (H,W,C) otherwise."""
    if isinstance(data, bytes):
        out = plans.decode(data, codebook)  # the common layout (HEAD, SDAT, SEND), a cached per-shape plan
        if out is not None:
            return out
    f = read(data)
    cb = codebook_for(f, codebook)
    hdr = f.header
    out = pixels(hdr, cb, decode_symbols(f, cb))
    if f.alpha is not None:
        out = np.concatenate([out, f.alpha_plane()[:, :, None]], axis=2)
    return out[:, :, 0] if hdr.mode == "L" else out


def read(data: bytes | BinaryIO | str | os.PathLike[str], header_only: bool = False) -> SymFile:
    """Parse a `.sym` file from bytes, a stream, or a path."""
    if isinstance(data, (str, os.PathLike)):
        with open(data, "rb") as fp:
            return container.read(fp, header_only=header_only)
    return container.read(data, header_only=header_only)
