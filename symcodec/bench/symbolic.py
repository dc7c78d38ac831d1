"""Symbol-domain inference against decode-then-classify: top-1 and images/s on the same `.sym` files.

For each (codebook, symbol classifier) row the test images are encoded to real `.sym` bytes (the compact form,
the bytes of `symcodec eval`'s `symc:CB` rows); then, chunk by
chunk and in alternating order (so both paths see the same machine load), one path decodes the files to
pixels and runs the pixel classifier, the other reads the files' symbols (`codec.decoder.decode_ids`) and runs
the symbol classifier. Timings cover file bytes in -> labels out, split into decoding and classification.
The result has `symcodec eval`'s shape (CompressAI's bench: one list per metric, per-image verdicts), with
two models, `decode` and `symbols`, so `tools/eval_at_rate.py` reads either path's curve at a fixed rate.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..classify import models as M
from ..classify import symbolic
from ..codebook import registry
from ..codec.decoder import decode, decode_ids
from ..codec.encoder import encoder_for
from ..errors import SymcodecError
from . import atrate
from .evaluate import load_dataset
from .meta import git_commit, versions


def run(dataset: str, rows: list[tuple[str, str]], pixel_model: str, limit: int | None = None, threads: int = 2,
        chunk: int = 500, seed: int = 0) -> dict[str, Any]:
    """Top-1 and images/s of decode-then-classify (`pixel_model`) and of symbol classifiers, per (codebook, model) row."""
    torch.set_num_threads(threads)
    x, y, src_sizes = load_dataset(dataset, limit)
    n, h, w, c = x.shape
    mode = "L" if c == 1 else "RGB"
    net = M.load(pixel_model)
    boot = atrate.boot_weights(n, seed=seed)
    out: dict[str, list[Any]] = {k: [] for k in ("codec", "setting", "bytes", "bpp", "top1", "top1_lo", "top1_hi",
                                                 "top1@symbols", "top1_lo@symbols", "top1_hi@symbols", "agree",
                                                 "images_per_s@decode", "images_per_s@symbols", "speed_ratio",
                                                 "decode_ms@decode", "classify_ms@decode", "decode_ms@symbols", "classify_ms@symbols")}
    correct: dict[str, list[str]] = {"decode": [], "symbols": []}
    cards = []
    for cb_name, sym_model in rows:
        cb = registry.get(cb_name)
        smod = symbolic.load(sym_model)
        if smod.codebook_id != cb.id:
            msg = f"symbol classifier {sym_model} reads {smod.codebook}, not {cb_name}"
            raise SymcodecError(msg)
        enc = encoder_for(cb, w, h, mode)  # the compact form, as `symcodec eval`'s symc rows (same bytes)
        data = [b for i in tqdm(range(0, n, 1000), desc=f"encode {cb_name}", file=sys.stderr)
                for b in enc.encode_batch(x[i:i + 1000], compact=True)]
        sizes = np.array([len(b) for b in data], np.float64)
        pred = {"decode": np.empty(n, np.int64), "symbols": np.empty(n, np.int64)}
        secs = {k: [0.0, 0.0] for k in pred}  # decoding, classification

        def via_pixels(lo: int, hi: int) -> None:
            t = time.perf_counter()
            px = np.stack([decode(b) for b in data[lo:hi]])
            t1 = time.perf_counter()
            pred["decode"][lo:hi] = M.predict(net, px[..., None] if px.ndim == 3 else px, batch_size=hi - lo)
            secs["decode"][0] += t1 - t
            secs["decode"][1] += time.perf_counter() - t1

        def via_symbols(lo: int, hi: int) -> None:
            t = time.perf_counter()
            ids = np.stack([decode_ids(b, cb)[1] for b in data[lo:hi]])
            t1 = time.perf_counter()
            pred["symbols"][lo:hi] = symbolic.predict(smod, ids, batch_size=hi - lo)
            secs["symbols"][0] += t1 - t
            secs["symbols"][1] += time.perf_counter() - t1

        for k, lo in enumerate(tqdm(range(0, n, chunk), desc=f"classify {cb_name}", file=sys.stderr)):
            hi = min(n, lo + chunk)
            for f in ((via_pixels, via_symbols) if k % 2 == 0 else (via_symbols, via_pixels)):
                f(lo, hi)
        ok = {k: pred[k] == y for k in pred}
        out["codec"].append("symc")
        out["setting"].append(cb_name)
        out["bytes"].append(float(sizes.mean()))
        out["bpp"].append(float((sizes * 8 / (h * w)).mean()))
        for key, path in (("", "decode"), ("@symbols", "symbols")):
            out["top1" + key].append(float(ok[path].mean() * 100))
            lo_, hi_ = atrate.ci95(atrate.boot_top1(ok[path], boot))
            out["top1_lo" + key].append(float(lo_))
            out["top1_hi" + key].append(float(hi_))
            correct[path].append(atrate.pack_correct(ok[path]))
            out["images_per_s@" + path].append(n / sum(secs[path]))
            out["decode_ms@" + path].append(1000 * secs[path][0] / n)
            out["classify_ms@" + path].append(1000 * secs[path][1] / n)
        out["agree"].append(float((pred["decode"] == pred["symbols"]).mean() * 100))
        out["speed_ratio"].append(out["images_per_s@symbols"][-1] / out["images_per_s@decode"][-1])
        cards.append({"codebook": cb_name, "symbol_model": sym_model, "symbol_model_test_accuracy": smod.meta.get("test_accuracy")})
    return {
        "name": f"symcodec-symbolic-{Path(dataset).stem}",
        "description": f"Symbol-domain inference against decode-then-classify on {n} images of {Path(dataset).name} "
                       f"({w}x{h}x{c}); the same .sym bytes for both paths",
        "results": out,
        "settings": {"dataset": str(dataset), "n_images": n, "limit": limit, "image_shape": [h, w, c],
                     "models": {"decode": {"weights": pixel_model, "path": "decode to pixels, then the pixel classifier"},
                                "symbols": {"path": "read the symbols, then the symbol classifier of each row", "rows": cards}},
                     "threads": threads, "chunk": chunk},
        "aggregation": {"images_per_s": "n / (decoding + classification seconds), file bytes in, labels out; both paths "
                                        "timed chunk by chunk in alternating order in one process",
                        "top1_lo/top1_hi": "95% percentile bootstrap over images"},
        "per_image": {"correct": correct},
        "versions": versions(),
        "git_commit": git_commit(),
        "seed": seed,
    }


def summary(result: dict[str, Any]) -> str:
    """A plain-text table: one row per codebook, both paths side by side."""
    r = result["results"]
    lines = [f"{'setting':<28} {'bpp':>6}  {'decode+classify':>22}  {'symbols':>22}  {'agree':>6}  {'img/s dec':>9}  {'img/s sym':>9}  ratio"]
    for i, s in enumerate(r["setting"]):
        a = f"{r['top1'][i]:.2f} [{r['top1_lo'][i]:.2f},{r['top1_hi'][i]:.2f}]"
        b = f"{r['top1@symbols'][i]:.2f} [{r['top1_lo@symbols'][i]:.2f},{r['top1_hi@symbols'][i]:.2f}]"
        lines.append(f"{s:<28} {r['bpp'][i]:>6.3f}  {a:>22}  {b:>22}  {r['agree'][i]:>6.2f}  "
                     f"{r['images_per_s@decode'][i]:>9.0f}  {r['images_per_s@symbols'][i]:>9.0f}  {r['speed_ratio'][i]:.2f}x")
    return "\n".join(lines)
