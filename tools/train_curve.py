"""The curve of an adversarial training run, from its checkpoint (a run in progress) or its finished weights.

    python tools/train_curve.py ../train-runs/cifar10-at-nfgsm8.ckpt --out results/training/cifar10-at-nfgsm8

Writes OUT.json (the run's settings and per-epoch history: train accuracy on adversarial batches, PGD-10 and
clean accuracy on the training images set aside, seconds) and OUT.png (accuracy against epochs, the PGD-10 check
with its 95% Wilson band). Reads only what `train-classifier` wrote (torch weights_only load).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from symcodec.bench.plots import wilson


def read(path: Path) -> dict:
    """Settings and history from a checkpoint (.ckpt) or finished weights (.pt, meta)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if "history" in blob:  # a checkpoint
        return {"source": "checkpoint", "settings": blob["settings"], "epochs_done": blob["epoch"], "history": blob["history"]}
    meta = blob.get("meta", {})
    adv = meta.get("adversarial") or {}
    return {"source": "weights", "settings": {"arch": meta.get("arch"), "epochs": meta.get("epochs"), **adv,
                                              "recipe": meta.get("recipe"), "command": meta.get("command")},
            "epochs_done": len(meta.get("history", [])), "history": meta.get("history", []),
            "test_accuracy": meta.get("test_accuracy")}


def plot(run: dict, n_check: int, title: str, out: Path) -> None:
    """Accuracy against epochs with the check's confidence band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = [r for r in run["history"] if "check_pgd10_acc" in r]
    ep = [r["epoch"] for r in h]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    ax.plot([r["epoch"] for r in run["history"]], [r["train_acc"] for r in run["history"]], "o-", color="0.55",
            label="train batches (adversarial, at the epoch's eps)")
    for key, colour, label in (("check_clean_acc", "tab:blue", "clean, held-out check images"),
                               ("check_pgd10_acc", "tab:red", "PGD-10, held-out check images")):
        y = [r[key] for r in h]
        lo, hi = zip(*(wilson(v / 100, n_check) for v in y)) if y else ((), ())
        ax.plot(ep, y, "o-", color=colour, label=label)
        ax.fill_between(ep, [100 * v for v in lo], [100 * v for v in hi], color=colour, alpha=0.15)
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Read the run, write the JSON and the plot."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="a train-classifier checkpoint (.ckpt) or its finished weights (.pt)")
    ap.add_argument("--out", required=True, help="output stem: writes STEM.json and STEM.png")
    args = ap.parse_args(argv)
    run = read(Path(args.run))
    s = run["settings"]
    n_check = int(s.get("check_images") or 500)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(run, indent=1, default=str) + "\n")
    eps = float(s.get("eps") or 0)
    e255 = eps * 255
    eps_s = f"{round(e255)}/255" if abs(e255 - round(e255)) < 1e-6 and eps < 0.1 else f"{eps:.3g}"
    title = (f"{out.name}: {s.get('adversarial') or s.get('kind')} at eps {eps_s}, {run['epochs_done']} of "
             f"{s.get('epochs'):g} epochs\n(bands: 95% Wilson intervals, {n_check} check images)")
    plot(run, n_check, title, out.with_suffix(".png"))
    for r in run["history"]:
        extra = f", PGD-10 check {r['check_pgd10_acc']:.1f}% (clean {r['check_clean_acc']:.1f}%)" if "check_pgd10_acc" in r else ""
        print(f"epoch {r['epoch']}: train {r['train_acc']:.1f}%{extra}, {r.get('seconds', 0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
