"""Train every shipped codebook with `symcodec train-codebook` and write its card (codebooks/*.md).

Usage: python tools/train_codebooks.py [--only NAME ...]
Takes about 10 minutes on 2 cores. The commands in the cards are the exact ones run here.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets"
CIFAR = "../shared/datasets/cifar10-jpeg/train.tar"
MNIST = "../shared/datasets/mnist/train-images.idx3-ubyte.gz"
# photos for the general codebook; astronaut, coffee, chelsea and rocket are held out for benchmarks
PHOTOS = ["hubble_deep_field", "immunohistochemistry", "retina", "colorwheel", "brick", "grass", "gravel", "camera", "moon", "page"]

JOBS = {f"cifar10-2x2-k{k}": ([CIFAR], k, f"CIFAR-10 train.tar (50,000 JPEGs)") for k in (128, 256, 512, 1024, 2048)}
JOBS |= {f"mnist-2x2-k{k}": ([MNIST], k, "MNIST train (60,000 digits)") for k in (32, 64, 128, 256)}
JOBS["photo-2x2-k1024"] = ([CIFAR, "PHOTOS"], 1024, "CIFAR-10 train.tar + 10 scikit-image photos (benchmark photos held out)")


def photo_folder(tmp: Path) -> Path:
    """Write the scikit-image training photos as PNGs."""
    import skimage.data as sd
    from PIL import Image

    d = tmp / "skimage-photos"
    d.mkdir(exist_ok=True)
    for name in PHOTOS:
        a = np.asarray(getattr(sd, name)())
        if a.dtype != np.uint8:
            a = (a / a.max() * 255).astype(np.uint8)
        Image.fromarray(a[..., :3] if a.ndim == 3 else a).save(d / f"{name}.png")
    return d


def card(name: str, cmd: str, data: str, cb) -> str:
    """A codebook card in markdown."""
    p = cb.provenance
    size = (ROOT / "codebooks" / f"{name}.symcb").stat().st_size
    return f"""# {name}

| field | value |
|---|---|
| id | `{cb.hexid}` |
| K | {cb.k} |
| patch | {cb.patch}x{cb.patch}, one codebook shared by all channel planes |
| pixel space | raw 8-bit samples / 255 (no normalisation, no contrast stretch) |
| trained on | {data} |
| images / sampled patches | {p.get('images')} / {p.get('patches')} |
| k-means | faiss {p.get('faiss')}, {p.get('niter')} iterations, seed {p.get('seed')} |
| symbol table | counts of nearest-centroid symbols over the same training sample, +1 |
| file size | {size} bytes |

Command (run from the repository root):

    {cmd}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from symcodec.codebook.codebook import Codebook

    with tempfile.TemporaryDirectory() as tmp:
        for name, (srcs, k, data) in JOBS.items():
            if args.only and name not in args.only:
                continue
            srcs = [str(photo_folder(Path(tmp))) if s == "PHOTOS" else s for s in srcs]
            out = f"codebooks/{name}.symcb"
            argv = ["symcodec", "train-codebook", *srcs, "-k", str(k), "--seed", "0", "--max-patches", "2000000", "--name", name, "-o", out]
            shown = " ".join(shlex.quote(a) for a in argv).replace(str(Path(tmp)), "$PHOTOS_TMP")
            print(">", shown, flush=True)
            subprocess.run(argv, cwd=ROOT, check=True)
            cb = Codebook.load(ROOT / out)
            (ROOT / "codebooks" / f"{name}.md").write_text(card(name, shown, data, cb))


if __name__ == "__main__":
    main()
