"""The worker side of `symcodec convert`: what each spawn process does to a chunk of images.

Each worker loads the codebook once (`_init_worker`), then converts chunks (`_work`): decode the
source images, encode all images of one size and mode with one `Encoder` batch (one centroid search),
and return tar member bytes (or write files, for folder output) plus per-image sizes or errors.
"""
from __future__ import annotations

import io
import os
import posixpath
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..codebook import registry
from ..codebook.codebook import Codebook, TransformCodebook
from ..codec.choice import SMALL_SIDE, choose, jpeg_tables, transform_steps
from ..codec.decoder import decode, read
from ..codec.encoder import encoder_for
from ..codec.image import samples
from ..errors import DatasetError, ModeConversionWarning
from . import fastjpeg, tario
from .sources import Ref

OUT_EXT = {"sym": ".sym", "png": ".png", "jpeg": ".jpg"}
_SRC_EXT = re.compile(r"\.(jpe?g|png|bmp|gif|webp|tiff?|ppm|pgm|sym)$", re.IGNORECASE)


@dataclass(frozen=True)
class Plan:
    """What the workers do to each image."""

    to: str = "sym"  # sym | png | jpeg
    codebook: str | None = None  # None: each image's size picks one (symcodec.codec.choice)
    embed_codebook: bool = False
    quality: int | None = None  # .sym: the quality ladder (None: its defaults); jpeg: the JPEG quality (None: 95)
    dst_folder: str | None = None  # folder output: workers write files here; None: tar bytes back
    compact: bool = False  # .sym: the compact form where a file allows it (formats/sym.md section 9)


_W: dict[str, Any] = {}


def _init_worker(plan: Plan) -> None:
    """Load the codebook once per worker (and build its searcher, so the first chunk does not wait)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.simplefilter("ignore", ModeConversionWarning)
    _W["plan"] = plan
    _W["cb"] = None
    if plan.to == "sym" and plan.codebook is not None:
        cb = registry.get(plan.codebook)
        if isinstance(cb, Codebook):
            cb.searcher  # noqa: B018
        _W["cb"] = cb


def out_name(key: str, to: str) -> str:
    """Output member/file name for a source key: made safe (`safe_name`), image extension replaced (or added)."""
    name = _SRC_EXT.sub("", safe_name(key)) + OUT_EXT[to]
    if any(len(c.encode("utf-8", "surrogateescape")) > MAX_COMPONENT for c in name.split("/")):
        msg = f"member name {key[:60]!r}... has a path component over {MAX_COMPONENT} bytes"
        raise DatasetError(msg)
    return name


MAX_COMPONENT = 255  # bytes in one path component (NAME_MAX on Linux and macOS)


def safe_name(key: str) -> str:
    """A source key as a relative path inside the destination: '.', '..' and repeated slashes folded.

    Absolute names, names that climb out of the destination once folded, and empty names raise
    DatasetError; the same check guards folder and tar outputs in every engine.
    """
    if key.startswith("/") or "\0" in key:
        msg = f"unsafe member name {key[:80]!r}: an absolute path"
        raise DatasetError(msg)
    norm = posixpath.normpath(key)
    if norm in (".", "..") or norm.startswith("../") or not key:
        msg = f"unsafe member name {key[:80]!r}: it leads outside the destination"
        raise DatasetError(msg)
    return norm


def _parent(key: str) -> str:
    parts = key.rsplit("/", 2)
    return parts[-2] if len(parts) > 1 else ""


def _label_in_path(key: str, label: Any) -> bool:
    return label is not None and _parent(key) == str(label)


def _to_image(key: str, data: bytes | None, pixels: Any) -> bytes:
    """Reverse direction: a `.sym` file (or raw pixels) to PNG or JPEG bytes, keeping ICC and EXIF."""
    plan: Plan = _W["plan"]
    meta: dict[str, bytes] = {}
    if pixels is None:
        f = read(data or b"")
        pixels = decode(data or b"")
        if f.icc_profile:
            meta["icc_profile"] = f.icc_profile
        if f.exif:
            meta["exif"] = b"Exif\x00\x00" + f.exif
    buf = io.BytesIO()
    im = Image.fromarray(pixels)
    if plan.to == "png":
        im.save(buf, "PNG", compress_level=6, **meta)
    else:
        if im.mode in ("LA", "RGBA"):
            im = im.convert(im.mode[:-1])
        im.save(buf, "JPEG", quality=95 if plan.quality is None else plan.quality, **meta)
    return buf.getvalue()


Image_ = tuple[np.ndarray, str, dict[str, bytes], Any]  # samples, mode, metadata, a JPEG source's tables or None


def _samples(data: bytes | None, pixels: Any) -> Image_:
    if pixels is not None:
        return (*samples(pixels), None)
    if not isinstance(_W.get("cb"), TransformCodebook):  # a small image's JPEG tables matter only to a transform codebook
        a = fastjpeg.decode(data or b"", SMALL_SIDE)
        if a is not None:
            return (*samples(a), None)
    with warnings.catch_warnings():  # over Image.MAX_IMAGE_PIXELS Pillow only warns: a source image that big is refused
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data or b"")) as im:
            im.load()
            return (*samples(im), jpeg_tables(im))


def encode_many(images: list[Image_], cb: Codebook | TransformCodebook | None, embed_codebook: bool = False,
                quality: int | None = None, compact: bool = False) -> list[bytes | BaseException]:
    """The `.sym` bytes of many (samples, mode, metadata, JPEG tables), or the error of each image that cannot be encoded.

    Images of one size, mode (and steps) go through one encoder batch (one centroid search); the bytes are
    those of `symcodec.encode` image by image, with the same choice of codebook when `cb` is None.
    """
    out: list[bytes | BaseException] = [b""] * len(images)
    groups: dict[tuple, list[int]] = {}
    for i, (a, mode, _, tables) in enumerate(images):
        groups.setdefault((a.shape, mode, None if tables is None else tables.tobytes()), []).append(i)
    for (shape, mode, _), idx in groups.items():
        try:
            tables = images[idx[0]][3]
            if cb is None:
                gcb, steps = choose(shape[1], shape[0], mode, quality, tables)
            else:
                gcb, steps = cb, transform_steps(quality, tables) if isinstance(cb, TransformCodebook) else None
            enc = encoder_for(gcb, shape[1], shape[0], mode, steps)
            batch, metas = np.stack([images[i][0] for i in idx]), [images[i][2] for i in idx]
            blobs = enc.encode_batch(batch, metas, embed_codebook, compact=compact)
        except Exception as exc:  # noqa: BLE001 - every image of the group gets the error
            blobs = [exc] * len(idx)
        for i, b in zip(idx, blobs):
            out[i] = b
    return out


def _convert(items: list[tuple[str, Any, bytes | None, Any]]) -> list[tuple[bytes | None, str | None]]:
    """(output bytes, None) or (None, error) for each item."""
    plan: Plan = _W["plan"]
    res: list[tuple[bytes | None, str | None]] = [(None, None)] * len(items)
    ok: list[int] = []
    decoded = []
    for i, (key, _, data, pixels) in enumerate(items):
        try:
            if plan.to == "sym":
                decoded.append(_samples(data, pixels))
                ok.append(i)
            else:
                res[i] = (_to_image(key, data, pixels), None)
        except Exception as exc:  # noqa: BLE001 - any failure of one image is reported, the run goes on
            res[i] = (None, _err(exc))
    for i, b in zip(ok, encode_many(decoded, _W["cb"], plan.embed_codebook, plan.quality, plan.compact)):
        res[i] = (None, _err(b)) if isinstance(b, BaseException) else (b, None)
    return res


def _err(exc: BaseException) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return "UnidentifiedImageError: not an image Pillow can read"
    return (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0]


def _resolve(items: list[tuple[str, Any, Any, Any]]) -> tuple[list[tuple[str, Any, bytes | None, Any]], dict[int, str]]:
    """Items with every `Ref` in the data slot read (the worker reads its own bytes); errors of unreadable ones by index."""
    out, bad = [], {}
    for i, (key, label, data, pixels) in enumerate(items):
        if isinstance(data, Ref):
            try:
                data = data.read()
            except DatasetError as exc:
                bad[i], data = _err(exc), b""
        out.append((key, label, data, pixels))
    return out, bad


def _work(items: list[tuple[str, Any, Any, Any]]) -> list[tuple[str, int, int, bytes | None, str | None]]:
    """Convert a chunk: (key, label, data or a Ref to it, pixels) -> (name, src_bytes, out_bytes, tar bytes | None, error)."""
    plan: Plan = _W["plan"]
    ext = OUT_EXT[plan.to]
    out = []
    items, unreadable = _resolve(items)
    converted = _convert(items)
    for i, err in unreadable.items():
        converted[i] = (None, err)
    for (key, label, data, pixels), (blob, err) in zip(items, converted):
        src_n = len(data) if data is not None else int(pixels.nbytes)
        try:
            name = out_name(key, plan.to)
        except DatasetError as exc:
            out.append((key, src_n, 0, None, _err(exc)))
            continue
        if blob is None:
            out.append((name, src_n, 0, None, err))
            continue
        cls = None if label is None or _label_in_path(key, label) else str(label).encode("utf-8")
        if plan.dst_folder is None:
            mem = tario.member(name, blob)
            if cls is not None:
                mem += tario.member(name[: -len(ext)] + ".cls", cls)
            out.append((name, src_n, len(blob), mem, None))
            continue
        root = Path(plan.dst_folder)
        try:
            _write_file(root / name, blob)
            if cls is not None:
                _write_file(root / (name[: -len(ext)] + ".cls"), cls)
        except OSError as exc:  # one file that cannot be written (a name the file system refuses, ...) is skipped
            out.append((name, src_n, 0, None, _err(exc)))
            continue
        out.append((name, src_n, len(blob), None, None))
    return out


def _write_file(path: Path, data: bytes) -> None:
    """Temporary name, then rename: a killed run never leaves a partial file under the real name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
