"""A classifier-aware ycc420 codebook (issue 17): k-means with each patch weighted by the classifier's sensitivity to it.

The loss a classifier suffers when a patch x is replaced by a centroid c is, to second order, (c - x)' F (c - x)
with F its Fisher information at x. With F's diagonal summed to one number per patch (the squared gradients of
the log-likelihood of a label drawn from the model's own softmax, taken on the training images, carried from
RGB to the Y, Cb, Cr planes through formats/sym.md section 4.2 in floating point), k-means in that metric is
k-means with one weight per patch: run here on a sample drawn in proportion to the weights
(`train_ycc420(weigh=...)`). A scalar weight leaves the nearest centroid of a patch unchanged, so the
encoder (plain L2 search) and the format stay as they are; only where the centroids sit, and so the symbol
statistics and the rate, change. `--alpha` tempers the weights (w = s^alpha, normalised) and `--mix` blends
in uniform weights (w = (1 - mix) w + mix).

    python tools/train_aware_codebook.py -k 512 --alpha 0.5 --mix 0.2 --name cifar10-ycc420-k512-fisher \
        -o /tmp/k512f.symcb --install
    symcodec eval ../shared/datasets/cifar10-jpeg/test.tar -m cifar10-airnet3 --codec symc:cifar10-ycc420-k512-fisher
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symcodec.codebook.codebook import Codebook  # noqa: E402
from symcodec.codebook.registry import install  # noqa: E402
from symcodec.classify import models  # noqa: E402
from symcodec.data.sources import load_arrays  # noqa: E402
from symcodec.train.kmeans import train_ycc420  # noqa: E402
from symcodec.vq.colour import rgb_to_planes  # noqa: E402

TRAIN = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg" / "train.tar"
# d(R, G, B)/d(Y, Cb, Cr) of formats/sym.md section 4.2 in floating point (rows: R, G, B)
_M = np.array([[1.0, 0.0, 91881 / 65536], [1.0, -22554 / 65536, -46802 / 65536], [1.0, 116130 / 65536, 0.0]], np.float32)


def fisher_sensitivity(model: torch.nn.Module, x: np.ndarray, seed: int = 0, batch: int = 250) -> list[np.ndarray]:
    """Per 2x2 patch of the Y, Cb, Cr planes: the summed squared gradient of log p(y~|x), y~ drawn from the model."""
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    n, h, w = x.shape[:3]
    sy = np.empty((n, h // 2, w // 2), np.float64)
    sc = [np.empty((n, h // 4, w // 4), np.float64) for _ in range(2)]
    m = torch.from_numpy(_M)
    for i in tqdm(range(0, n, batch), desc="Fisher sensitivity", unit="batch", file=sys.stderr):
        t = models.to_tensor(x[i:i + batch]).contiguous().requires_grad_(True)
        logits = model(t)
        y = torch.multinomial(torch.softmax(logits.detach().float(), 1), 1, generator=gen)[:, 0]
        torch.nn.functional.cross_entropy(logits, y, reduction="sum").backward()
        g = torch.einsum("nchw,cp->nphw", t.grad, m)  # gradients on full-resolution Y, Cb, Cr
        gy = g[:, 0]
        gc = g[:, 1:].reshape(len(g), 2, h // 2, 2, w // 2, 2).sum((3, 5))  # chroma is replicated 2x2 on decoding
        sy[i:i + batch] = (gy.reshape(len(g), h // 2, 2, w // 2, 2) ** 2).sum((2, 4)).numpy()
        for c in range(2):
            sc[c][i:i + batch] = (gc[:, c].reshape(len(g), h // 4, 2, w // 4, 2) ** 2).sum((2, 4)).numpy()
    return [sy, *sc]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", type=int, default=512)
    ap.add_argument("--model", default="cifar10-airnet3")
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--mix", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-patches", type=int, default=1_000_000)
    ap.add_argument("--niter", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", required=True)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--install", action="store_true")
    ap.add_argument("--cache", default=None, help="an .npz of the sensitivities (and the model and seed they came from): read if there, else written")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x, _, _ = load_arrays(str(TRAIN))
    t0 = time.perf_counter()
    if a.cache and Path(a.cache).exists():
        with np.load(a.cache) as z:
            if (str(z["model"]), int(z["seed"])) != (a.model, a.seed):
                raise SystemExit(f"{a.cache} holds the sensitivities of {z['model']} with seed {z['seed']}")
            sens = [z["y"], z["cb"], z["cr"]]
    else:
        sens = fisher_sensitivity(models.load(a.model), x, a.seed)
        if a.cache:
            np.savez(a.cache, y=sens[0], cb=sens[1], cr=sens[2], model=a.model, seed=a.seed)
    print(f"sensitivity: {time.perf_counter() - t0:.0f} s; share of the total in the 1% most sensitive patches: "
          f"{np.sort(np.concatenate([s.ravel() for s in sens]))[::-1][: sum(s.size for s in sens) // 100].sum() / sum(s.sum() for s in sens):.3f}",
          file=sys.stderr)

    def weigh(planes: list[np.ndarray]) -> np.ndarray:
        if len(planes[0]) != len(x) or not all(np.array_equal(p, q) for p, q in zip(rgb_to_planes(x[0]), (pl[0] for pl in planes))):
            raise SystemExit("the codebook's planes are not the images the sensitivities were taken on")
        s = np.concatenate([v.ravel() for v in sens]) ** a.alpha
        return (1 - a.mix) * s / s.mean() + a.mix

    cmd = "python tools/train_aware_codebook.py " + shlex.join(sys.argv[1:])
    cb = train_ycc420([str(TRAIN)], a.k, seed=a.seed, max_patches=a.max_patches, niter=a.niter, name=a.name,
                      command=cmd, weigh=weigh)
    prov = {**cb.provenance, "weights": {"kind": "Fisher sensitivity (diagonal, summed per patch)", "model": a.model,
                                         "alpha": a.alpha, "mix": a.mix, "images": "train.tar (no test images)"}}
    cb = Codebook(cb.centroids, patch=cb.patch, counts=cb.counts, colour=cb.colour, name=a.name, provenance=prov,
                  context=cb.context)
    print(f"wrote {cb.save(a.output)} ({cb!r})", file=sys.stderr)
    if a.install:
        print(f"installed {install(a.output)}", file=sys.stderr)


if __name__ == "__main__":
    main()
