"""`symcodec convert`: datasets (folders, tars, MNIST idx) to `.sym` and back, in parallel, resumable.

The parent streams the source in order and hands chunks of images to `spawn` worker processes
(bounded in flight, so memory stays flat); each worker loads the codebook once. Results come back in
source order: tar output is appended by the parent to shards (see `symcodec.manifest`), folder output
is written by the workers (temporary name, then rename). A failing image is recorded and skipped.
"""
from __future__ import annotations

import io
import itertools
import os
import re
import sys
import time
import warnings
import zlib
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .errors import DatasetError
from . import tario
from .manifest import Journal, ShardWriter
from .sources import Sample, iter_samples

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


@dataclass
class Summary:
    """Totals of a conversion (this run, plus what earlier runs had finished)."""

    images: int = 0
    failures: int = 0
    skipped: int = 0
    src_bytes: int = 0
    out_bytes: int = 0
    seconds: float = 0.0
    total_images: int = 0
    total_failures: int = 0
    total_src_bytes: int = 0
    total_out_bytes: int = 0
    manifest: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Source bytes / output bytes over everything converted so far."""
        return self.total_src_bytes / self.total_out_bytes if self.total_out_bytes else 0.0

    @property
    def images_per_s(self) -> float:
        """Images per second in this run."""
        return self.images / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        return {**asdict(self), "ratio": round(self.ratio, 4), "images_per_s": round(self.images_per_s, 1)}

    def text(self) -> str:
        """A short human summary."""
        return (
            f"{self.images} images in {self.seconds:.1f} s ({self.images_per_s:.0f} img/s), {self.skipped} done before, "
            f"{self.failures} failed; all runs: {self.total_images} images, {self.total_src_bytes:,} source bytes -> "
            f"{self.total_out_bytes:,} output bytes (ratio {self.ratio:.2f}), {self.total_failures} failures; manifest {self.manifest}"
        )


# -- worker side ---------------------------------------------------------------------------
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

    Gives the same bytes as `symcodec.encode` image by image (tests check it), with less per-call overhead.
    """
    import numpy as np

    from . import container
    from .container import Header, SymFile

    out: list[bytes] = [b""] * len(images)
    groups: dict[tuple, list[int]] = {}
    for i, (a, mode, _) in enumerate(images):
        groups.setdefault((a.shape, mode), []).append(i)
    cbok = cb.to_bytes() if embed_codebook else None
    for (shape, mode), idx in groups.items():
        planes = container.PLANES[mode]
        h, w = shape[:2]
        if h == 0 or w == 0 or h * w > container.MAX_PIXELS:
            from .codec import encode

            for i in idx:  # let encode raise its own clear error
                out[i] = encode(images[i][0], cb, embed_codebook=embed_codebook)
            continue
        batch = np.stack([images[i][0][:, :, :planes] for i in idx])
        sym = _quantize(batch, cb)
        gh, gw = sym.shape[2:]
        hdr = Header(w, h, mode, cb.patch, cb.colour, cb.model.model_id, cb.k, cb.id, planes * gh * gw)
        for j, i in enumerate(idx):
            a, _, meta = images[i]
            f = SymFile(hdr, payload=cb.model.encode(sym[j]))
            if planes < a.shape[2]:
                f.alpha = zlib.compress(np.ascontiguousarray(a[:, :, planes]).tobytes(), 9)
            f.codebook = cbok
            f.icc_profile, f.exif, f.xmp = meta.get("icc_profile"), meta.get("exif"), meta.get("xmp")
            out[i] = f.to_bytes()
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


# -- parent side ---------------------------------------------------------------------------
def manifest_path(dst: str | os.PathLike[str]) -> Path:
    """Default manifest: DST/manifest.jsonl for folders; out.manifest.jsonl beside out.tar or out-%05d.tar."""
    d = Path(dst)
    if not str(dst).endswith(".tar"):
        return d / "manifest.jsonl"
    stem = re.sub(r"%0?\d*d", "", d.name[: -len(".tar")]).rstrip("-_.") or "shards"
    return d.parent / f"{stem}.manifest.jsonl"


def _infer_to(first: Sample | None) -> str:
    from .container import SIGNATURE

    if first is not None and (first.key.endswith(".sym") or (first.data or b"").startswith(SIGNATURE)):
        return "png"
    return "sym"


def iter_source(src: str | os.PathLike[str]) -> Iterator[Sample]:
    """`symcodec.sources.iter_samples`, with a fast reader for uncompressed tars (same keys, labels, order)."""
    from .sources import IMAGE_EXT, kind

    if kind(src) != "tar" or not tario.is_plain_tar(src):
        return iter_samples(src)
    return _iter_plain_tar(str(src), IMAGE_EXT)


def _iter_plain_tar(path: str, exts: tuple[str, ...]) -> Iterator[Sample]:
    pending: dict[str, Sample] = {}
    cls: dict[str, str] = {}
    with open(path, "rb") as fp:
        for m, data in tario.iter_members(fp, path):
            stem, ext = os.path.splitext(m.name)
            if ext == ".cls":
                cls[stem] = (data or b"").decode("utf-8", "replace").strip()
                if stem in pending:
                    s = pending.pop(stem)
                    s.label = cls.pop(stem)
                    yield s
                continue
            if not ext.lower().endswith(exts):
                continue
            s = Sample(m.name, _parent(m.name) or None, data)
            if stem in cls:
                s.label = cls.pop(stem)
                yield s
            elif s.label is None:  # WebDataset style: the .cls member may follow
                for old in [k for k in pending if k != stem]:
                    yield pending.pop(old)
                pending[stem] = s
            else:
                yield s
    yield from pending.values()


def _chunks(samples: Iterator[Sample], n: int) -> Iterator[list[tuple[str, Any, bytes | None, Any]]]:
    while True:
        batch = [(s.key, s.label, s.data, s.pixels) for s in itertools.islice(samples, n)]
        if not batch:
            return
        yield batch


def _skip_done(samples: Iterator[Sample], journal: Journal) -> Iterator[Sample]:
    """Drop the prefix a previous run finished, checking the source still lines up with the manifest."""
    last = None
    for _ in range(journal.done):
        try:
            last = next(samples)
        except StopIteration:
            msg = f"the source has fewer images than {journal.path} records; was it changed?"
            raise DatasetError(msg) from None
    if last is not None and last.key != journal.last_key:
        msg = f"the source no longer matches {journal.path} (image {journal.done} is {last.key}, manifest says {journal.last_key})"
        raise DatasetError(msg)
    return samples


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    to: str | None = None,
    codebook: str | None = None,
    embed_codebook: bool = False,
    quality: int = 95,
    workers: int | None = None,
    chunk: int = 256,
    shard_size: int | None = None,
    limit: int | None = None,
    manifest: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> Summary:
    """Convert a dataset to `.sym` (or `.sym` back to png/jpeg); resumable; returns the summary."""
    t0 = time.perf_counter()
    samples = iter_source(src)
    if limit is not None:
        samples = itertools.islice(samples, limit)
    first = next(samples, None)
    if first is not None:
        samples = itertools.chain([first], samples)
    to = to or _infer_to(first)
    if to not in OUT_EXT:
        msg = f"unknown output format {to!r}, expected one of {sorted(OUT_EXT)}"
        raise DatasetError(msg)
    dst_s = str(dst)
    is_tar = dst_s.endswith(".tar")
    if "%" in dst_s and shard_size is None:
        shard_size = 10000
    if shard_size is not None and "%" not in dst_s:
        msg = f"--shard-size needs a shard pattern as DST, e.g. {dst_s.removesuffix('.tar')}-%05d.tar"
        raise DatasetError(msg)
    cb_id = None
    if to == "sym":
        from . import registry

        cb_id = registry.get(codebook).hexid
    settings = {"src": str(Path(src).resolve()), "dst": str(Path(dst).resolve()), "to": to, "codebook": cb_id,
                "embed_codebook": embed_codebook, "quality": quality if to == "jpeg" else None, "shard_size": shard_size}
    journal = Journal.open(Path(manifest) if manifest else manifest_path(dst), settings)
    summary = Summary(skipped=journal.done, manifest=str(journal.path))
    try:
        writer = ShardWriter(dst_s, shard_size, journal) if is_tar else None
        plan = Plan(to, codebook, embed_codebook, quality, None if is_tar else str(Path(dst)))
        if not is_tar:
            Path(dst).mkdir(parents=True, exist_ok=True)
        todo = _skip_done(samples, journal)
        _run(plan, _chunks(todo, chunk), workers, writer, journal, summary, progress)
        if writer is not None:
            writer.close()
    finally:
        journal.close()
    summary.seconds = time.perf_counter() - t0
    summary.total_images, summary.total_failures = journal.ok, journal.failed
    summary.total_src_bytes, summary.total_out_bytes = journal.src_bytes, journal.out_bytes
    return summary


def _run(plan: Plan, chunks: Iterator[list], workers: int | None, writer: ShardWriter | None,
         journal: Journal, summary: Summary, progress: bool) -> None:
    from tqdm import tqdm

    workers = (os.cpu_count() or 1) if workers is None else workers
    bar = tqdm(unit="img", desc="convert", disable=not progress, file=sys.stderr, smoothing=0.1)
    try:
        if workers <= 0:
            _init_worker(plan)
            for items in chunks:
                _collect(items, _work(items), writer, journal, summary, bar)
            return
        import multiprocessing as mp

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker, initargs=(plan,)) as pool:
            window: deque = deque()
            for items in chunks:
                window.append((items, pool.submit(_work, items)))
                if len(window) >= 2 * workers:
                    it, fut = window.popleft()
                    _collect(it, fut.result(), writer, journal, summary, bar)
            while window:
                it, fut = window.popleft()
                _collect(it, fut.result(), writer, journal, summary, bar)
    finally:
        bar.close()


def _collect(items: list, results: list, writer: ShardWriter | None, journal: Journal, summary: Summary, bar: Any) -> None:
    """Write one chunk's results in order, then journal them (data first, so a crash never over-reports)."""
    recs = []
    for (key, label, _, _), (name, src_n, out_n, member, err) in zip(items, results):
        lab = label.item() if hasattr(label, "item") else label
        if err is not None:
            recs.append({"key": key, "error": err})
            summary.failures += 1
            summary.errors.append(f"{key}: {err}")
            print(f"symcodec convert: skipped {key}: {err}", file=sys.stderr)
            continue
        rec = {"key": key, "path": name, "label": lab, "src_bytes": src_n, "out_bytes": out_n}
        if writer is not None:
            rec["shard"], rec["end"] = writer.add(member)
        recs.append(rec)
        summary.images += 1
        summary.src_bytes += src_n
        summary.out_bytes += out_n
    if writer is not None:
        writer.flush()
    for rec in recs:
        journal.record(rec)
    journal.flush()
    bar.update(len(items))
