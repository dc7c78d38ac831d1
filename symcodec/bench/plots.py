"""Plot an eval result: top-1 accuracy (and PSNR) against bits per pixel, or rate-distortion curves, one per codec."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write

STYLE = {"sym": ("tab:red", "o", "-"), "sym ycc420": ("tab:purple", "D", "-"), "sym ctx": ("tab:orange", "P", "-"),
         "jpeg": ("tab:blue", "s", "--"), "webp": ("tab:green", "^", "--"), "avif": ("tab:brown", "v", "--"),
         "jxl": ("tab:cyan", "X", "--")}


def _family(codec: str, setting: str) -> str:
    """Curve a row belongs to: .sym codebooks split by colour mode and context modelling."""
    if codec != "sym":
        return codec
    stem = Path(setting).stem
    if "ycc420" in stem:
        return "sym ycc420"
    return "sym ctx" if stem.endswith(("-ctx", "-ppm")) else "sym"


def _label(codec: str, setting: str) -> str:
    if codec == "sym":
        stem = Path(setting).stem
        tail = stem.rsplit("-", 1)[1] if stem.endswith(("-ctx", "-ppm")) else ""
        k = stem.removesuffix(f"-{tail}" if tail else "").rsplit("-k", 1)
        return (f"K={k[1]}" + (f" {tail}" if tail else "")) if len(k) == 2 and k[1].isdigit() else stem
    return f"q{setting}"


def plot(result: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a PNG: accuracy vs bpp (left) and PSNR vs bpp (right); the source files marked with a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = result["results"]
    names = list(result["settings"]["models"])
    models = [Path(m).stem for m in names]
    acc_keys = ["top1"] + [f"top1@{m}" for m in names[1:]]
    fig, (ax, axp) = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [1.5, 1]})
    fam = [_family(c, st) for c, st in zip(r["codec"], r["setting"])]
    codecs = [c for c in dict.fromkeys(fam) if c != "source"]
    for mi, (model, key) in enumerate(zip(models, acc_keys)):
        for codec in codecs:
            idx = sorted((i for i, c in enumerate(fam) if c == codec), key=lambda i: r["bpp"][i])
            color, marker, ls = STYLE.get(codec, ("tab:gray", "x", ":"))
            xs, ys = [r["bpp"][i] for i in idx], [r[key][i] for i in idx]
            alpha = 1.0 if mi == 0 else 0.55
            ax.plot(xs, ys, ls if mi == 0 else ":", marker=marker, color=color, alpha=alpha,
                    label=f"{codec} ({model})")
            if mi == 0:
                for i, xx, yy in zip(idx, xs, ys):
                    ax.annotate(_label(r["codec"][i], r["setting"][i]), (xx, yy), textcoords="offset points", xytext=(4, -10),
                                fontsize=7, color=color)
                pidx = [i for i in idx if r["psnr"][i] is not None]
                axp.plot([r["bpp"][i] for i in pidx], [r["psnr"][i] for i in pidx], ls, marker=marker, color=color,
                         label=codec)
        s = r["codec"].index("source")
        ax.plot([r["bpp"][s]], [r[key][s]], "*", ms=14, color="black" if mi == 0 else "gray",
                label=f"source files, {r['setting'][s]} ({model})", zorder=5)
        if mi == 0:
            ax.axhline(r[key][s], color="black", lw=0.6, ls=":")
    st = result["settings"]
    ax.set_xlabel("bits per pixel (real file bytes x 8 / pixels, headers included)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(f"{Path(st['dataset']).name}: accuracy vs rate ({st['n_images']} images)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    axp.set_xlabel("bits per pixel")
    axp.set_ylabel("PSNR (dB, from the MSE pooled over all images)")
    axp.set_title("distortion vs rate")
    axp.grid(alpha=0.3)
    axp.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(Path(path), buf.getvalue())


def plot_rd(result: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a PNG: PSNR-RGB (left) and MS-SSIM in dB (right) against bpp, one curve per codec: the mean over images
    with a band of +-1.96 standard errors of the per-image values; the legend gives each codec's BD-rate against JPEG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r, per = result["results"], result["per_image"]
    bdr = result.get("bd_rate", {})
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    for ax, key, label in ((axes[0], "psnr-rgb", "PSNR of RGB (dB)"), (axes[1], "ms-ssim-rgb-db", "MS-SSIM of RGB (dB: -10 log10(1 - MS-SSIM))")):
        for codec in dict.fromkeys(r["codec"]):
            idx = sorted((i for i, c in enumerate(r["codec"]) if c == codec), key=lambda i: r["bpp"][i])
            rows = [[v for v in per[key][i] if v is not None] for i in idx]
            if not all(rows):
                continue
            color, marker, ls = STYLE.get(codec, ("tab:gray", "x", ":"))
            xs = [r["bpp"][i] for i in idx]
            mean = np.array([np.mean(v) for v in rows])
            half = np.array([1.96 * np.std(v, ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0 for v in rows])
            b = bdr.get(key, {}).get("codecs", {}).get(codec, {}).get("mean_of_images")
            name = codec if b is None else f"{codec} (BD-rate vs JPEG {b:+.1f}%)"
            ax.plot(xs, mean, ls, marker=marker, color=color, label=name)
            ax.fill_between(xs, mean - half, mean + half, color=color, alpha=0.15, lw=0)
        ax.set_xlabel("bits per pixel (real file bytes x 8 / pixels, mean over images)")
        ax.set_ylabel(label + ", mean over images")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    st = result["settings"]
    axes[0].set_title(f"{Path(st['dataset']).name}: {st['n_images']} images (bands: 95% interval of the mean)")
    axes[1].set_title("structural similarity vs rate")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(Path(path), buf.getvalue())
