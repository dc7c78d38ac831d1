"""Plot an eval result: top-1 accuracy (and PSNR) against bits per pixel, or rate-distortion curves, one per codec."""
from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write
from ..codebook import registry

STYLE = {"jpeg": ("tab:blue", "s", "--"), "webp": ("tab:green", "^", "--"), "avif": ("tab:brown", "v", "--"),
         "jxl": ("tab:cyan", "X", "--")}
_SYM_STYLES = [("tab:red", "o"), ("tab:purple", "D"), ("tab:orange", "P"), ("tab:pink", "h"), ("tab:olive", "*"),
               ("tab:gray", "d")]
_MODEL = {None: "static", b"CTXM": "model 2", b"PPMT": "model 3"}


def _family(codec: str, setting: str) -> str:
    """Curve a row belongs to: .sym codebooks by training set, geometry and entropy model; others by codec."""
    if codec not in ("sym", "symc"):
        return codec
    if re.fullmatch(r"q\d+", setting):
        return f"{codec} (quality ladder)"
    name = setting.partition("@")[0]
    stem = Path(name).stem
    try:
        cb = registry.get(name)
        model = "transform" if not hasattr(cb, "centroids") else _MODEL.get(cb.context_chunk[0] if cb.context_chunk else None, "?")
        geometry = "8x8 DCT" if model == "transform" else ("ycc420" if cb.colour == 1 else f"{cb.patch}x{cb.patch}")
        data = str(cb.provenance.get("trained_on", "")) or stem.split("-")[0]
    except Exception:  # noqa: BLE001 - a plot never fails on a label
        return f"sym {stem}"
    data = stem.split("-")[0] if stem.split("-")[0] and not stem.startswith(("photo", "vector")) else data
    return f"{'sym' if codec == 'sym' else 'sym compact'} {data} {geometry}, {model}"


def _label(codec: str, setting: str) -> str:
    if codec in ("sym", "symc"):
        if re.fullmatch(r"q\d+", setting):
            return setting
        name, _, q = setting.partition("@")
        k = re.search(r"-k(\d+)", Path(name).stem)
        return (f"K={k.group(1)}" if k else Path(name).stem) + (f" q{q}" if q else "")
    return f"q{setting}"


def _style(family: str, order: list[str]) -> tuple[str, str, str]:
    if family in STYLE:
        return STYLE[family]
    syms = [f for f in order if f.startswith("sym")]
    c, m = _SYM_STYLES[syms.index(family) % len(_SYM_STYLES)] if family in syms else ("tab:gray", "x")
    return c, m, "-"


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a proportion p (0..1) measured on n trials."""
    if n <= 0:
        return p, p
    d = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / d
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return mid - half, mid + half


def plot(result: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a PNG: accuracy vs bpp (left, with 95% intervals) and PSNR vs bpp (right); the source files marked with a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = result["results"]
    st = result["settings"]
    n = int(st.get("n_images") or 0)
    names = list(st["models"])
    models = [Path(m).stem for m in names]
    acc_keys = ["top1"] + [f"top1@{m}" for m in names[1:]]
    fig, (ax, axp) = plt.subplots(1, 2, figsize=(15, 5.6), gridspec_kw={"width_ratios": [1.5, 1]})
    fam = [_family(c, s) for c, s in zip(r["codec"], r["setting"])]
    codecs = [c for c in dict.fromkeys(fam) if c != "source"]
    for mi, (model, key) in enumerate(zip(models, acc_keys)):
        for codec in codecs:
            idx = sorted((i for i, c in enumerate(fam) if c == codec), key=lambda i: r["bpp"][i])
            color, marker, ls = _style(codec, codecs)
            xs, ys = [r["bpp"][i] for i in idx], [r[key][i] for i in idx]
            alpha = 1.0 if mi == 0 else 0.55
            ax.plot(xs, ys, ls if mi == 0 else ":", marker=marker, color=color, alpha=alpha,
                    label=f"{codec} ({model})")
            if mi == 0:
                lo_hi = np.array([wilson(y / 100, n) for y in ys]) * 100 if n else None
                if lo_hi is not None and len(ys):
                    ax.errorbar(xs, ys, yerr=[np.array(ys) - lo_hi[:, 0], lo_hi[:, 1] - np.array(ys)], fmt="none",
                                ecolor=color, alpha=0.6, capsize=2, lw=1)
                for j, (i, xx, yy) in enumerate(zip(idx, xs, ys)):
                    ax.annotate(_label(r["codec"][i], r["setting"][i]), (xx, yy), textcoords="offset points",
                                xytext=(5, -11 if j % 2 == 0 else 5), fontsize=7, color=color)
                pidx = [i for i in idx if r["psnr"][i] is not None]
                axp.plot([r["bpp"][i] for i in pidx], [r["psnr"][i] for i in pidx], ls, marker=marker, color=color,
                         label=codec)
        s = r["codec"].index("source")
        ax.plot([r["bpp"][s]], [r[key][s]], "*", ms=14, color="black" if mi == 0 else "gray",
                label=f"source files, {r['setting'][s]} ({model})", zorder=5)
        if mi == 0:
            ax.axhline(r[key][s], color="black", lw=0.6, ls=":")
    ax.set_xlabel("bits per pixel (real file bytes x 8 / pixels, headers included)")
    ax.set_ylabel("top-1 accuracy (%), bars: 95% Wilson interval")
    ax.set_title(f"{Path(st['dataset']).name}: accuracy vs rate ({n} images)")
    ax.grid(alpha=0.3)
    axp.set_xlabel("bits per pixel")
    axp.set_ylabel("PSNR (dB, from the MSE pooled over all images)")
    axp.set_title("distortion vs rate")
    axp.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=min(4, len(labels)), frameon=False)
    fig.tight_layout(rect=(0, 0.04 + 0.035 * (-(-len(labels) // 4)), 1, 1))  # room below for the legend: never over data
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
