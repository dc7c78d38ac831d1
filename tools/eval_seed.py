#!/usr/bin/env python
"""Reproduce SymDNN's accuracy table in the seed's own order (Normalize + softclamp, then purify, then the net).

    python tools/eval_seed.py cifar10   # -> results/cifar10/seed-chain.json
    python tools/eval_seed.py mnist     # -> results/mnist/seed-chain.json

Uses the seed's weights and its softclamp codebooks (.index, imported with symcodec.get_codebook) from
../shared/reference/symdnn/, on our test sets (CIFAR-10: JPEG q75 test.tar; MNIST: t10k idx).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symcodec.atomic import atomic_write  # noqa: E402
from symcodec.bench.evaluate import seed_chain  # noqa: E402

REF = ROOT.parent / "shared" / "reference" / "symdnn"
DATA = ROOT.parent / "shared" / "datasets"
JOBS = {
    "cifar10": (DATA / "cifar10-jpeg" / "test.tar", REF / "cifar10" / "cifar10_resnet_gradinit_sc_232.pt",
                [REF / "cifar10" / f"kmeans_img_k2_s0_c{k}_v1_softclamp.index" for k in (128, 256, 512, 1024, 2048)]),
    "mnist": (DATA / "mnist" / "t10k-images.idx3-ubyte.gz", REF / "mnist" / "mnist_sc_v0_best.pt",
              [REF / "mnist" / f"kmeans_img_mnist_k2_s0_c{k}_sc_v0.index" for k in (32, 256)]),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", choices=sorted(JOBS))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    src, model, cbs = JOBS[args.dataset]
    r = seed_chain(src, str(model), [str(c) for c in cbs], limit=args.limit, threads=args.threads)
    out = Path(args.out or ROOT / "results" / args.dataset / "seed-chain.json")
    atomic_write(out, (json.dumps(r, indent=2) + "\n").encode())
    for cb, acc in zip(r["results"]["codebook"], r["results"]["top1"]):
        print(f"{cb:<45}{acc:8.2f}")


if __name__ == "__main__":
    main()
