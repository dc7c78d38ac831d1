"""Probe: entropy model 3's fitting parameters (d, cmin, tmin) against held-out bits per symbol.

Fits the context tables of `cifar10-ycc420-k512` (the shipped default's centroids) on all 50,000 CIFAR-10
training images with each setting (`symcodec.train.ppm.train_ppm`, layout ycc420) and measures the mean ideal
code length on 2,000 evenly spaced test images; the shipped `cifar10-ycc420-k512-ppm` is the first row.

    python tools/probe_ppm_params.py --json results/cifar10/probe-ppm-params.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import symcodec  # noqa: E402
from symcodec.train.ppm import mean_bits, quantised_planes, train_ppm  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg"
SETTINGS = [{}, {"d": 0.5}, {"d": 0.7}, {"cmin": 1}, {"cmin": 2}, {"cmin": 5}, {"tmin": 4}, {"tmin": 16}, {"cmin": 2, "d": 0.7}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    cb = symcodec.get_codebook("cifar10-ycc420-k512")
    train = quantised_planes(cb, [str(DATA / "train.tar")], progress=False)
    test = [p[::5] for p in quantised_planes(cb, [str(DATA / "test.tar")], progress=False)]
    rows = [{"setting": "shipped cifar10-ycc420-k512-ppm (d 0.6, cmin 3, tmin 8)",
             "bits_per_symbol": mean_bits(symcodec.get_codebook("cifar10-ycc420-k512-ppm").context, test)}]
    print(rows[0], file=sys.stderr)
    for kw in SETTINGS:
        t = time.perf_counter()
        model = train_ppm(train, cb.k, "ycc420", progress=False, **kw)
        rows.append({"setting": kw, "bits_per_symbol": mean_bits(model, test), "fit_seconds": round(time.perf_counter() - t, 1)})
        print(rows[-1], file=sys.stderr)
    base = rows[0]["bits_per_symbol"]
    for r in rows:
        r["change_pct"] = round(100 * (r["bits_per_symbol"] / base - 1), 3)
    doc = {"name": "probe-ppm-params", "description": __doc__.split("\n\n")[1].replace("\n", " "),
           "test_images": int(test[0].shape[0]), "rows": rows}
    Path(a.json).write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
