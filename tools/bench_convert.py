"""Benchmark `symcodec convert`: CIFAR-10 JPEG tars -> .sym tars, the process pool and the Ray engine on the same cores.

Runs the real CLI in a subprocess per dataset and engine (Ray: on a cluster started with `ray start --head`
just before, stopped after) and records images/s, peak memory (summed RSS of every process that appeared,
sampled from /proc every 50 ms; its two halves, to show it flat), CPU time per image, and bytes. The machine
is shared, so the load average is recorded with each run. Also profiles one worker in-process (CPU ms per
image for JPEG decode + encode + tar member), and with --photos checks both engines write the same bytes
for ../shared/datasets/photos.

    python tools/bench_convert.py --datasets train --photos    # issue 21's run: results/bench_convert.json
    python tools/bench_convert.py --datasets test --engines local --out /tmp/b.json
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg"


def _procs() -> dict[int, tuple[int, int]]:
    """pid -> (resident bytes, CPU ticks) of every process."""
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[int(p)] = (int(fields[21]) * PAGE, int(fields[11]) + int(fields[12]))
        except (OSError, ValueError, IndexError):
            continue
    return out


PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def _ray(*args: str) -> None:
    ray_bin = Path(sys.executable).with_name("ray")
    subprocess.run([str(ray_bin), *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})


def run_one(src: Path, engine: str, workers: int, chunk: int, limit: int | None, keep: Path | None = None,
            base: set[int] | None = None) -> dict:
    """Convert with the CLI (engine "ray": on the running cluster, --address auto); return the measurements.

    Memory and CPU cover every process that appeared since `base` (a set of pids; default: now): the CLI,
    its workers, and for Ray the cluster's daemons and actors when `base` was taken before `ray start`.
    """
    with tempfile.TemporaryDirectory(prefix="bench_convert_") as tmp:
        dst = (keep or Path(tmp)) / ("out.tar" if src.suffix == ".tar" or src.is_dir() else "out")
        cmd = [sys.executable, "-m", "symcodec.cli", "convert", str(src), str(dst), "-j", str(workers), "--chunk", str(chunk), "--json"]
        if limit:
            cmd += ["--limit", str(limit)]
        base_given = base is not None
        base = set(_procs()) if base is None else base
        if engine == "ray":
            cmd += ["--engine", "ray", "--address", "auto"]
        load0 = os.getloadavg()[0]
        ticks0 = {k: t for k, (_, t) in _procs().items()}  # CPU the cluster's daemons spent before this run is not counted
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        me = os.getpid()
        cpu: dict[int, int] = {}
        samples: list[tuple[float, int]] = []

        def sample() -> None:
            while p.poll() is None:
                now = {k: v for k, v in _procs().items() if k not in base and k != me}
                for k, (_, ticks) in now.items():
                    cpu[k] = ticks - ticks0.get(k, 0)
                samples.append((time.perf_counter() - t0, sum(r for r, _ in now.values())))
                time.sleep(0.05)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        out, _ = p.communicate()
        wall = time.perf_counter() - t0
        th.join()
        if p.returncode != 0:
            raise SystemExit(f"convert failed ({p.returncode}): {out[-500:]}")
        s = json.loads(out)
        out_bytes = sum(f.stat().st_size for f in dst.parent.glob("out*.tar"))
        half = [r for t, r in samples if t > wall / 2]
        first = [r for t, r in samples if t <= wall / 2]
        return {
            "engine": engine if engine == "local" else f"{engine} ({'first job on the cluster' if base_given else 'a later job'})",
            "images": s["total_images"], "failures": s["total_failures"],
            "seconds_wall": round(wall, 2), "seconds_convert": round(s["seconds"], 2),
            "images_per_s": round(s["images"] / s["seconds"], 1),
            "startup_s": round(s["first_result_s"], 2),
            "images_per_s_after_startup": round((s["images"] - chunk) / max(s["seconds"] - s["first_result_s"], 1e-9), 1),
            "peak_rss_mib": round(max((r for _, r in samples), default=0) / 2**20, 1),
            "rss_first_half_max_mib": round(max(first, default=0) / 2**20, 1),
            "rss_second_half_max_mib": round(max(half, default=0) / 2**20, 1),
            "cpu_ms_per_image": round(sum(cpu.values()) / TICK / max(s["images"], 1) * 1e3, 3),
            "src_bytes": s["total_src_bytes"], "sym_bytes": s["total_out_bytes"], "tar_bytes": out_bytes,
            "ratio_src_over_sym": round(s["total_src_bytes"] / max(s["total_out_bytes"], 1), 4),
            "load_avg_1min_start": round(load0, 2), "load_avg_1min_end": round(os.getloadavg()[0], 2),
        }


def _digest(folder: Path) -> str:
    """sha256 over the output tars (the manifest names its own path, so it is left out)."""
    h = hashlib.sha256()
    for f in sorted(folder.glob("out*.tar")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def worker_profile(src: Path, n: int = 2560, chunk: int = 256) -> dict:
    """CPU ms per image inside one worker (JPEG decode, batched encode, tar member), in this process; min of 3 after a warm-up."""
    sys.path.insert(0, str(ROOT))
    from symcodec.data import workers
    from symcodec.data.listing import Work, iter_source

    workers._init_worker(workers.Plan())
    chunks = list(itertools.islice(Work(str(src), chunk, n, 0, None, "").chunks(), -(-n // chunk)))
    for c in chunks:  # warm-up: numba caches, the searcher's lazily built cells
        workers._work(c)
    reps = []
    for _ in range(3):
        t = time.process_time()
        for c in chunks:
            workers._work(c)
        reps.append((time.process_time() - t) / n * 1e3)
    per = min(reps)
    t = time.process_time()
    for _ in itertools.islice(iter_source(src), n):
        pass
    read = (time.process_time() - t) / n * 1e3
    return {"worker_cpu_ms_per_image": round(per, 3), "worker_cpu_ms_per_image_reps": [round(r, 3) for r in reps],
            "parent_read_cpu_ms_per_image": round(read, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["test", "train"], choices=["test", "train"])
    ap.add_argument("--engines", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=None, help="images per task  [default: 256 local, 1024 ray]")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--photos", action="store_true", help="also convert ../shared/datasets/photos with each engine and compare the bytes")
    ap.add_argument("--out", default=str(ROOT / "results" / "bench_convert.json"))
    a = ap.parse_args()
    import numpy
    import PIL

    sys.path.insert(0, str(ROOT))
    import symcodec

    prof = worker_profile(DATA / "test.tar")
    print(json.dumps(prof), file=sys.stderr)
    runs, settings = [], []
    for name in a.datasets:
        src = DATA / f"{name}.tar"
        mine = []
        for engine in a.engines:
            chunk = a.chunk or CHUNK[engine]
            if engine == "local":
                mine.append(run_one(src, engine, a.workers, chunk, a.limit))
            else:  # the first job on a fresh cluster (Ray Data starts its own helper actors), then a second one
                base = set(_procs())
                _ray("start", "--head", "--num-cpus", str(a.workers), "--include-dashboard=false", "--disable-usage-stats")
                try:
                    mine.append(run_one(src, engine, a.workers, chunk, a.limit, base=base))
                    mine.append(run_one(src, engine, a.workers, chunk, a.limit))
                finally:
                    _ray("stop", "--force")
        for r in mine:
            print(name, json.dumps(r), file=sys.stderr)
            settings.append({"dataset": f"cifar10-jpeg/{name}.tar", "engine": r["engine"], "workers": a.workers,
                             "chunk": a.chunk or CHUNK[r["engine"].split()[0]], "limit": a.limit, "output": "one .sym tar",
                             "codebook": "default (symcodec.codec.choice: cifar10-ycc420-k512-ppm for 32x32 RGB)"})
        runs += mine
        local = [r for r in mine if r["engine"] == "local"]
        for r in mine:
            if local and r is not local[0]:
                print(f"{name}: {r['engine']} / local = {r['images_per_s'] / local[0]['images_per_s']:.3f} (images/s), "
                      f"{r['images_per_s_after_startup'] / local[0]['images_per_s_after_startup']:.3f} after start-up", file=sys.stderr)
    photos = {}
    if a.photos:
        for engine in a.engines:
            with tempfile.TemporaryDirectory(prefix="bench_photos_") as tmp:
                if engine == "ray":
                    _ray("start", "--head", "--num-cpus", str(a.workers), "--include-dashboard=false", "--disable-usage-stats")
                try:
                    r = run_one(ROOT.parent / "shared" / "datasets" / "photos", engine, a.workers, CHUNK["local"], None, keep=Path(tmp))
                finally:
                    if engine == "ray":
                        _ray("stop", "--force")
                photos[engine] = {"images": r["images"], "failures": r["failures"], "sym_bytes": r["sym_bytes"],
                                  "sha256_of_tars": _digest(Path(tmp)), "seconds_wall": r["seconds_wall"]}
        photos["identical"] = len({v["sha256_of_tars"] for v in photos.values()}) == 1
        print("photos", json.dumps(photos), file=sys.stderr)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    doc = {
        "name": "bench_convert",
        "description": "symcodec convert of CIFAR-10 JPEG tars to a .sym tar via the CLI in a subprocess, with each engine on "
                       "the same cores: local = a process pool of spawn workers; ray = Ray Data actors on a cluster started "
                       "just before with `ray start --head --num-cpus WORKERS` (the CLI gets --address auto): its first job "
                       "(which also starts Ray Data's helper actors; memory includes the cluster's daemons) and a second job "
                       "on the same cluster (memory: the processes that job started). "
                       "images_per_s = images / the conversion's own seconds (import of Ray, connection, worker and actor "
                       "start-up included); startup_s = time until the first chunk of results; images_per_s_after_startup = "
                       "(images - first chunk) / (seconds - startup_s); peak_rss_mib = max over time of the summed RSS of every "
                       "process that appeared during the run (CLI, workers, Ray daemons and actors); rss_first/second_half_max_mib "
                       "compare the two halves of the run (flat: the stream does not accumulate); cpu_ms_per_image = the CPU "
                       f"time of those processes / images. The 2-core machine is shared (see load_avg_*). nproc={os.cpu_count()}.",
        "results": {k: [r[k] for r in runs] for k in runs[0]},
        "photos": photos,
        "worker_profile": prof,
        "settings": settings,
        "aggregation": "one run per dataset and engine; totals over all images",
        "versions": {"symcodec": symcodec.__version__, "numpy": numpy.__version__, "pillow": PIL.__version__,
                     "ray": _version("ray"), "python": sys.version.split()[0]},
        "git_commit": commit,
        "seed": None,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(a.out)


CHUNK = {"local": 256, "ray": 1024}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
