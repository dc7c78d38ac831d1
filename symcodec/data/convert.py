"""`symcodec convert`: datasets (folders, tars, MNIST idx) to `.sym` and back, in parallel, resumable.

The parent streams the source in order and hands chunks of images to `spawn` worker processes
(bounded in flight, so memory stays flat); each worker loads the codebook once. Results come back in
source order: tar output is appended by the parent to shards (see `symcodec.manifest`), folder output
is written by the workers (temporary name, then rename). A failing image is recorded and skipped.
"""
from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import re
import sys
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from tqdm import tqdm

from ..codebook import registry
from ..codec.choice import check_quality
from ..errors import DatasetError
from ..format.sym import is_sym
from .manifest import Journal, ShardWriter
from .listing import Work, iter_source
from .sources import Sample, count_samples
from .workers import OUT_EXT, Plan, _init_worker, _work


ENGINES = ("local", "ray")
CHUNK = {"local": 256, "ray": 1024}  # images per task: a Ray task costs more to schedule than a pool's


@dataclass
class Summary:
    """Totals of a conversion (this run, plus what earlier runs had finished)."""

    images: int = 0
    failures: int = 0
    skipped: int = 0
    src_bytes: int = 0
    out_bytes: int = 0
    seconds: float = 0.0
    first_result_s: float = 0.0  # start-up: until the first chunk came back (worker spawn, imports, codebook)
    total_images: int = 0
    total_failures: int = 0
    total_src_bytes: int = 0
    total_out_bytes: int = 0
    manifest: str = ""
    errors: list[str] = field(default_factory=list)
    _t0: float = field(default=0.0, repr=False)

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
        d = asdict(self)
        d.pop("_t0")
        return {**d, "ratio": round(self.ratio, 4), "images_per_s": round(self.images_per_s, 1)}

    def text(self) -> str:
        """A short human summary."""
        return (
            f"{self.images} images in {self.seconds:.1f} s ({self.images_per_s:.0f} img/s), {self.skipped} done before, "
            f"{self.failures} failed; all runs: {self.total_images} images, {self.total_src_bytes:,} source bytes -> "
            f"{self.total_out_bytes:,} output bytes (ratio {self.ratio:.2f}), {self.total_failures} failures; manifest {self.manifest}"
        )


# -- parent side ---------------------------------------------------------------------------
def manifest_path(dst: str | os.PathLike[str]) -> Path:
    """Default manifest: DST/manifest.jsonl for folders; out.manifest.jsonl beside out.tar or out-%05d.tar."""
    d = Path(dst)
    if not str(dst).endswith(".tar"):
        return d / "manifest.jsonl"
    stem = re.sub(r"%0?\d*d", "", d.name[: -len(".tar")]).rstrip("-_.") or "shards"
    return d.parent / f"{stem}.manifest.jsonl"


def _infer_to(first: Sample | None) -> str:
    if first is not None and (first.key.endswith(".sym") or is_sym(first.bytes() or b"")):
        return "png"
    return "sym"


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    to: str | None = None,
    codebook: str | None = None,
    embed_codebook: bool = False,
    compact: bool = False,
    quality: int | None = None,
    workers: int | None = None,
    chunk: int | None = None,
    shard_size: int | None = None,
    limit: int | None = None,
    manifest: str | os.PathLike[str] | None = None,
    progress: bool = True,
    engine: str = "local",
    address: str | None = None,
) -> Summary:
    """Convert a dataset to `.sym` (or `.sym` back to png/jpeg); resumable; returns the summary.

    engine "local" runs a process pool of `workers`; "ray" runs Ray Data actors on the cluster at `address`
    (or RAY_ADDRESS; else a local one), `workers` of them at most. Both write the same bytes and manifest.
    """
    if engine not in ENGINES:
        msg = f"unknown engine {engine!r}, expected one of {', '.join(ENGINES)}"
        raise DatasetError(msg)
    chunk = chunk or CHUNK[engine]
    t0 = time.perf_counter()
    samples = iter_source(src)
    first = next(samples, None) if limit != 0 else None
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
    quality = check_quality(quality)
    cb_id = None
    if to == "sym":
        cb_id = registry.get(codebook).hexid if codebook is not None else "auto"
    settings = {"src": str(Path(src).resolve()), "dst": str(Path(dst).resolve()), "to": to, "codebook": cb_id,
                "embed_codebook": embed_codebook, "quality": quality, "shard_size": shard_size}
    if compact:  # only when set, so journals written before the option still resume
        settings["compact"] = True
    journal = Journal.open(Path(manifest) if manifest else manifest_path(dst), settings)
    summary = Summary(skipped=journal.done, manifest=str(journal.path))
    summary._t0 = t0
    try:
        writer = ShardWriter(dst_s, shard_size, journal) if is_tar else None
        plan = Plan(to, codebook, embed_codebook, quality, None if is_tar else str(Path(dst)), compact)
        if not is_tar:
            Path(dst).mkdir(parents=True, exist_ok=True)
        work = Work(str(src), chunk, limit, journal.done, journal.last_key, str(journal.path))
        done = journal.done

        def total() -> int | None:
            n = count_samples(src)
            return None if n is None else max(0, (n if limit is None else min(n, limit)) - done)

        _run(plan, work, samples, workers, writer, journal, summary, progress, total if progress else None, engine, address)
        if writer is not None:
            writer.close()
    finally:
        journal.close()
    summary.seconds = time.perf_counter() - t0
    summary.total_images, summary.total_failures = journal.ok, journal.failed
    summary.total_src_bytes, summary.total_out_bytes = journal.src_bytes, journal.out_bytes
    return summary


def _run(plan: Plan, work: Work, samples: Iterator[Sample], workers: int | None, writer: ShardWriter | None, journal: Journal,
         summary: Summary, progress: bool, total: Callable[[], int | None] | None = None, engine: str = "local",
         address: str | None = None) -> None:
    bar = tqdm(unit="img", desc="convert", disable=not progress, file=sys.stderr, smoothing=0.1)

    def count() -> None:  # beside the conversion (a tar's headers: 0.4 s for CIFAR-10 train)
        if total is not None:
            threading.Thread(target=_set_total, args=(bar, total), daemon=True).start()

    try:
        if engine == "ray":
            try:
                from . import rayengine  # ray: the [ray] extra
            except ImportError as exc:
                msg = f"--engine ray needs Ray Data: pip install 'symcodec[ray]' ({exc})"
                raise DatasetError(msg) from None

            rayengine.run(plan, work, workers, address, lambda it, res: _collect(it, res, writer, journal, summary, bar), count)
            return
        count()
        chunks = work.chunks(samples)
        workers = (os.cpu_count() or 1) if workers is None else workers
        if workers <= 0:
            _init_worker(plan)
            for items in chunks:
                _collect(items, _work(items), writer, journal, summary, bar)
            return
        try:
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker, initargs=(plan,)) as pool:
                window: deque = deque()  # bounded: memory stays flat however long the source is
                for items in chunks:
                    window.append((items, pool.submit(_work, items)))
                    if len(window) >= 2 * workers:
                        it, fut = window.popleft()
                        _collect(it, fut.result(), writer, journal, summary, bar)
                while window:
                    it, fut = window.popleft()
                    _collect(it, fut.result(), writer, journal, summary, bar)
        except BrokenProcessPool:
            msg = "a worker process died (killed, or out of memory); rerun the same command to resume"
            raise DatasetError(msg) from None
    finally:
        bar.close()


def _set_total(bar: Any, total: Callable[[], int | None]) -> None:
    n = total()
    if n is not None:
        with bar.get_lock():
            bar.total = n
        bar.refresh()


def _collect(items: list, results: list, writer: ShardWriter | None, journal: Journal, summary: Summary, bar: Any) -> None:
    """Write one chunk's results in order, then journal them (data first, so a crash never over-reports)."""
    recs = []
    for (key, label, _, _), (name, src_n, out_n, member, err) in zip(items, results):
        lab = label.item() if hasattr(label, "item") else label
        if err is not None:
            recs.append({"key": key, "error": err})
            summary.failures += 1
            if len(summary.errors) < 100:
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
    if not summary.first_result_s:
        summary.first_result_s = time.perf_counter() - summary._t0
    bar.update(len(items))
