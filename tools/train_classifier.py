#!/usr/bin/env python
"""Train a classifier on the shared datasets (CPU, seeded) and write weights/<name>.pt plus a card weights/<name>.md.

Clean CIFAR-10 (airbench-style net, ~20 min on 2 free cores):
    python tools/train_classifier.py cifar10-clean --arch airnet --epochs 10
Fine-tune on purified (VQ-reconstructed) training images:
    python tools/train_classifier.py cifar10-sym2048 --arch airnet --init cifar10-clean --purify cifar10-2x2-k2048 --epochs 3
Fine-tune on a mixture (each image of each batch drawn from one of the versions at random):
    python tools/train_classifier.py cifar10-airnet-sym --init cifar10-airnet --purify cifar10-2x2-k128,cifar10-2x2-k2048 --mix-clean
MNIST:
    python tools/train_classifier.py mnist-clean --arch mnistnet --epochs 4

The whole training set is decoded once into a uint8 tensor; augmentation (reflect-padded random translation,
alternating flips for CIFAR) runs on batches with torch ops. Accuracy on the card is measured on the held-out
test set (never on training data).
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symcodec import purify  # noqa: E402
from symcodec.atomic import atomic_write  # noqa: E402
from symcodec.bench.evaluate import load_dataset  # noqa: E402
from symcodec.classify import models  # noqa: E402

DATA = {
    "cifar10": ("../shared/datasets/cifar10-jpeg/train.tar", "../shared/datasets/cifar10-jpeg/test.tar"),
    "mnist": ("../shared/datasets/mnist/train-images.idx3-ubyte.gz", "../shared/datasets/mnist/t10k-images.idx3-ubyte.gz"),
}
PRESETS = {
    # airbench94/93 recipe (Jordan 2024): summed label-smoothed CE, decoupled lr, Nesterov, triangular schedule.
    "airnet": dict(batch=512, lr=11.5, momentum=0.85, wd=0.0153, bias_scaler=64.0, smoothing=0.2,
                   translate=2, flip=True, whiten_bias_epochs=3, airbench=True, preprocess="cifar-normalize"),
    "resnet20": dict(batch=128, lr=0.1, momentum=0.9, wd=5e-4, bias_scaler=1.0, smoothing=0.0,
                     translate=4, flip=True, whiten_bias_epochs=0, airbench=False, preprocess="cifar-normalize"),
    "mnistnet": dict(batch=128, lr=0.05, momentum=0.9, wd=5e-4, bias_scaler=1.0, smoothing=0.0,
                     translate=2, flip=False, whiten_bias_epochs=0, airbench=False, preprocess="mnist-normalize"),
    "lenet": dict(batch=128, lr=0.05, momentum=0.9, wd=5e-4, bias_scaler=1.0, smoothing=0.0,
                  translate=2, flip=False, whiten_bias_epochs=0, airbench=False, preprocess="mnist-normalize"),
}


def augment(x: torch.Tensor, translate: int, flip_mask: torch.Tensor | None, gen: torch.Generator) -> torch.Tensor:
    """Random translation (reflect padding) and given flips on a uint8 NCHW batch; vectorised per shift."""
    if flip_mask is not None:
        x = torch.where(flip_mask.view(-1, 1, 1, 1), x.flip(-1), x)
    if translate:
        n, _, h, w = x.shape
        pad = F.pad(x.float(), (translate,) * 4, mode="reflect").to(x.dtype)
        dx = torch.randint(0, 2 * translate + 1, (n,), generator=gen)
        dy = torch.randint(0, 2 * translate + 1, (n,), generator=gen)
        out = torch.empty_like(x)
        for sy in range(2 * translate + 1):
            for sx in range(2 * translate + 1):
                m = (dy == sy) & (dx == sx)
                if m.any():
                    out[m] = pad[m, :, sy:sy + h, sx:sx + w]
        x = out
    return x


def triangle(steps: int, start: float = 0.2, end: float = 0.07, peak: float = 0.23) -> np.ndarray:
    """airbench's triangular lr multiplier per step."""
    return np.interp(np.arange(steps + 1), [0, int(peak * steps), steps], [start, 1.0, end])


class Lookahead:
    """airbench's lookahead: every 5 steps the weights are pulled to, and replaced by, their running average."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, decay: float) -> None:
        state = model.state_dict()
        for k, e in self.ema.items():
            e.lerp_(state[k], 1 - decay)
            state[k].copy_(e)


def build(args: argparse.Namespace, hp: dict, x_train: torch.Tensor) -> models.Classifier:
    if args.init:
        model = models.load(args.init)
        model.train()
        return model
    kw = {"num_classes": 10, **json.loads(args.arch_kw)}
    model = models.Classifier(args.arch, hp["preprocess"], **kw)
    if args.arch == "airnet":
        with torch.no_grad():
            model.net.init_whitening(model.pre(models.to_tensor(x_train[:5000].permute(0, 2, 3, 1))))
    return model


def optimizer(model: models.Classifier, hp: dict) -> torch.optim.Optimizer:
    norm_biases = [p for n, p in model.net.named_parameters() if "norm" in n and n.endswith("bias") and p.requires_grad]
    nb_ids = {id(p) for p in norm_biases}
    other = [p for p in model.net.parameters() if p.requires_grad and id(p) not in nb_ids]
    if hp["airbench"]:
        kilostep = 1024 * (1 + 1 / (1 - hp["momentum"]))
        lr, wd = hp["lr"] / kilostep, hp["wd"] * hp["batch"] / kilostep
        lrb = lr * hp["bias_scaler"]
        groups = [dict(params=norm_biases, lr=lrb, weight_decay=wd / lrb), dict(params=other, lr=lr, weight_decay=wd / lr)]
    else:
        groups = [dict(params=norm_biases + other, lr=hp["lr"], weight_decay=hp["wd"])]
    for g in groups:
        g["base_lr"] = g["lr"]
    return torch.optim.SGD(groups, lr=groups[-1]["lr"], momentum=hp["momentum"], nesterov=True)


def accuracy(model: models.Classifier, x: np.ndarray, y: np.ndarray) -> float:
    return float((models.predict(model, x, 500, progress=True) == y).mean() * 100)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", help="output name: weights/<name>.pt and weights/<name>.md")
    ap.add_argument("--dataset", choices=sorted(DATA), default=None, help="default: from the name prefix")
    ap.add_argument("--arch", choices=sorted(PRESETS), default="airnet")
    ap.add_argument("--epochs", type=float, default=10)
    ap.add_argument("--arch-kw", default="{}", help='JSON keyword arguments for the architecture, e.g. \'{"width": 16}\'')
    ap.add_argument("--init", default=None, help="start from these weights (fine-tuning)")
    ap.add_argument("--purify", default=None,
                    help="train on images purified with this codebook (comma-separated: a random one per image and step)")
    ap.add_argument("--mix-clean", type=int, nargs="?", const=1, default=0, metavar="W",
                    help="with --purify: the unpurified images are one more version (W: drawn W times as often)")
    ap.add_argument("--lr-scale", type=float, default=1.0, help="multiply the preset learning rate")
    ap.add_argument("--lookahead", action="store_true", help="airbench's lookahead weight averaging (decay 0.95^5 x (t/T)^3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="train on N evenly spaced images only (smoke runs)")
    ap.add_argument("--out", default=str(ROOT / "weights"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    dataset = args.dataset or args.name.split("-")[0]
    hp = dict(PRESETS[args.arch])
    hp["lr"] *= args.lr_scale
    if args.init:
        hp["whiten_bias_epochs"] = 0
        hp["preprocess"] = "kept from --init"
    train_src, test_src = (str((ROOT / p).resolve()) for p in DATA[dataset])
    t0 = time.time()
    xtr, ytr, _ = load_dataset(train_src, args.limit)
    print(f"loaded {len(xtr)} training images in {time.time() - t0:.0f}s", file=sys.stderr)
    books = args.purify.split(",") if args.purify else []
    versions = [xtr] * max(args.mix_clean, 1) if (args.mix_clean or not books) else []
    done: dict[str, np.ndarray] = {}
    for cb in books:  # a codebook named twice is drawn twice as often (purified once)
        if cb not in done:
            t1 = time.time()
            done[cb] = purify(xtr, cb)
            print(f"purified with {cb} in {time.time() - t1:.0f}s", file=sys.stderr)
        versions.append(done[cb])
    x_all = torch.from_numpy(np.stack(versions)).permute(0, 1, 4, 2, 3).contiguous()  # (V, N, C, H, W)
    x_train = x_all[0]
    y_train = torch.from_numpy(ytr)
    model = build(args, hp, x_train)
    opt = optimizer(model, hp)
    n, bs = len(x_train), hp["batch"]
    steps_per_epoch = math.ceil(n / bs)
    total = int(args.epochs * steps_per_epoch)
    sched = triangle(total)
    flips = torch.rand(n, generator=gen) < 0.5
    whiten_bias = getattr(model.net, "whiten", None)
    hp["lookahead"] = args.lookahead
    look = Lookahead(model) if args.lookahead else None
    alpha = 0.95 ** 5 * (np.arange(total + 1) / max(total, 1)) ** 3
    step, t_train = 0, time.time()
    model.train()
    for epoch in range(math.ceil(args.epochs)):
        if whiten_bias is not None:
            whiten_bias.bias.requires_grad_(epoch < hp["whiten_bias_epochs"])
        perm = torch.randperm(n, generator=gen)
        if hp["flip"] and epoch > 0:
            flips = ~flips  # airbench's alternating flip: every image is seen both ways in consecutive epochs
        bar = tqdm(range(0, n, bs), desc=f"epoch {epoch + 1}", leave=False)
        correct, seen, loss_sum = 0, 0, 0.0
        for i in bar:
            if step >= total:
                break
            idx = perm[i:i + bs]
            xv = x_train[idx] if len(x_all) == 1 else x_all[torch.randint(len(x_all), (len(idx),), generator=gen), idx]
            xb = augment(xv, hp["translate"], flips[idx] if hp["flip"] else None, gen)
            xb = xb.float().div_(255.0)
            out = model(xb)
            loss = F.cross_entropy(out, y_train[idx], label_smoothing=hp["smoothing"],
                                   reduction="sum" if hp["airbench"] else "mean")
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * sched[step]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if look is not None and step % 5 == 0:
                look.update(model, float(alpha[step]))
            correct += int((out.argmax(1) == y_train[idx]).sum())
            seen += len(idx)
            loss_sum += float(loss.detach()) * (1 if hp["airbench"] else len(idx))
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100 * correct / max(seen, 1):.1f}")
        print(f"epoch {epoch + 1}: train loss {loss_sum / max(seen, 1):.4f} train acc {100 * correct / max(seen, 1):.2f}% "
              f"({time.time() - t_train:.0f}s)", file=sys.stderr, flush=True)
    if look is not None:
        look.update(model, 1.0)  # end on the averaged weights
    train_s = time.time() - t_train
    model.eval()
    xte, yte, _ = load_dataset(test_src)
    acc = {"clean": accuracy(model, xte, yte)}
    for cb in dict.fromkeys(books):
        acc[f"purified {cb}"] = accuracy(model, purify(xte, cb), yte)
    print("test accuracy:", json.dumps(acc), file=sys.stderr)
    cmd = "python tools/train_classifier.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    meta = {"dataset": dataset, "train": Path(train_src).name, "test": Path(test_src).name, "n_train": n,
            "n_test": len(xte), "test_accuracy": acc, "recipe": hp, "epochs": args.epochs, "init": args.init,
            "purify": args.purify, "mix_clean": args.mix_clean, "seed": args.seed, "command": cmd, "git_commit": git_commit(),
            "train_seconds": round(train_s), "torch": str(torch.__version__)}
    out = Path(args.out)
    models.save(model, out / f"{args.name}.pt", meta)
    card = [f"# {args.name}", "",
            f"- Architecture: `{args.arch}` ({sum(p.numel() for p in model.net.parameters()):,} parameters), "
            f"preprocessing `{model.preprocess_name}` inside the model; input [0,1] NCHW floats, output logits.",
            f"- Data: {dataset} `{Path(train_src).name}` ({n} images)"
            + (f", every image purified with codebook `{args.purify}`" if len(books) == 1 and not args.mix_clean else "")
            + (f", each image at each step drawn at random from {len(x_all)} versions: "
               + ", ".join((["clean" + (f" (x{args.mix_clean})" if args.mix_clean > 1 else "")] if args.mix_clean else [])
                           + [f"purified with `{b}`" + (f" (x{books.count(b)})" if books.count(b) > 1 else "")
                              for b in dict.fromkeys(books)])
               if len(x_all) > 1 else "")
            + (f"; fine-tuned from `{args.init}`" if args.init else ""),
            f"- Recipe: {json.dumps(hp)}; {args.epochs} epochs, seed {args.seed}, {train_s / 60:.1f} min on "
            f"{args.threads} CPU threads (torch {torch.__version__}).",
            f"- Command: `{cmd}` (git {meta['git_commit'][:10]})",
            f"- Test accuracy on the held-out `{Path(test_src).name}` ({len(xte)} images): "
            + ", ".join(f"{k}: **{v:.2f}%**" for k, v in acc.items()), ""]

    atomic_write(out / f"{args.name}.md", "\n".join(card).encode())
    print(f"wrote {out / args.name}.pt", file=sys.stderr)


if __name__ == "__main__":
    main()
