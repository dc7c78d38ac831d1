"""The worker side of `symcodec convert`: what each spawn process does to a chunk of images.

Each worker loads the codebook once (`_init_worker`), then converts chunks (`_work`): decode the
source images, quantize all images of one shape in one centroid search (`encode_many`), and return
tar member bytes (or write files, for folder output) plus per-image sizes or errors.
"""
from __future__ import annotations

import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import tario

OUT_EXT = {"sym": ".sym", "png": ".png", "jpeg": ".jpg"}
_SRC_EXT = re.compile(r"\.(jpe?g|png|bmp|gif|webp|tiff?|ppm|pgm|sym)$", re.IGNORECASE)


@dataclass(frozen=True)
class Plan:
    """What the workers do to each image."""

    to: str = "sym"  # sym | png | jpeg
    codebook: str | None = None
    embed_codebook: bool = False
    quality: int = 95
    dst_folder: str | None = None  # folder output: workers write files here; None: tar bytes back


_W: dict[str, Any] = {}


def _init_worker(plan: Plan) -> None:
    """Load the codebook once per worker and warm the compiled kernels."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import numpy as np

    from . import codec, registry
    from .errors import ModeConversionWarning

    warnings.simplefilter("ignore", ModeConversionWarning)
    _W["plan"] = plan
    _W["cb"] = None
    if plan.to == "sym":
        cb = registry.get(plan.codebook)
        _W["cb"] = cb
        # builds the searcher, loads numba caches, and checks the batched path still matches `encode`
        probe = np.random.default_rng(0).integers(0, 256, (2, 9, 7, 3), dtype=np.uint8)
        try:
            same = all(encode_many([(x, "RGB", {})], cb)[0] == codec.encode(x, cb) for x in probe)
        except Exception:  # noqa: BLE001
            same = False
        _W["batched"] = same


def out_name(key: str, to: str) -> str:
    """Output member/file name for a source key: image extension replaced (or added)."""
    stem = _SRC_EXT.sub("", key)
    return stem + OUT_EXT[to]


def _parent(key: str) -> str:
    parts = key.rsplit("/", 2)
    return parts[-2] if len(parts) > 1 else ""


def _label_in_path(key: str, label: Any) -> bool:
    return label is not None and _parent(key) == str(label)


def _to_image(key: str, data: bytes | None, pixels: Any) -> bytes:
    """Reverse direction: a `.sym` file (or raw pixels) to PNG or JPEG bytes, keeping ICC and EXIF."""
    from PIL import Image

    from . import codec

    plan: Plan = _W["plan"]
    meta: dict[str, bytes] = {}
    if pixels is None:
        f = codec.read(data or b"")
        pixels = codec.decode(data or b"")
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
        im.save(buf, "JPEG", quality=plan.quality, **meta)
    return buf.getvalue()


def _pixels(data: bytes | None, pixels: Any) -> tuple[Any, str, dict[str, bytes]]:
    from PIL import Image

    from . import codec

    if pixels is not None:
        return codec._pixels(pixels)
    with Image.open(io.BytesIO(data or b"")) as im:
        im.load()
        return codec._pixels(im)


def encode_many(images: list[tuple[Any, str, dict[str, bytes]]], cb: Any, embed_codebook: bool = False) -> list[bytes]:
    """`symcodec.encode` for many (pixels, mode, metadata) at once: one centroid search per image shape.

    Gives the same bytes as `symcodec.encode` image by image (tests check it, and each worker checks it
    at start-up, falling back to `symcodec.encode` if the two ever differ), with less per-call overhead.
    """
    import numpy as np

    from . import container

    from .codec import assemble, encode

    out: list[bytes] = [b""] * len(images)
    groups: dict[tuple, list[int]] = {}
    for i, (a, mode, _) in enumerate(images):
        groups.setdefault((a.shape, mode), []).append(i)
    for (shape, mode), idx in groups.items():
        planes = container.PLANES[mode]
        h, w = shape[:2]
        if h == 0 or w == 0 or h * w > container.MAX_PIXELS or cb.colour != 0:
            for i in idx:  # encode raises its own clear errors, and handles ycc420
                out[i] = encode(images[i][0], cb, embed_codebook=embed_codebook)
            continue
        sym = _quantize(np.stack([images[i][0][:, :, :planes] for i in idx]), cb)
        for j, i in enumerate(idx):
            a, _, meta = images[i]
            out[i] = assemble(cb, a, mode, sym[j], meta, embed_codebook=embed_codebook)
    return out


def _quantize(batch: Any, cb: Any) -> Any:
    from . import patches

    pt = patches.extract(batch, cb.patch)
    return cb.searcher.nearest(pt.reshape(-1, cb.dim)).reshape(pt.shape[:4])


def _convert(items: list[tuple[str, Any, bytes | None, Any]]) -> list[tuple[bytes | None, str | None]]:
    """(output bytes, None) or (None, error) for each item."""
    plan: Plan = _W["plan"]
    res: list[tuple[bytes | None, str | None]] = [(None, None)] * len(items)
    ok: list[int] = []
    decoded = []
    for i, (key, _, data, pixels) in enumerate(items):
        try:
            if plan.to == "sym":
                decoded.append(_pixels(data, pixels))
                ok.append(i)
            else:
                res[i] = (_to_image(key, data, pixels), None)
        except Exception as exc:  # noqa: BLE001 - any failure of one image is reported, the run goes on
            res[i] = (None, _err(exc))
    if ok and not _W.get("batched"):
        from .codec import encode

        for i, (a, _, meta) in zip(ok, decoded):
            try:
                res[i] = (encode(a if a.shape[2] != 1 else a[:, :, 0], _W["cb"], embed_codebook=plan.embed_codebook, **meta), None)
            except Exception as exc:  # noqa: BLE001
                res[i] = (None, _err(exc))
    elif ok:
        try:
            blobs = encode_many(decoded, _W["cb"], plan.embed_codebook)
            for i, b in zip(ok, blobs):
                res[i] = (b, None)
        except Exception:  # noqa: BLE001 - redo one by one to find the culprit
            for i, img in zip(ok, decoded):
                try:
                    res[i] = (encode_many([img], _W["cb"], plan.embed_codebook)[0], None)
                except Exception as exc:  # noqa: BLE001
                    res[i] = (None, _err(exc))
    return res


def _err(exc: BaseException) -> str:
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "UnidentifiedImageError: not an image Pillow can read"
    return (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0]


def _work(items: list[tuple[str, Any, bytes | None, Any]]) -> list[tuple[str, int, int, bytes | None, str | None]]:
    """Convert a chunk: (key, label, data, pixels) -> (name, src_bytes, out_bytes, tar bytes | None, error)."""
    plan: Plan = _W["plan"]
    ext = OUT_EXT[plan.to]
    out = []
    for (key, label, data, pixels), (blob, err) in zip(items, _convert(items)):
        name = out_name(key, plan.to)
        src_n = len(data) if data is not None else int(pixels.nbytes)
        if blob is None:
            out.append((name, src_n, 0, None, err))
            continue
        cls = None if label is None or _label_in_path(key, label) else str(label).encode("utf-8")
        if plan.dst_folder is None:
            mem = tario.member(name, blob)
            if cls is not None:
                mem += tario.member(name[: -len(ext)] + ".cls", cls)
            out.append((name, src_n, len(blob), mem, None))
        else:
            root = Path(plan.dst_folder)
            _write_file(root / name, blob)
            if cls is not None:
                _write_file(root / (name[: -len(ext)] + ".cls"), cls)
            out.append((name, src_n, len(blob), None, None))
    return out


def _write_file(path: Path, data: bytes) -> None:
    """Temporary name, then rename: a killed run never leaves a partial file under the real name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
