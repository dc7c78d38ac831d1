"""Benchmark `symcodec convert`: CIFAR-10 JPEG tars -> .sym tars with N spawn workers.

Runs the real CLI in a subprocess per dataset and records images/s, peak memory (summed RSS of the
parent and its workers, sampled from /proc every 50 ms, plus the largest single-process ru_maxrss),
CPU time per image, and bytes (source JPEG members vs .sym members vs the output tar). The machine
is shared, so the load average is recorded with each run. Also profiles one worker in-process
(CPU ms per image for JPEG decode + encode + tar member).

    python tools/bench_convert.py                      # test.tar and train.tar, 2 workers
    python tools/bench_convert.py --datasets test --workers 2 --out /tmp/b.json
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg"


def _tree_rss(pid: int) -> int:
    """Summed resident memory (bytes) of a process and all its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            continue
    return total


def run_one(src: Path, workers: int, chunk: int, limit: int | None) -> dict:
    """Convert one tar with the CLI; return the measurements."""
    with tempfile.TemporaryDirectory(prefix="bench_convert_") as tmp:
        dst = Path(tmp) / "out.tar"
        cmd = [sys.executable, "-m", "symcodec.cli", "convert", str(src), str(dst), "-j", str(workers), "--chunk", str(chunk), "--json"]
        if limit:
            cmd += ["--limit", str(limit)]
        load0 = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        peak = [0]
        samples: list[tuple[float, int]] = []

        def sample() -> None:
            while p.poll() is None:
                r = _tree_rss(p.pid)
                peak[0] = max(peak[0], r)
                samples.append((time.perf_counter() - t0, r))
                time.sleep(0.05)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        out, _ = p.communicate()
        wall = time.perf_counter() - t0
        th.join()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if p.returncode != 0:
            raise SystemExit(f"convert failed ({p.returncode}): {out[-500:]}")
        s = json.loads(out)
        tar_bytes = dst.stat().st_size
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        # memory in the second half of the run vs the first: flat means the stream does not accumulate
        half = [r for t, r in samples if t > wall / 2]
        first = [r for t, r in samples if t <= wall / 2]
        return {
            "images": s["total_images"], "failures": s["total_failures"],
            "seconds_wall": round(wall, 2), "seconds_convert": round(s["seconds"], 2),
            "images_per_s": round(s["images"] / s["seconds"], 1),
            "startup_s": round(s["first_result_s"], 2),
            "images_per_s_after_startup": round((s["images"] - chunk) / max(s["seconds"] - s["first_result_s"], 1e-9), 1),
            "peak_rss_mib": round(peak[0] / 2**20, 1),
            "rss_first_half_max_mib": round(max(first, default=0) / 2**20, 1),
            "rss_second_half_max_mib": round(max(half, default=0) / 2**20, 1),
            "max_single_process_maxrss_mib": round(after.ru_maxrss / 1024, 1),
            "cpu_ms_per_image": round(cpu / s["images"] * 1e3, 3),
            "src_jpeg_bytes": s["total_src_bytes"], "sym_bytes": s["total_out_bytes"], "tar_bytes": tar_bytes,
            "src_tar_bytes": src.stat().st_size,
            "ratio_jpeg_over_sym": round(s["total_src_bytes"] / s["total_out_bytes"], 4),
            "load_avg_1min_start": round(load0, 2), "load_avg_1min_end": round(os.getloadavg()[0], 2),
        }


def worker_profile(src: Path, n: int = 2560, chunk: int = 256) -> dict:
    """CPU ms per image inside one worker (JPEG decode, batched encode, tar member), in this process; min of 3 after a warm-up."""
    sys.path.insert(0, str(ROOT))
    from symcodec.data import convert as cv
    from symcodec.data import workers

    workers._init_worker(workers.Plan())
    chunks = list(cv._chunks(itertools.islice(cv.iter_source(src), n), chunk))
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
    for _ in itertools.islice(cv.iter_source(src), n):
        pass
    read = (time.process_time() - t) / n * 1e3
    return {"worker_cpu_ms_per_image": round(per, 3), "worker_cpu_ms_per_image_reps": [round(r, 3) for r in reps],
            "parent_read_cpu_ms_per_image": round(read, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["test", "train"], choices=["test", "train"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--limit", type=int, default=None)
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
        r = run_one(src, a.workers, a.chunk, a.limit)
        print(name, json.dumps(r), file=sys.stderr)
        runs.append(r)
        settings.append({"dataset": f"cifar10-jpeg/{name}.tar", "workers": a.workers, "chunk": a.chunk, "limit": a.limit,
                         "codebook": "default (symcodec.codec.choice: cifar10-ycc420-k512-ppm for 32x32 RGB)", "output": "one .sym tar"})
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    doc = {
        "name": "bench_convert",
        "description": "symcodec convert of CIFAR-10 JPEG tars to a .sym tar via the CLI in a subprocess; images_per_s over "
                       "the conversion (worker start-up included); peak_rss_mib = max over time of the summed RSS of the "
                       "parent and its spawn workers; startup_s = time until the first chunk of results (spawn, imports, codebook, numba); "
                       "images_per_s_after_startup = (images - first chunk) / (seconds - startup_s); cpu_ms_per_image = all child CPU time / images. The 2-core machine "
                       f"is shared with other jobs (see load_avg_*). nproc={os.cpu_count()}.",
        "results": {k: [r[k] for r in runs] for k in runs[0]},
        "worker_profile": prof,
        "settings": settings,
        "aggregation": "one run per dataset; totals over all images",
        "versions": {"symcodec": symcodec.__version__, "numpy": numpy.__version__, "pillow": PIL.__version__,
                     "python": sys.version.split()[0]},
        "git_commit": commit,
        "seed": None,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(a.out)


if __name__ == "__main__":
    main()
