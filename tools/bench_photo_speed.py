"""Photo encode/decode speed of the transform mode against Pillow, interleaved in one process, one thread.

Usage: python tools/bench_photo_speed.py [--quality 50] [--rounds 15] [--threads 1] [--json PATH]
On the photos test split and scikit-image's four colour photos: each round times, photo by photo, .sym decode
and encode (the default codebook for photos at --quality), Pillow's JPEG decode (of its q75 file of the photo,
4:2:0, optimised) and WebP q75 encode. Each (codec, photo) keeps its best round; megapixels/s = all pixels /
the sum of the best times. Timings on a shared machine swing; the ratios from one run are what to read.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import symcodec  # noqa: E402

TEST = ROOT.parent / "shared" / "datasets" / "photos" / "test"


def photos() -> dict[str, np.ndarray]:
    """The test split and scikit-image's astronaut, coffee, chelsea and rocket, as RGB arrays."""
    import skimage.data as sd

    out = {f.stem: np.asarray(Image.open(f).convert("RGB")) for f in sorted(TEST.glob("*.jpg"))}
    out.update({n: np.ascontiguousarray(getattr(sd, n)()[..., :3]) for n in ("astronaut", "coffee", "chelsea", "rocket")})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quality", type=int, default=50, help="the .sym quality (the ladder's middle rung is 50)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1, help=".sym threads (the acceptance figure is one thread)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    ph = photos()
    sym = {k: symcodec.encode(x, quality=a.quality) for k, x in ph.items()}  # also compiles and warms everything
    jpg = {}
    for k, x in ph.items():
        b = io.BytesIO()
        Image.fromarray(x).save(b, "JPEG", quality=75, optimize=True)
        jpg[k] = b.getvalue()
    pils = {k: Image.fromarray(x) for k, x in ph.items()}
    best: dict[tuple[str, str], float] = {}

    def tm(key: tuple[str, str], f) -> None:
        t = time.perf_counter()
        f()
        best[key] = min(best.get(key, 1e9), time.perf_counter() - t)

    load0 = os.getloadavg()[0]
    for _ in range(a.rounds):
        for k, x in ph.items():
            tm(("sym decode", k), lambda: symcodec.decode(sym[k], threads=a.threads))
            tm(("sym encode", k), lambda: symcodec.encode(x, quality=a.quality, threads=a.threads))
            tm(("jpeg q75 decode", k), lambda: np.asarray(Image.open(io.BytesIO(jpg[k])).convert("RGB")))
            tm(("webp q75 encode", k), lambda: pils[k].save(io.BytesIO(), "WEBP", quality=75))
    mp = sum(x.shape[0] * x.shape[1] for x in ph.values()) / 1e6
    mps = {op: mp / sum(best[op, k] for k in ph) for op in dict.fromkeys(o for o, _ in best)}
    res = {"decode_vs_jpeg": mps["sym decode"] / mps["jpeg q75 decode"], "encode_vs_webp": mps["sym encode"] / mps["webp q75 encode"]}
    bpp = {k: 8 * len(d) / (ph[k].shape[0] * ph[k].shape[1]) for k, d in sym.items()}
    for op, v in mps.items():
        print(f"  {op:<18} {v:7.1f} MP/s")
    print(f"  .sym at quality {a.quality} ({np.mean(list(bpp.values())):.3f} bpp on average), {a.threads} thread(s): "
          f"decode {res['decode_vs_jpeg']:.2f}x Pillow JPEG, encode {res['encode_vs_webp']:.2f}x WebP q75 "
          f"(load average {load0:.2f} / {os.getloadavg()[0]:.2f})")
    if a.json:
        out = {"name": "symcodec-photo-speed", "description": __doc__.splitlines()[0],
               "results": {**{f"mps.{k}": [v] for k, v in mps.items()}, **{k: [v] for k, v in res.items()}},
               "per_image_bpp": bpp, "settings": {"quality": a.quality, "rounds": a.rounds, "threads": a.threads, "photos": list(ph)},
               "aggregation": "per (codec, photo) the best of the rounds; MP/s = total pixels / sum of best seconds",
               "loadavg_1min": [load0, os.getloadavg()[0]]}
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
