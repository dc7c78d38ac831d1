#!/usr/bin/env python
"""Fine-tune a symbol classifier (reads .sym ids, no pixel decoding) on the shared CIFAR-10 or MNIST split.

A thin wrapper of `symcodec.train.symbolic.train_symbolic`: <out>/<name>.pt and its card <name>.md.
    python tools/train_symbolic.py cifar10-sym-k512 --codebook cifar10-ycc420-k512-ppm --init cifar10-airnet3-ft-symc
The control (tables frozen at the centroids: the same steps on the decoder's pixels):
    python tools/train_symbolic.py cifar10-sym-k512-frozen --codebook cifar10-ycc420-k512-ppm --init cifar10-airnet3-ft-symc --freeze-tables
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symcodec.train.symbolic import train_symbolic  # noqa: E402
from train_classifier import DATA  # noqa: E402  (tools/ is this script's folder: the same shared train/test splits)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", help="output name (cifar10-... or mnist-...): <out>/<name>.pt and <name>.md")
    ap.add_argument("--codebook", required=True)
    ap.add_argument("--init", required=True, help="the pixel classifier to start from")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--lr-scale", type=float, default=0.15)
    ap.add_argument("--table-lr", type=float, default=1e-3)
    ap.add_argument("--freeze-tables", action="store_true", help="control: tables stay at the centroids")
    ap.add_argument("--freeze-backbone", action="store_true", help="train the tables alone")
    ap.add_argument("--no-lookahead", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default=str(ROOT / "weights"))
    a = ap.parse_args()
    dataset = a.name.split("-")[0]
    if dataset not in DATA:
        ap.error(f"name it cifar10-... or mnist-..., not {a.name!r}")
    train, test = (str(ROOT.parent / "shared" / p) for p in DATA[dataset])
    cmd = "python tools/train_symbolic.py " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    meta = train_symbolic(train, Path(a.out) / f"{a.name}.pt", codebook=a.codebook, init=a.init, test=test, epochs=a.epochs,
                          lr_scale=a.lr_scale, table_lr=a.table_lr, freeze_tables=a.freeze_tables, freeze_backbone=a.freeze_backbone,
                          lookahead=not a.no_lookahead, threads=a.threads, limit=a.limit, command=cmd)
    print("test accuracy:", meta["test_accuracy"], file=sys.stderr)


if __name__ == "__main__":
    main()
