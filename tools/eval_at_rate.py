"""Read `symcodec eval` results at fixed rates: each codec's top-1 at B bpp with paired bootstrap intervals.

Usage:
    python tools/eval_at_rate.py RESULT.json [RESULT.json ...] --bpp 2.0 [--curve CODEC@MODEL ...]
        [--reference CODEC@MODEL] [--remeasured] [--json OUT.json] [--plot OUT.png]

Without --curve, every codec of every file is read with that file's primary model (protocol (a) of issue 17:
one classifier for all codecs). `--curve webp@cifar10-airnet3-ft-webp` reads the webp rows with that model's
verdicts (protocol (b): each codec with the classifier fine-tuned on its own reconstructions); curves of both
protocols can be read together. All files must hold the same images (same dataset and --limit): the
bootstrap resamples images jointly, so differences are paired. The rule and the intervals are
`symcodec.bench.atrate`'s; the plot draws each curve with its 95% bootstrap band.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symcodec.atomic import atomic_write  # noqa: E402
from symcodec.bench import atrate  # noqa: E402
from symcodec.bench.meta import git_commit, versions  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--bpp", type=float, action="append", required=True, help="rate(s) to read the curves at")
    ap.add_argument("--curve", action="append", default=[], help="CODEC@MODEL: read CODEC's rows with MODEL's verdicts")
    ap.add_argument("--reference", default=None, help="CODEC@MODEL the paired differences are taken from (default: the first symc, else sym, curve)")
    ap.add_argument("--remeasured", action="store_true",
                    help="a setting measured again in a later file replaces the earlier file's row (else: refused)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--title", default=None)
    ap.add_argument("--xlim", default=None, help="LO,HI bpp shown in the plot")
    ap.add_argument("--ylim", default=None, help="LO,HI top-1 %% shown in the plot")
    a = ap.parse_args(argv)
    wanted = [tuple(c.split("@", 1)) for c in a.curve]
    cur: dict = {}
    datasets = set()
    for path in a.results:
        r = json.loads(path.read_text())
        datasets.add((r["settings"]["dataset"], r["settings"]["n_images"], r["settings"].get("limit")))
        models = list(r["settings"]["models"])
        codecs = list(dict.fromkeys(c for c in r["results"]["codec"] if c != "source"))
        pairs = wanted or [(c, models[0]) for c in codecs]
        for codec, model in pairs:
            if codec not in codecs or model not in models:
                continue
            label = f"{codec}@{model}"
            new = atrate.curves(r, model, [codec])[codec]
            if label in cur:  # a curve extended by a later run: its settings join the earlier ones
                old = cur[label]
                twice = sorted(set(old["settings"]) & set(new["settings"]))
                if twice and not a.remeasured:
                    sys.exit(f"{label}: settings {', '.join(map(str, twice))} appear in more than one result")
                keep = [i for i, st in enumerate(old["settings"]) if st not in twice]  # --remeasured: the later file's rows
                new = {"settings": [old["settings"][i] for i in keep] + new["settings"],
                       "bpp": np.concatenate([old["bpp"][keep], new["bpp"]]),
                       "correct": np.concatenate([old["correct"][keep], new["correct"]]), "model": model}
            cur[label] = new
    if len(datasets) != 1:
        sys.exit(f"the results were measured on different images: {sorted(datasets)}")
    missing = [f"{c}@{m}" for c, m in wanted if f"{c}@{m}" not in cur]
    if missing:
        sys.exit(f"not in these results: {', '.join(missing)}")
    ref = a.reference or next((k for k in cur if k.startswith("symc@")), next((k for k in cur if k.startswith("sym@")), None))
    out = {"name": "symcodec-eval-at-rate", "results_files": [str(p) for p in a.results], "curves": {c: v["model"] for c, v in cur.items()},
           "at_bpp": [atrate.at_rate(cur, b, reference=ref) for b in a.bpp], "rule": atrate.__doc__.split("\n\n")[1],
           "versions": versions(), "git_commit": git_commit()}
    for res in out["at_bpp"]:
        print(atrate.text(res) + "\n")
    if a.json is not None:
        atomic_write(a.json, (json.dumps(out, indent=2) + "\n").encode())
    if a.plot is not None:
        lims = [tuple(float(v) for v in x.split(",")) if x else None for x in (a.xlim, a.ylim)]
        plot(cur, a.bpp, a.plot, a.title or f"{Path(next(iter(datasets))[0]).name}: top-1 against rate ({next(iter(datasets))[1]} images)",
             *lims)
    return out


NAMES = {"symc": ".sym (compact form)", "sym": ".sym", "webp": "WebP", "avif": "AVIF", "jxl": "JPEG XL", "jpeg": "JPEG"}


def plot(cur: dict, rates: list[float], path: Path, title: str, xlim: tuple | None = None, ylim: tuple | None = None) -> None:
    """Each curve through its settings with its 95% bootstrap band; the rates read are dotted lines."""
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt
    import numpy as np

    from symcodec.bench.plots import STYLE

    fig, ax = plt.subplots(figsize=(10, 6))
    w = atrate.boot_weights(next(iter(cur.values()))["correct"].shape[1])
    extra = ["tab:red", "tab:purple", "tab:orange", "tab:pink", "tab:olive", "tab:gray"]
    for i, (label, c) in enumerate(cur.items()):
        codec, model = label.split("@", 1)
        order = np.argsort(c["bpp"])
        b = c["bpp"][order]
        ok = c["correct"][order]
        acc = ok.mean(1) * 100
        lo, hi = atrate.ci95(atrate.boot_top1(ok, w), axis=1)
        color, marker, _ = STYLE.get(codec, (extra[i % len(extra)], "o", "-"))
        ls = "-" if codec.startswith("sym") else "--"
        name = NAMES.get(codec, codec)
        ax.plot(b, acc, ls, marker=marker, color=color, label=f"{name}, classifier {model}")
        ax.fill_between(b, lo, hi, color=color, alpha=0.15, lw=0)
    for r in rates:
        ax.axvline(r, color="black", lw=0.8, ls=":")
    ax.set_xlabel("bits per pixel (real file bytes x 8 / pixels, headers included)")
    ax.set_ylabel("top-1 accuracy (%), bands: 95% bootstrap over images")
    ax.set_title(title)
    if xlim:
        ax.set_xlim(*xlim)
    if ylim:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buf.getvalue())


if __name__ == "__main__":
    main()
