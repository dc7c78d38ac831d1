"""Read `symcodec eval` results at fixed rates: each codec's top-1 at B bpp with paired bootstrap intervals.

Usage:
    python tools/eval_at_rate.py RESULT.json [RESULT.json ...] --bpp 2.0 [--curve CODEC=MODEL ...]
        [--reference symc] [--json OUT.json]

Without --curve, every codec of every file is read with that file's primary model (protocol (a) of issue 17:
one classifier for all codecs). `--curve webp=cifar10-airnet3-ft-webp` reads the webp rows with that model's
verdicts instead (protocol (b): each codec with the classifier fine-tuned on its own reconstructions); the
model must be one of the file's `-m` models. All files must hold the same images (same dataset and --limit):
the bootstrap resamples images jointly, so differences are paired. The rule and the intervals are
`symcodec.bench.atrate`'s.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symcodec.atomic import atomic_write  # noqa: E402
from symcodec.bench import atrate  # noqa: E402
from symcodec.bench.meta import git_commit, versions  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--bpp", type=float, action="append", required=True, help="rate(s) to read the curves at")
    ap.add_argument("--curve", action="append", default=[], help="CODEC=MODEL: read CODEC's rows with MODEL's verdicts")
    ap.add_argument("--reference", default=None, help="codec the paired differences are taken from (default symc, else sym)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    pick = dict(c.split("=", 1) for c in a.curve)
    cur: dict = {}
    datasets = set()
    for path in a.results:
        r = json.loads(path.read_text())
        datasets.add((r["settings"]["dataset"], r["settings"]["n_images"], r["settings"].get("limit")))
        models = list(r["settings"]["models"])
        for codec in dict.fromkeys(c for c in r["results"]["codec"] if c != "source"):
            if pick and codec not in pick:
                continue
            model = pick.get(codec, models[0])
            if model not in models:
                continue
            if codec in cur:
                sys.exit(f"codec {codec} appears in more than one result; read them apart or name one with --curve")
            cur.update(atrate.curves(r, model, [codec]))
    if len(datasets) != 1:
        sys.exit(f"the results were measured on different images: {sorted(datasets)}")
    ref = a.reference or next((c for c in ("symc", "sym") if c in cur), None)
    out = {"name": "symcodec-eval-at-rate", "results_files": [str(p) for p in a.results], "curves": {c: v["model"] for c, v in cur.items()},
           "at_bpp": [atrate.at_rate(cur, b, reference=ref) for b in a.bpp], "rule": atrate.__doc__.split("\n\n")[1],
           "versions": versions(), "git_commit": git_commit()}
    for res in out["at_bpp"]:
        print(atrate.text(res) + "\n")
    if a.json is not None:
        atomic_write(a.json, (json.dumps(out, indent=2) + "\n").encode())
    return out


if __name__ == "__main__":
    main()
