"""How many codewords can an attacker reach per patch inside the eps box? (results/robustness/reachable.json)

For each patch: distinct nearest centroids over witness pre-images on the uint8 grid in the box (the clean
patch, the 16 box corners and random points). A lower bound on the reachable set; if most patches reach
more than one codeword, quantisation alone cannot make the classifier's input invariant.

    python tools/robustness_reachable.py --limit 100 --json results/robustness/reachable.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from symcodec.atomic import atomic_write  # noqa: E402
from symcodec.robust.defense import VQPurifier  # noqa: E402
from symcodec.robust.report import _git, load_subset, parse_eps  # noqa: E402
from symcodec.robust.vq import reachable_counts  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--samples", type=int, default=111, help="random witnesses per patch (plus clean + 16 corners)")
    ap.add_argument("--json", default="results/robustness/reachable.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    settings, res = [], {"mean_reachable": [], "median_reachable": [], "frac_patches_gt1": [], "p90_reachable": []}
    for ds, cb, eps in (("cifar10", "cifar10-2x2-k2048", "2/255,4/255,8/255"), ("mnist", "mnist-2x2-k256", "0.1,0.2,0.3")):
        x, _, _ = load_subset(ds, args.limit)
        pur = VQPurifier(cb)
        for e in parse_eps(eps):
            c = reachable_counts(pur, x, e, samples=args.samples)
            settings.append({"dataset": ds, "codebook": cb, "eps": e, "eps_255": round(e * 255, 3), "n_images": len(x)})
            res["mean_reachable"].append(float(c.mean()))
            res["median_reachable"].append(float(np.median(c)))
            res["p90_reachable"].append(float(np.percentile(c, 90)))
            res["frac_patches_gt1"].append(float((c > 1).mean()))
            print(settings[-1], {k: round(v[-1], 3) for k, v in res.items()}, flush=True)
    out = {"name": "vq-reachable-codewords", "description": __doc__.splitlines()[0] + " Witnesses: clean patch, "
           f"16 corners, {args.samples} uniform random points on the uint8 grid of the box.",
           "settings": settings, "results": res, "aggregation": "over all patches of all channels of n_images",
           "versions": {"torch": torch.__version__}, "git_commit": _git(), "seed": 0}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(Path(args.json), (json.dumps(out, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
