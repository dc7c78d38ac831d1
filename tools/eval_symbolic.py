#!/usr/bin/env python
"""Symbol-domain inference beside decode-then-classify: top-1 (95% bootstrap) and images/s on the same .sym files.

    python tools/eval_symbolic.py ../shared/datasets/cifar10-jpeg/test.tar --pixel-model cifar10-airnet3-ft-symc \\
        --row cifar10-ycc420-k256-ppm=cifar10-sym-k256 --row cifar10-ycc420-k512-ppm=cifar10-sym-k512 \\
        --json results/cifar10/symbolic.json
Then read either path at a rate: `python tools/eval_at_rate.py results/cifar10/symbolic.json --curve symc@symbols --bpp 2.0`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symcodec.atomic import atomic_write  # noqa: E402
from symcodec.bench import symbolic  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset")
    ap.add_argument("--pixel-model", required=True, help="the decode-then-classify classifier")
    ap.add_argument("--row", action="append", required=True, help="CODEBOOK=SYMBOL_MODEL (weights name or .pt path)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    rows = [tuple(r.split("=", 1)) for r in a.row]
    if any(len(r) != 2 for r in rows):
        ap.error("--row is CODEBOOK=SYMBOL_MODEL")
    res = symbolic.run(a.dataset, rows, a.pixel_model, limit=a.limit, threads=a.threads)
    print(symbolic.summary(res))
    if a.json is not None:
        atomic_write(a.json, (json.dumps(res, indent=2) + "\n").encode())
    return res


if __name__ == "__main__":
    main()
