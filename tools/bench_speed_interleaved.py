"""CIFAR-10 encode/decode speed of codebooks against Pillow, robust to a shared, loaded machine.

Usage: python tools/bench_speed_interleaved.py CODEBOOK... [--json PATH] [--stages]
Times batches of 50 different test images, codecs interleaved batch by batch, 40 rounds; reports each
codec's best batch (the minimum approximates the speed on a quiet machine, as every codec gets the same
chances). tools/bench_codec.py times best-of-3 passes over 1,000 images, which load swings distort.
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
from symcodec.codebook import registry  # noqa: E402
from symcodec.codec.encoder import encoder_for  # noqa: E402
from symcodec.data import sources  # noqa: E402
from symcodec.format import sym as symfmt  # noqa: E402

CIFAR_TEST = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg" / "test.tar"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("codebooks", nargs="+")
    ap.add_argument("--json", default=None)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--stages", action="store_true", help="also time the centroid search and the entropy coder alone (model-3 codebooks)")
    a = ap.parse_args()
    cbs = [registry.get(n) for n in a.codebooks]
    xs, jp = [], []
    for i, s in enumerate(sources.iter_samples(CIFAR_TEST)):
        if i >= 1000:
            break
        xs.append(s.array())
        jp.append(s.data)
    b = 50
    ds = {c.name: [symcodec.encode(x, c) for x in xs] for c in cbs}  # also warms every cache
    pils = [Image.fromarray(x) for x in xs]
    stages = {}  # name: (encoder, symbols, payloads) for model-3 codebooks
    if a.stages:
        for c in cbs:
            if c.entropy.model_id == 3:
                enc = encoder_for(c, 32, 32, "RGB")
                stages[c.name] = (enc, [enc.symbols(x[None])[0] for x in xs], [symfmt.read(d).payload for d in ds[c.name]])
    best: dict[str, float] = {}

    def tm(key: str, f) -> None:
        t = time.perf_counter()
        f()
        best[key] = min(best.get(key, 1e9), (time.perf_counter() - t) / b)

    load0 = os.getloadavg()[0]
    for r in range(a.rounds):
        sl = slice((r * b) % 1000, (r * b) % 1000 + b)
        for c in cbs:
            tm(f"{c.name} decode", lambda: [symcodec.decode(d, c) for d in ds[c.name][sl]])
            tm(f"{c.name} encode", lambda: [symcodec.encode(x, c) for x in xs[sl]])
            if c.name in stages:
                enc, sy, pay = stages[c.name]
                tm(f"{c.name} stage: centroid search", lambda: [enc.symbols(x[None]) for x in xs[sl]])
                tm(f"{c.name} stage: entropy encode", lambda: [enc.model.encode_flat(s, enc.layout) for s in sy[sl]])
                tm(f"{c.name} stage: entropy decode", lambda: [enc.model.decode_flat(q, enc.layout) for q in pay[sl]])
        tm("jpeg decode (source files)", lambda: [np.asarray(Image.open(io.BytesIO(j)).convert("RGB")) for j in jp[sl]])
        tm("webp q75 encode", lambda: [p.save(io.BytesIO(), "WEBP", quality=75) for p in pils[sl]])
    ips = {k: 1 / v for k, v in best.items()}
    res = {"images_per_s": ips, "loadavg_1min_before": load0, "loadavg_1min_after": os.getloadavg()[0]}
    for c in cbs:
        res[f"{c.name} decode_vs_jpeg"] = ips[f"{c.name} decode"] / ips["jpeg decode (source files)"]
        res[f"{c.name} encode_vs_webp"] = ips[f"{c.name} encode"] / ips["webp q75 encode"]
    for k, v in ips.items():
        print(f"  {k:<48} {v:8.0f} images/s ({1e6 / v:5.0f} us)")
    for c in cbs:
        print(f"  {c.name:<40} decode {res[f'{c.name} decode_vs_jpeg']:.2f}x JPEG, encode {res[f'{c.name} encode_vs_webp']:.2f}x WebP")
    print(f"  load average (1 min) before / after: {load0:.2f} / {res['loadavg_1min_after']:.2f}")
    if a.json:
        out = {"name": "symcodec-speed-interleaved", "description": __doc__.splitlines()[0],
               "results": {k: [v] for k, v in {**{f"ips.{k}": v for k, v in ips.items()}, **{k: v for k, v in res.items() if k != "images_per_s"}}.items()},
               "settings": {"codebooks": a.codebooks, "batch": b, "rounds": a.rounds},
               "aggregation": "best batch of 50 images per codec (images/s = 1 / best seconds per image)"}
        Path(a.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
