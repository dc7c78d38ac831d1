"""Probe: rate-biased centroid choice (entropy-constrained VQ at encode time) on CIFAR-10, accuracy against bytes.

The format lets an encoder send any id; the decoder looks it up all the same. Choosing, for each patch,
argmin_c |x - c|^2 + lam * bits(c) (bits: -log2 of the codebook's symbol counts) trades a little distortion
for fewer bits. This probe encodes all test images that way with a shipped ycc420 codebook and its entropy
model 3, frames them as compact .sym (the codec's own entropy coder and framing, so the bytes are real),
decodes by lookup and classifies, for each lam. lam = 0 is the shipped encoder (its ids are compared with the shipped searcher's).

    python tools/probe_rate_biased.py --codebook cifar10-ycc420-k1024-ppm --lam 0 3e-4 1e-3 --json out.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symcodec.bench.atrate import pack_correct  # noqa: E402
from symcodec.classify import models  # noqa: E402
from symcodec.codebook import registry  # noqa: E402
from symcodec.codec.decoder import decode  # noqa: E402
from symcodec.codec.encoder import encoder_for  # noqa: E402
from symcodec.data.sources import load_arrays  # noqa: E402

TEST = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg" / "test.tar"


def biased_ids(rows: np.ndarray, cent: np.ndarray, bits: np.ndarray, lam: float, chunk: int = 65536) -> np.ndarray:
    """argmin over centroids of the squared distance plus lam * bits, for each row (ties: the lowest id)."""
    c = torch.from_numpy(cent).double()
    pen = (c * c).sum(1) + lam * torch.from_numpy(bits).double()
    out = np.empty(len(rows), np.int64)
    for i in range(0, len(rows), chunk):
        x = torch.from_numpy(rows[i:i + chunk]).double()
        out[i:i + chunk] = ((x * x).sum(1, keepdim=True) - 2 * x @ c.T + pen).argmin(1).numpy()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codebook", required=True)
    ap.add_argument("--lam", type=float, nargs="+", required=True)
    ap.add_argument("--model", default="cifar10-airnet3")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x, y, _ = load_arrays(str(TEST))
    if a.limit is not None and a.limit < len(x):  # evenly spaced, as symcodec eval --limit takes them (the tar is sorted by class)
        keep = np.linspace(0, len(x) - 1, a.limit).round().astype(int)
        x, y = x[keep], y[keep]
    cb = registry.get(a.codebook)
    n, h, w = x.shape[:3]
    enc = encoder_for(cb, w, h, "RGB")
    rows = np.concatenate([enc._ycc_rows(im) for im in x])  # (n * symbols, p * p), the encoder's own patches
    shipped = cb.searcher.nearest(rows).astype(np.int64)
    bits = -np.log2(cb.counts / cb.counts.sum())
    model = models.load(a.model)
    out = {"codebook": a.codebook, "codebook_id": cb.hexid, "model": a.model, "n_images": n, "runs": []}
    for lam in a.lam:
        ids = biased_ids(rows, cb.centroids.astype(np.float64), bits, lam)
        if lam == 0:  # the shipped encoder's choice, but for float ties
            print(f"lam 0: {(ids != shipped).mean():.2e} of the ids differ from the shipped searcher's", file=sys.stderr)
        ids = ids.reshape(n, enc.n)
        size = 0
        rec = np.empty_like(x)
        for i in tqdm(range(n), desc=f"lam {lam:g}", unit="img", file=sys.stderr):  # the codec's own framing and decoder
            data = enc.frame(enc.model.encode_flat(ids[i].astype(np.int32), enc.layout), x[i], compact=True)
            size += len(data)
            rec[i] = decode(data, cb)
        pred = models.predict(model, rec)
        ok = pred == y
        mse = float(((rec.astype(np.float64) - x) ** 2).mean())
        run = {"lam": lam, "bpp": size * 8 / (n * h * w), "bytes_per_image": size / n, "top1": 100 * float(ok.mean()),
               "psnr": float(10 * np.log10(255 ** 2 / mse)), "changed_ids": float((ids.ravel() != shipped).mean()),
               "correct": pack_correct(ok)}
        print(json.dumps({k: v for k, v in run.items() if k != "correct"}), file=sys.stderr)
        out["runs"].append(run)
    Path(a.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
