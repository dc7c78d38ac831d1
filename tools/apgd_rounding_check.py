"""Issue 20 audit, measured: APGD as torchattacks runs it (success judged on the float iterate, clean image back on
failure) against symcodec.robust.lib.apgd (verdict on the uint8-rounded image), on the same images and seed.

    python tools/apgd_rounding_check.py --defense jpeg:75 --eps 4 --limit 200 --json results/robustness/apgd-rounding.json

Both are run standalone (every clean-correct image attacked) against one defense; prints robust accuracy of each.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=str(ROOT.parent / "shared" / "datasets" / "cifar10-jpeg" / "test.tar"))
    ap.add_argument("--model", default="cifar10-airnet2")
    ap.add_argument("--defense", default="jpeg:75")
    ap.add_argument("--eps", type=float, default=4.0, help="in /255")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--loss", default="ce", choices=["ce", "dlr"])
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT))
    import torchattacks

    from symcodec.robust import box_uint8, correct_draws
    from symcodec.robust.defense import Defended, make_purifier
    from symcodec.robust.lib import apgd
    from symcodec.robust.report import load_model, load_subset

    x, y, _ = load_subset(a.dataset, a.limit)
    d = Defended(make_purifier(a.defense), load_model(a.model)).eval()
    ok = correct_draws(d, x, y) == 1
    x, y = x[ok], y[ok]
    eps = a.eps / 255
    out = {"clean_correct": int(ok.sum()), "n": a.limit}
    t = time.time()
    raw = torchattacks.APGD(d, norm="Linf", eps=eps, steps=a.steps, n_restarts=1, loss=a.loss, seed=0)(x, y)
    raw_r = box_uint8(raw, x, eps)
    out["torchattacks_robust_after_rounding"] = int((correct_draws(d, raw_r, y) == 1).sum())
    out["torchattacks_robust_before_rounding"] = int((correct_draws(d, raw, y) == 1).sum())
    out["torchattacks_seconds"] = round(time.time() - t, 1)
    t = time.time()
    ours = apgd(d, x, y, eps, loss=a.loss, steps=a.steps, restarts=1, seed=0)
    out["symcodec_robust"] = int((correct_draws(d, ours, y) == 1).sum())
    out["symcodec_seconds"] = round(time.time() - t, 1)
    doc = {"name": "apgd-rounding-check", "description": __doc__.splitlines()[0],
           "settings": {k: v for k, v in vars(a).items() if k != "json"}, "results": out}
    print(json.dumps(doc["results"]))
    if a.json:
        Path(a.json).write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
