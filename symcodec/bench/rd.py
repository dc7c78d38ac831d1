"""Rate against distortion on unlabelled photographs (`symcodec eval FOLDER` without `-m`): bpp, PSNR-RGB, MS-SSIM.

Every image is encoded to a real file with each codec setting, decoded, and measured: bytes, bpp, PSNR of
the RGB pixels, MS-SSIM (pytorch-msssim, 5 scales, images at least 161 pixels a side), encode and decode
time. The result follows CompressAI's bench JSON (`results`: one list per metric, one entry per setting;
per-setting values are means over images) and adds `per_image` (every image's values) and `bd_rate`:
Bjontegaard-delta rate of each codec against an anchor (Pillow JPEG), per image and on the mean curves,
from the `bjontegaard` package (piecewise cubic, over the overlapping quality range).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..atomic import atomic_write
from ..data.sources import iter_samples
from ..errors import DatasetError, SymcodecError
from ..codec.roundtrip import CodecSetting, parse_codec
from .meta import git_commit, versions
from .plots import plot_rd

MSSSIM_MIN_SIDE = 161  # 5 scales of an 11-pixel window (pytorch-msssim asserts it)
AGGREGATION = (
    "Per codec setting, the arithmetic mean over images of per-image values (CompressAI's bench): bytes = real file "
    "size with all headers; bpp = bytes*8/(H*W); psnr-rgb = PSNR in dB of the RGB pixels against the source's; "
    "psnr-rgb-pooled = PSNR of the MSE pooled over all images; ms-ssim-rgb = MS-SSIM of the RGB pixels (None when an "
    "image is under 161 pixels a side); ms-ssim-rgb-db = -10 log10(1 - ms-ssim); encoding_time/decoding_time = seconds "
    "per image, one thread, one image at a time. bd_rate: Bjontegaard-delta rate in % (negative: fewer bytes at equal "
    "quality) of each codec against the anchor, per image (then the mean) and on the mean curves, method pchip."
)


def load_images(src: str | os.PathLike[str], limit: int | None = None) -> tuple[list[str], list[np.ndarray]]:
    """Names and RGB uint8 pixels of a folder or tar of images (any sizes, no labels needed)."""
    names, imgs = [], []
    for s in iter_samples(src):
        if limit is not None and len(imgs) >= limit:
            break
        a = s.array()
        a = np.repeat(a[:, :, None], 3, 2) if a.ndim == 2 else a[:, :, :3]
        names.append(s.key)
        imgs.append(np.ascontiguousarray(a))
    if not imgs:
        msg = f"no images in {src}"
        raise DatasetError(msg)
    return names, imgs


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (capped at 100 dB for identical ones)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float | None:
    """MS-SSIM of two RGB uint8 images (pytorch-msssim, data range 255), None if either side is under 161 pixels."""
    if min(a.shape[:2]) < MSSSIM_MIN_SIDE:
        return None
    import torch  # the [torch] and [eval] extras: only this metric needs them
    from pytorch_msssim import ms_ssim as msssim

    ta = torch.from_numpy(np.array(a)).permute(2, 0, 1)[None].double()
    tb = torch.from_numpy(np.array(b)).permute(2, 0, 1)[None].double()
    return float(msssim(ta, tb, data_range=255.0, size_average=True))


def _measure(cs: CodecSetting, x: np.ndarray) -> dict[str, Any]:
    t0 = time.perf_counter()
    data = cs.encode(x)
    t1 = time.perf_counter()
    y = cs.decode(data, 3)
    t2 = time.perf_counter()
    err = np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2)
    return {"bytes": len(data), "bpp": 8 * len(data) / (x.shape[0] * x.shape[1]), "psnr-rgb": psnr(x, y), "mse": float(err),
            "ms-ssim-rgb": ms_ssim(x, y), "encoding_time": t1 - t0, "decoding_time": t2 - t1}


def bd(rate_a: list[float], dist_a: list[float], rate_t: list[float], dist_t: list[float]) -> float | None:
    """BD-rate in % of test against anchor (bjontegaard, pchip), None where the curves do not overlap."""
    import bjontegaard  # the [eval] extra

    ra, da, rt, dt = (np.asarray(v, np.float64) for v in (rate_a, dist_a, rate_t, dist_t))
    if min(da.max(), dt.max()) <= max(da.min(), dt.min()):
        return None
    try:
        return float(bjontegaard.bd_rate(ra, da, rt, dt, method="pchip", require_matching_points=False, min_overlap=0.0))
    except (ValueError, ZeroDivisionError):
        return None


def bd_table(res: dict[str, Any], anchor: str = "jpeg", metric: str = "psnr-rgb") -> dict[str, Any]:
    """BD-rate of every codec against `anchor` on `metric`: per image, their mean, and on the mean curves."""
    r, per = res["results"], res["per_image"]
    codecs = list(dict.fromkeys(r["codec"]))
    if anchor not in codecs:
        return {}
    rows = {c: [i for i, cc in enumerate(r["codec"]) if cc == c] for c in codecs}
    out: dict[str, Any] = {"anchor": anchor, "metric": metric, "method": "pchip", "codecs": {}}
    for c in codecs:
        if c == anchor:
            continue
        ia, it = rows[anchor], rows[c]
        imgs = []
        for k in range(len(per["names"])):
            va = [per[metric][i][k] for i in ia]
            vt = [per[metric][i][k] for i in it]
            if any(v is None for v in va + vt):
                imgs.append(None)
                continue
            imgs.append(bd([per["bpp"][i][k] for i in ia], va, [per["bpp"][i][k] for i in it], vt))
        vals = [v for v in imgs if v is not None]
        mean_curve = None
        if all(r[metric][i] is not None for i in ia + it):
            mean_curve = bd([r["bpp"][i] for i in ia], [r[metric][i] for i in ia], [r["bpp"][i] for i in it], [r[metric][i] for i in it])
        out["codecs"][c] = {"per_image": dict(zip(per["names"], imgs)), "mean_of_images": float(np.mean(vals)) if vals else None,
                            "mean_curve": mean_curve}
    return out


def run(dataset: str | os.PathLike[str], codecs: list[str], limit: int | None = None, anchor: str = "jpeg") -> dict[str, Any]:
    """Every codec setting on every image of `dataset`; returns the bench-shaped result dict with BD-rates."""
    settings = [cs for spec in codecs for cs in parse_codec(spec)]
    names, imgs = load_images(dataset, limit)
    keys = ("bytes", "bpp", "psnr-rgb", "mse", "ms-ssim-rgb", "encoding_time", "decoding_time")
    per: dict[str, Any] = {"names": names, **{k: [] for k in keys}}
    results: dict[str, list[Any]] = {k: [] for k in ("codec", "setting", "bytes", "bpp", "psnr-rgb", "psnr-rgb-pooled",
                                                    "ms-ssim-rgb", "ms-ssim-rgb-db", "psnr-rgb-ci95", "encoding_time", "decoding_time")}
    for cs in settings:  # warm up compiled kernels and caches outside the timing
        cs.decode(cs.encode(imgs[0][:64, :64]), 3)
    for cs in tqdm(settings, desc="codec settings", file=sys.stderr):
        try:
            rows = [_measure(cs, x) for x in imgs]
        except (SymcodecError, OSError, ValueError) as e:
            print(f"symcodec eval: {cs.label} failed: {e}", file=sys.stderr)
            continue
        for k in keys:
            per[k].append([row[k] for row in rows])
        results["codec"].append(cs.codec)
        results["setting"].append(cs.setting)
        for k in ("bytes", "bpp", "psnr-rgb", "encoding_time", "decoding_time"):
            results[k].append(float(np.mean([row[k] for row in rows])))
        p = np.array([row["psnr-rgb"] for row in rows])
        results["psnr-rgb-ci95"].append(float(1.96 * p.std(ddof=1) / np.sqrt(len(p))) if len(p) > 1 else 0.0)
        px = np.array([x.shape[0] * x.shape[1] * 3 for x in imgs], np.float64)
        pooled = float(np.sum([row["mse"] for row in rows] * px) / px.sum())
        results["psnr-rgb-pooled"].append(100.0 if pooled == 0 else float(10 * np.log10(255.0**2 / pooled)))
        ms = [row["ms-ssim-rgb"] for row in rows]
        m = None if any(v is None for v in ms) else float(np.mean(ms))
        results["ms-ssim-rgb"].append(m)
        results["ms-ssim-rgb-db"].append(None if m is None else float(-10 * np.log10(max(1 - m, 1e-12))))
    per["ms-ssim-rgb-db"] = [[None if v is None else float(-10 * np.log10(max(1 - v, 1e-12))) for v in row] for row in per["ms-ssim-rgb"]]
    res: dict[str, Any] = {
        "name": f"symcodec-rd-{Path(str(dataset)).name}",
        "description": f"Rate against distortion on {len(imgs)} images of {Path(str(dataset)).name}",
        "results": results,
        "per_image": per,
        "settings": {"dataset": str(dataset), "n_images": len(imgs), "limit": limit, "codecs": codecs,
                     "rows": [cs.description for cs in settings], "sizes": [list(x.shape[:2]) for x in imgs]},
        "aggregation": AGGREGATION,
        "versions": versions(),
        "git_commit": git_commit(),
    }
    res["bd_rate"] = {m: bd_table(res, anchor, m) for m in ("psnr-rgb", "ms-ssim-rgb-db")}
    return res


def summary(res: dict[str, Any]) -> str:
    """A plain-text table of the settings, then the BD-rates."""
    r = res["results"]
    lines = [f"{'codec':<6}{'setting':<16}{'bytes':>10}{'bpp':>8}{'PSNR':>8}{'pooled':>8}{'MS-SSIM dB':>11}{'enc ms':>9}{'dec ms':>9}"]
    for i in range(len(r["codec"])):
        ms = r["ms-ssim-rgb-db"][i]
        lines.append(f"{r['codec'][i]:<6}{str(r['setting'][i])[:15]:<16}{r['bytes'][i]:>10.0f}{r['bpp'][i]:>8.3f}{r['psnr-rgb'][i]:>8.2f}"
                     f"{r['psnr-rgb-pooled'][i]:>8.2f}{'-' if ms is None else f'{ms:.2f}':>11}{1e3 * r['encoding_time'][i]:>9.1f}"
                     f"{1e3 * r['decoding_time'][i]:>9.1f}")
    for metric, t in res.get("bd_rate", {}).items():
        if not t:
            continue
        lines.append(f"BD-rate against {t['anchor']} on {metric} (negative = fewer bytes at equal quality):")
        for c, v in t["codecs"].items():
            f = lambda x: "-" if x is None else f"{x:+.1f}%"  # noqa: E731
            lines.append(f"  {c:<6} mean of images {f(v['mean_of_images']):>8}, mean curve {f(v['mean_curve']):>8}; "
                         + ", ".join(f"{Path(k).stem[:18]} {f(x)}" for k, x in v["per_image"].items()))
    return "\n".join(lines)


def run_and_save(dataset: str | os.PathLike[str], codecs: list[str], limit: int | None = None,
                 json_path: str | os.PathLike[str] | None = None, plot_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """`run`, then write the JSON (atomically) and the plot where asked."""
    res = run(dataset, codecs, limit)
    if json_path is not None:
        atomic_write(Path(json_path), (json.dumps(res, indent=1) + "\n").encode())
    if plot_path is not None:
        plot_rd(res, plot_path)
    return res
