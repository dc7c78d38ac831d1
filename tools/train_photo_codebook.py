"""Train the transform codebook for photographs (formats/symcb.md sections 3.3, 3.4): offsets and initial probabilities.

Usage: python tools/train_photo_codebook.py [--out codebooks/photo-dct.symcb]
Trains only on ../shared/datasets/photos/train (18 photographs) and two augmentations of each (mirrored;
halved with Pillow's Lanczos filter), coded at qualities 20, 35, 50, 65, 80 and 90 with the reference
encoder. An offset is 256 x the mean of (|l| - |u|) over the training coefficients whose level magnitude
is m (1, 2, >= 3) at zigzag position z of plane kind c (u: the unrounded ratio of coefficient to step),
where at least 50 fall, else 0. A context's initial probability is (zeros + 1) / (bins + 2) of its
training bins, coded from the flat start. Writes the codebook and its card (codebooks/photo-dct.md).
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symcodec.codebook.codebook import TransformCodebook  # noqa: E402
from symcodec.entropy import coef_kernels as kern  # noqa: E402
from symcodec.entropy.coef import CoefModel  # noqa: E402
from symcodec.version import __version__  # noqa: E402
from symcodec.vq.colour import rgb_to_planes  # noqa: E402
from symcodec.vq.transform import BASIS, DEAD_ZONE, ZIGZAG, steps_for_quality  # noqa: E402

TRAIN = ROOT.parent / "shared" / "datasets" / "photos" / "train"
QUALITIES = (20, 35, 50, 65, 80, 90)


def images() -> list[np.ndarray]:
    """The training photographs, mirrored, and halved."""
    out = []
    for f in sorted(TRAIN.glob("*.jpg")):
        im = Image.open(f).convert("RGB")
        out += [np.asarray(im), np.asarray(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
                np.asarray(im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS))]
    return out


def ratios(plane: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """(blocks, 64) unrounded coefficient / step, zigzag order (the reference encoder's arithmetic)."""
    h, w = plane.shape
    p = np.pad(plane.astype(np.float64) - 128, ((0, -h % 8), (0, -w % 8)), mode="edge")
    gh, gw = p.shape[0] // 8, p.shape[1] // 8
    b = p.reshape(gh, 8, gw, 8).transpose(0, 2, 1, 3)
    c = np.einsum("ka,ijab,lb->ijkl", BASIS, b, BASIS).reshape(-1, 64)
    return (c / steps[None, :])[:, ZIGZAG]


def levels_of(u: np.ndarray) -> np.ndarray:
    a = np.abs(u)
    lv = np.floor(a + 0.5 - DEAD_ZONE)
    lv[:, 0] = np.floor(a[:, 0] + 0.5)
    return np.maximum(lv, 0) * np.sign(u)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "codebooks" / "photo-dct.symcb"))
    a = ap.parse_args()
    ims = images()
    acc, cnt = np.zeros((2, 3, 64)), np.zeros((2, 3, 64))
    bins = np.zeros((2 * kern.NCTX, 2), np.int64)
    flat = CoefModel(np.full((2, kern.NCTX), 32768))
    for x in tqdm(ims, desc="photos", unit="img", file=sys.stderr):
        planes = rgb_to_planes(x)
        for q in QUALITIES:
            steps = steps_for_quality(q).astype(np.float64)
            parts = []
            for i, pl in enumerate(planes):
                c = 0 if i == 0 else 1
                u = ratios(pl, steps[c])
                lv = levels_of(u)
                al, au = np.abs(lv), np.abs(u)
                for m in range(3):
                    sel = (al == m + 1) if m < 2 else (al >= 3)
                    acc[c, m] += np.where(sel, al - au, 0).sum(0)
                    cnt[c, m] += sel.sum(0)
                gh, gw = -(-pl.shape[0] // 8), -(-pl.shape[1] // 8)
                parts.append(lv.astype(np.int32).reshape(gh, gw, 64))
            bins += flat.bin_counts(parts)  # the whole image as one strip: contexts see every neighbour
    off = np.where(cnt >= 50, np.clip(np.rint(256 * acc / np.maximum(cnt, 1)), -128, 128), 0).astype(np.int64)
    init = np.clip(np.rint(65536 * (bins[:, 0] + 1) / (bins.sum(1) + 2)), kern.P_MIN, kern.P_MAX).astype(np.int64)
    prov = {"trained_on": "photos/train (18 photographs, each also mirrored and halved)", "images": len(ims),
            "qualities": list(QUALITIES), "dead_zone": DEAD_ZONE, "coefficients": int(cnt.sum()), "bins": int(bins.sum()),
            "date": dt.date.today().isoformat(), "symcodec": __version__, "command": "python tools/train_photo_codebook.py"}
    cb = TransformCodebook(off, CoefModel(init.reshape(2, kern.NCTX)), name="photo-dct", provenance=prov)
    cb.save(a.out)
    card = Path(a.out).with_suffix(".md")
    card.write_text(f"""# photo-dct

The transform codebook for photographs (formats/sym.md sections 4.3 and 5.4; formats/symcb.md version 4.0):
no centroids, but the learned parts of the transform mode, whose levels index per-frequency scalar codebooks.

| | |
|---|---|
| id | `{cb.hexid}` |
| K | 128 scalar codebooks (2 plane kinds x 64 frequencies), 8x8 blocks, colour 1 (codes L images too) |
| offsets | `TQNT`: {int((off != 0).sum())} of 384 nonzero, {int(off.min())}..{int(off.max())} / 256 of a step |
| initial probabilities | `TCTX`: {int((bins.sum(1) > 0).sum())} of {2 * kern.NCTX} contexts seen in training |
| trained on | {prov['trained_on']}: {len(ims)} images at qualities {', '.join(map(str, QUALITIES))} ({prov['coefficients']:,} coefficients, {prov['bins']:,} bins) |
| file size | {len(cb.to_bytes())} bytes |

Command (run from the repository root):

    python tools/train_photo_codebook.py
""")
    print(f"{a.out}: id {cb.hexid}, {int((off != 0).sum())} nonzero offsets, {len(cb.to_bytes())} bytes")


if __name__ == "__main__":
    main()
