#!/usr/bin/env python
"""Train the shipped classifiers on the shared datasets: weights/<name>.pt and its card weights/<name>.md.

A thin wrapper of `symcodec.train.classifier.train_classifier` (`symcodec train-classifier` for any other
dataset) that knows the shared CIFAR-10 and MNIST train/test splits and names outputs in weights/.

Clean CIFAR-10 (airbench-style net, ~20 min on 2 free cores):
    python tools/train_classifier.py cifar10-clean --arch airnet --epochs 10
Fine-tune on reconstructions (each image at each step drawn from the clean images and the codebooks' output):
    python tools/train_classifier.py cifar10-airnet-sym --init cifar10-airnet --purify cifar10-2x2-k128,cifar10-2x2-k2048 --mix-clean
MNIST:
    python tools/train_classifier.py mnist-clean --arch mnistnet --epochs 2
Adversarial training (checkpointed every epoch under --out; rerun the same command to resume):
    python tools/train_classifier.py cifar10-at-nfgsm --arch-kw '{"widths": [64, 256, 256]}' --epochs 15 \
        --adversarial n-fgsm --eps 8/255 --eps-warmup 3 --out ../train-runs
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symcodec.train.classifier import PRESETS, train_classifier  # noqa: E402

DATA = {
    "cifar10": ("datasets/cifar10-jpeg/train.tar", "datasets/cifar10-jpeg/test.tar"),
    "mnist": ("datasets/mnist/train-images.idx3-ubyte.gz", "datasets/mnist/t10k-images.idx3-ubyte.gz"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", help="output name: weights/<name>.pt and weights/<name>.md")
    ap.add_argument("--dataset", choices=sorted(DATA), default=None, help="default: the name's prefix (cifar10-..., mnist-...)")
    ap.add_argument("--arch", choices=sorted(PRESETS), default=None, help="default: by image shape (mnistnet for 28x28 grey, else airnet)")
    ap.add_argument("--epochs", type=float, default=None)
    ap.add_argument("--arch-kw", default="{}", help='JSON keyword arguments for the architecture, e.g. \'{"width": 16}\'')
    ap.add_argument("--init", default=None, help="start from these weights (fine-tuning)")
    ap.add_argument("--purify", default=None, help="train on reconstructions by these codebooks or codec settings (comma-separated: cifar10-ycc420-k256-ppm,webp:30,avif:10)")
    ap.add_argument("--mix-clean", type=int, nargs="?", const=1, default=0, metavar="W",
                    help="with --purify: the clean images are one more version (W: drawn W times as often)")
    ap.add_argument("--lr-scale", type=float, default=1.0)
    ap.add_argument("--lookahead", action="store_true", help="airbench's lookahead weight averaging")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="train on N evenly spaced images only (smoke runs)")
    ap.add_argument("--out", default=str(ROOT / "weights"))
    ap.add_argument("--adversarial", default=None, help="fgsm-rs, n-fgsm, pgd-K or trades-K")
    ap.add_argument("--trades-beta", type=float, default=6.0, help="--adversarial trades-K: weight of the KL term")
    ap.add_argument("--eps", default="0", help="--adversarial: Linf radius on [0, 1] pixels, e.g. 8/255")
    ap.add_argument("--eps-warmup", type=float, default=0.0, help="--adversarial: epochs over which eps grows from 0")
    ap.add_argument("--purify-in-loop", default=None, help="--adversarial: train through this codebook's purifier")
    ap.add_argument("--stop-after", type=int, default=None, help="stop after N epochs of this run (rerun to resume)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto; a checkpoint resumes on any device")
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast for forward and backward passes")
    a = ap.parse_args()
    dataset = a.dataset or a.name.split("-")[0]
    if dataset not in DATA:
        ap.error(f"cannot tell the dataset from {a.name!r}: name it cifar10-... or mnist-..., or pass --dataset "
                 "(any other dataset: symcodec train-classifier)")
    train, test = (str(ROOT.parent / "shared" / p) for p in DATA[dataset])
    cmd = "python tools/train_classifier.py " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    meta = train_classifier(train, Path(a.out) / f"{a.name}.pt", test=test, arch=a.arch, epochs=a.epochs, init=a.init,
                            on_reconstructions=a.purify.split(",") if a.purify else (), mix_clean=a.mix_clean, seed=a.seed,
                            threads=a.threads, limit=a.limit, lr_scale=a.lr_scale, lookahead=a.lookahead,
                            arch_kw=json.loads(a.arch_kw), command=cmd, adversarial=a.adversarial, eps=a.eps,
                            eps_warmup=a.eps_warmup, purify_in_loop=a.purify_in_loop,
                            checkpoint=Path(a.out) / f"{a.name}.ckpt", stop_after=a.stop_after,
                            device=a.device, amp=a.amp, trades_beta=a.trades_beta)
    if "stopped" in meta:
        print(f"stopped after epoch {meta['stopped']}; rerun the same command to resume from {meta['checkpoint']}", file=sys.stderr)
        return
    print("test accuracy:", json.dumps(meta["test_accuracy"]), file=sys.stderr)


if __name__ == "__main__":
    main()
