"""Write the cards (codebooks/NAME.md) of the issue-17 codebook ladder, measuring each on the held-out test set.

Usage: python tools/ladder_cards.py NAME [NAME...]
Each codebook was trained by the `symcodec train-codebook` command its `prov` chunk records (printed on the card);
the card adds the compact-form bytes per image and the bits per symbol over every test image (never seen in
training): CIFAR-10 test.tar for cifar10-*, MNIST t10k for mnist-*.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symcodec.codebook import registry  # noqa: E402
from symcodec.codec.decoder import read  # noqa: E402
from symcodec.codec.encoder import encode  # noqa: E402
from symcodec.data.sources import load_arrays  # noqa: E402

TEST = {"cifar10": ROOT.parent / "shared/datasets/cifar10-jpeg/test.tar",
        "mnist": ROOT.parent / "shared/datasets/mnist/t10k-images.idx3-ubyte.gz"}


def card(name: str) -> str:
    cb = registry.get(name)
    data = name.split("-")[0]
    x, _, _ = load_arrays(TEST[data])
    sizes, payload = [], 0
    for a in x:
        b = encode(a if a.shape[2] == 3 else a[:, :, 0], cb, compact=True)
        sizes.append(len(b))
        payload += len(read(b).payload or b"")
    n_sym = read(b).header.symbols
    prov = cb.provenance or {}
    cmd = (prov.get("command") or "(see prov chunk)").replace("/work/ladder/", "codebooks/")  # trained outside the tree, then copied
    path = registry.entries()
    size = next(e for e in path if e.name == name).path.stat().st_size
    geometry = ("2x2, colour 1 (`ycc420`): Y, Cb, Cr planes, chroma 2x2-averaged (formats/sym.md section 4.2)"
                if cb.colour == 1 else "2x2, one codebook shared by all channel planes")
    hw = x.shape[1] * x.shape[2]
    return f"""# {name}

| field | value |
|---|---|
| id | `{cb.hexid}` |
| K | {cb.k} |
| patch | {geometry} |
| trained on | {prov.get('trained_on', data)} (k-means with faiss, seed 0; no test images) |
| entropy model | 3 (escape-chain context tables, formats/sym.md section 5.3), fitted on the same training images |
| held-out size | {np.mean(sizes):.1f} bytes per compact-form .sym file ({np.mean(sizes) * 8 / hw:.3f} bpp; the chunked form adds 78-79 bytes of framing), {payload * 8 / (len(x) * n_sym):.3f} bits/symbol: all {len(x):,} test images (`python tools/ladder_cards.py {name}`) |
| role | a rung of the issue-17 ladder (README, "Accuracy per byte") |
| codebook format | {cb.major}.0; `.sym` files written with it are container version {cb.entropy.model_id}.0 |
| file size | {size} bytes (the zlib-compressed context tables are most of it) |

Command (run from the repository root; under a minute of CPU):

    {cmd}

The `prov` chunk (not part of the id) records the command and parameters.
"""


if __name__ == "__main__":
    for n in sys.argv[1:]:
        (ROOT / "codebooks" / f"{n}.md").write_text(card(n))
        print(f"codebooks/{n}.md")
