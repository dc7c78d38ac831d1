"""Accuracy at a fixed rate: each codec's curve read at B bits per pixel, with paired bootstrap intervals.

The rule (the same for every codec): sort a codec's settings by bpp, take the running maximum of top-1
(the best accuracy within a budget of that many bits), and interpolate linearly between those points. A
straight line between two settings is achievable: coding a share of the images with each gives exactly
that mean bpp and that expected accuracy. Above a codec's largest bpp its best accuracy holds (it can spend
less than the budget); below its smallest bpp the codec cannot reach the rate and has no value.

Intervals: 95% percentile bootstrap over images (the same resampled images for every codec and setting, so
differences between codecs are paired), from the per-image verdicts `symcodec eval` stores
(`per_image.correct`). The bpp of each setting is the mean over all images (its sampling error is far
smaller than the accuracy's).
"""
from __future__ import annotations

import base64
from typing import Any

import numpy as np

from ..errors import SymcodecError

N_BOOT = 2000


def pack_correct(ok: np.ndarray) -> str:
    """Per-image verdicts (bool vector) as base64 of the packed bits (what the result JSON stores)."""
    return base64.b64encode(np.packbits(np.asarray(ok, bool)).tobytes()).decode("ascii")


def unpack_correct(s: str, n: int) -> np.ndarray:
    """The inverse of `pack_correct` for n images."""
    return np.unpackbits(np.frombuffer(base64.b64decode(s), np.uint8), count=n).astype(bool)


def boot_weights(n: int, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """(n, n_boot) float32: how often each of n images is drawn in each bootstrap resample."""
    rng = np.random.default_rng(seed)
    return np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_boot)], 1).astype(np.float32)


def boot_top1(correct: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Top-1 (%) of each row of per-image verdicts (rows, n) in each resample of `boot_weights`: (rows, n_boot)."""
    return correct.astype(np.float32) @ w * (100.0 / correct.shape[-1])


def ci95(draws: np.ndarray, axis: int | None = None) -> tuple[Any, Any]:
    """The 2.5th and 97.5th percentiles of bootstrap draws."""
    return np.percentile(draws, 2.5, axis=axis), np.percentile(draws, 97.5, axis=axis)


def envelope_at(bpp: np.ndarray, acc: np.ndarray, rate: float) -> float | None:
    """The curve's value at `rate` under the module's rule (running maximum, then linear); None below its first point."""
    if not len(bpp):
        return None
    v = _envelope_many(bpp, np.asarray(acc, float)[:, None], rate)
    return None if v is None else float(v[0])


def _envelope_many(bpp: np.ndarray, accs: np.ndarray, rate: float) -> np.ndarray | None:
    """`envelope_at` for many accuracy vectors at once: accs is (settings, draws)."""
    order = np.argsort(bpp, kind="stable")
    b, a = np.asarray(bpp, float)[order], np.maximum.accumulate(accs[order], axis=0)
    if rate < b[0]:
        return None
    if rate >= b[-1]:
        return a[-1]
    j = int(np.searchsorted(b, rate, side="right"))  # b[j-1] <= rate < b[j]
    t = 0.0 if b[j] == b[j - 1] else (rate - b[j - 1]) / (b[j] - b[j - 1])
    return a[j - 1] + t * (a[j] - a[j - 1])


def curves(result: dict[str, Any], model: str | None = None, codecs: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Per codec of an eval result (source row excluded): settings, bpp and per-image verdicts (settings, images)."""
    per = result.get("per_image", {}).get("correct")
    if not per:
        msg = "this result has no per-image verdicts (per_image.correct): rerun symcodec eval with this version"
        raise SymcodecError(msg)
    model = model or next(iter(result["settings"]["models"]))
    if model not in per:
        msg = f"no verdicts for model {model!r} in this result (it has {', '.join(per)})"
        raise SymcodecError(msg)
    r, n = result["results"], int(result["settings"]["n_images"])
    out: dict[str, dict[str, Any]] = {}
    for i, c in enumerate(r["codec"]):
        if c == "source" or (codecs is not None and c not in codecs):
            continue
        cur = out.setdefault(c, {"settings": [], "bpp": [], "rows": [], "model": model})
        cur["settings"].append(r["setting"][i])
        cur["bpp"].append(r["bpp"][i])
        cur["rows"].append(unpack_correct(per[model][i], n))
    for cur in out.values():
        cur["bpp"] = np.asarray(cur["bpp"], float)
        cur["correct"] = np.stack(cur.pop("rows"))
    return out


def at_rate(curvesets: dict[str, dict[str, Any]], rate: float, reference: str | None = None, n_boot: int = N_BOOT,
            seed: int = 0) -> dict[str, Any]:
    """Each curve's top-1 at `rate` bpp with its 95% bootstrap interval; with `reference`, paired differences to it."""
    if not curvesets:
        raise SymcodecError("no codec curves to read")
    n = {c["correct"].shape[1] for c in curvesets.values()}
    if len(n) != 1:
        msg = f"the curves were measured on different numbers of images ({sorted(n)}): they cannot be paired"
        raise SymcodecError(msg)
    (n_img,) = n
    w = boot_weights(n_img, n_boot, seed)
    draws: dict[str, np.ndarray | None] = {}
    table: dict[str, Any] = {}
    for name, c in curvesets.items():
        point = envelope_at(c["bpp"], c["correct"].mean(1) * 100, rate)
        boot = _envelope_many(c["bpp"], boot_top1(c["correct"], w), rate)
        draws[name] = boot
        row: dict[str, Any] = {"top1": point, "ci95": None, "bpp_range": [float(c["bpp"].min()), float(c["bpp"].max())],
                               "model": c.get("model"), "settings": list(c["settings"])}
        if boot is not None:
            row["ci95"] = [float(v) for v in ci95(boot)]
        table[name] = row
    res: dict[str, Any] = {"bpp": rate, "n_images": n_img, "n_boot": n_boot, "seed": seed, "codecs": table}
    if reference is not None:
        if reference not in curvesets:
            msg = f"reference codec {reference!r} is not among {', '.join(curvesets)}"
            raise SymcodecError(msg)
        ref = draws[reference]
        diffs: dict[str, Any] = {}
        for name in curvesets:
            if name == reference:
                continue
            a, b = table[reference]["top1"], table[name]["top1"]
            if ref is None or draws[name] is None or a is None or b is None:
                diffs[name] = {"delta": None, "ci95": None, "p_reference_ahead": None}
                continue
            d = ref - draws[name]
            diffs[name] = {"delta": a - b, "ci95": [float(v) for v in ci95(d)],
                           "p_reference_ahead": float((d > 0).mean())}
        res["reference"] = reference
        res["differences"] = diffs
    return res


def text(res: dict[str, Any]) -> str:
    """A plain-text table of `at_rate`'s result."""
    ref = res.get("reference")
    lines = [f"top-1 at {res['bpp']:g} bpp on {res['n_images']} images (running-max envelope, linear; 95% bootstrap, "
             f"{res['n_boot']} draws" + (f"; differences: {ref} minus the codec, paired)" if ref else ")")]
    cw = max(12, *(len(k) + 2 for k in res["codecs"]))
    mw = max(8, *(len(str(r["model"])) + 2 for r in res["codecs"].values()))
    lines.append(f"{'codec':<{cw}}{'model':<{mw}}{'top1':>8}{'95% CI':>18}{'bpp range':>16}" + (f"{'delta':>9}{'95% CI':>18}" if ref else ""))
    for name, row in res["codecs"].items():
        t = "-" if row["top1"] is None else f"{row['top1']:.2f}"
        ci = "-" if row["ci95"] is None else f"[{row['ci95'][0]:.2f}, {row['ci95'][1]:.2f}]"
        rng = f"{row['bpp_range'][0]:.2f}-{row['bpp_range'][1]:.2f}"
        line = f"{name:<{cw}}{str(row['model']):<{mw}}{t:>8}{ci:>18}{rng:>16}"
        if ref:
            d = res["differences"].get(name)
            if d is None:
                line += f"{'(ref)':>9}"
            elif d["delta"] is None:
                line += f"{'-':>9}"
            else:
                lo, hi = d["ci95"]
                line += f"{d['delta']:>+9.2f}{f'[{lo:+.2f}, {hi:+.2f}]':>18}"
        lines.append(line)
    return "\n".join(lines)
