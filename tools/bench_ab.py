"""Encode/decode speed of this checkout against an earlier commit, interleaved in one process.

Usage: python tools/bench_ab.py CODEBOOK... [--baseline REF] [--rounds 40] [--json PATH]
The package as it was at REF (a git ref; default the commit before the package moved) is extracted to a
temporary folder as `symcodec_baseline` (its imports are all relative) and imported beside `symcodec`.
Batches of 50 CIFAR-10 test images go through both, batch by batch, with Pillow's JPEG decode and WebP
encode as peers; each codec's best batch is kept (as tools/bench_speed_interleaved.py does). The result
that matters is the ratio this/baseline from the same run: timings on a shared machine swing 20-40% between
runs, but both sides of one run see the same load.
"""
from __future__ import annotations

import argparse
import importlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import symcodec  # noqa: E402

BEFORE_MOVE = "d098cd2"  # main before issue 15 (one house)
CIFAR_TEST = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg" / "test.tar"


def baseline(ref: str, where: Path):
    """Import the package as it was at `ref` under the name symcodec_baseline."""
    raw = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "symcodec"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        tf.extractall(where, filter="data")
    (where / "symcodec").rename(where / "symcodec_baseline")
    sys.path.insert(0, str(where))
    return importlib.import_module("symcodec_baseline")


def cifar(n: int) -> tuple[list[np.ndarray], list[bytes]]:
    """The first n CIFAR-10 test images (pixels and source JPEG bytes)."""
    xs, js = [], []
    with tarfile.open(CIFAR_TEST) as tf:
        for m in tf:
            if len(xs) >= n:
                break
            if m.isfile() and m.name.endswith(".jpg"):
                data = tf.extractfile(m).read()  # type: ignore[union-attr]
                js.append(data)
                xs.append(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    return xs, js


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("codebooks", nargs="+")
    ap.add_argument("--baseline", default=BEFORE_MOVE, help="git ref of the baseline package")
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = baseline(a.baseline, Path(tmp))
        sides = {"this": symcodec, "baseline": old}
        xs, jp = cifar(1000)
        pils = [Image.fromarray(x) for x in xs]
        cbs = {(s, n): mod.get_codebook(n) for s, mod in sides.items() for n in a.codebooks}
        data = {}
        for (s, n), cb in cbs.items():  # also warms every cache and compiles every kernel
            data[s, n] = [sides[s].encode(x, cb) for x in xs]
        for n in a.codebooks:
            if data["this", n] != data["baseline", n]:
                sys.exit(f"{n}: this checkout writes other bytes than {a.baseline}")
        b = 50
        best: dict[str, float] = {}

        def tm(key: str, f) -> None:
            t = time.perf_counter()
            f()
            best[key] = min(best.get(key, 1e9), (time.perf_counter() - t) / b)

        for r in range(a.rounds):
            sl = slice((r * b) % 1000, (r * b) % 1000 + b)
            for n in a.codebooks:
                for s, mod in (sides.items() if r % 2 else reversed(sides.items())):
                    cb, ds = cbs[s, n], data[s, n]
                    tm(f"{n} decode {s}", lambda: [mod.decode(d, cb) for d in ds[sl]])
                    tm(f"{n} encode {s}", lambda: [mod.encode(x, cb) for x in xs[sl]])
            tm("jpeg decode (source files)", lambda: [np.asarray(Image.open(io.BytesIO(j)).convert("RGB")) for j in jp[sl]])
            tm("webp q75 encode", lambda: [p.save(io.BytesIO(), "WEBP", quality=75) for p in pils[sl]])
    ips = {k: 1 / v for k, v in best.items()}
    for k, v in ips.items():
        print(f"  {k:<48} {v:8.0f} images/s ({1e6 / v:5.0f} us)")
    res: dict[str, float] = {}
    for n in a.codebooks:
        for op in ("encode", "decode"):
            res[f"{n} {op} this/baseline"] = ips[f"{n} {op} this"] / ips[f"{n} {op} baseline"]
        res[f"{n} decode_vs_jpeg"] = ips[f"{n} decode this"] / ips["jpeg decode (source files)"]
        res[f"{n} encode_vs_webp"] = ips[f"{n} encode this"] / ips["webp q75 encode"]
        print(f"  {n:<28} encode {res[f'{n} encode this/baseline']:.3f}x, decode {res[f'{n} decode this/baseline']:.3f}x "
              f"the baseline ({a.baseline}); decode {res[f'{n} decode_vs_jpeg']:.2f}x JPEG, encode {res[f'{n} encode_vs_webp']:.2f}x WebP")
    if a.json:
        out = {"name": "symcodec-speed-ab", "description": __doc__.splitlines()[0],
               "results": {k: [v] for k, v in {**{f"ips.{k}": v for k, v in ips.items()}, **res}.items()},
               "settings": {"codebooks": a.codebooks, "baseline": a.baseline, "batch": 50, "rounds": a.rounds},
               "aggregation": "best batch of 50 images per codec and side (images/s = 1 / best seconds per image)"}
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
