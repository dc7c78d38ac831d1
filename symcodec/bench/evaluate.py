"""Rate against accuracy: encode a dataset with .sym, JPEG and WebP, decode it, classify it, and tabulate.

The result dict follows CompressAI's bench JSON (`name`, `description`, `results` with one list per metric,
one entry per codec setting) plus `settings`, `aggregation`, `versions`, `git_commit` and `seed`.
Row 0 is the dataset's own source files (no re-encoding).
"""
from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..atomic import atomic_write
from ..classify import models as M
from ..codebook import registry
from ..codec.symbols import purify
from ..data.sources import iter_samples, read_idx
from ..errors import DatasetError, SymcodecError
from . import atrate
from ..codec.roundtrip import CodecSetting, parse_codec
from .meta import git_commit, versions
from .plots import plot

AGGREGATION = (
    "Per codec setting, arithmetic mean over images of per-image values (as CompressAI's bench): bytes = real "
    "file size with all headers; bpp = bytes*8/(H*W); psnr = PSNR in dB of the pooled MSE over all images "
    "against the decoded source pixels; psnr_mean = mean of per-image PSNR, each capped at 60 dB (a lossless or "
    "near-identical re-encode would otherwise dominate the mean); encode_ms/decode_ms = mean wall time per image, one thread, one image "
    "at a time. ratio_source = total source-file bytes / total coded bytes; ratio_raw = total raw pixel bytes "
    "(H*W*C per image) / total coded bytes. top1 = % of images whose argmax logit equals the label; top1_delta = "
    "top1 minus top1 on the source images (same model); top1_lo/top1_hi = its 95% percentile bootstrap interval over "
    "images (2000 draws, seed 0). per_image.correct[model][row] = each image's verdict, base64 of the packed bits "
    "(symcodec.bench.atrate). Row 0 ('source') is the dataset files as given."
)
METRICS = ("codec", "setting", "bytes", "bpp", "ratio_source", "ratio_raw", "psnr", "psnr_mean", "top1", "top1_lo", "top1_hi",
           "top1_delta", "encode_ms", "decode_ms")


def load_dataset(src: str | os.PathLike[str], limit: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N,H,W,C) uint8 pixels, int64 labels, source file sizes; `limit` keeps N evenly spaced samples."""
    samples = list(tqdm(iter_samples(src), desc="read", leave=False, file=sys.stderr))
    if not samples:
        msg = f"no images in {src}"
        raise DatasetError(msg)
    if limit is not None and limit < len(samples):
        keep = np.linspace(0, len(samples) - 1, limit).round().astype(int)  # sources are often sorted by class
        samples = [samples[i] for i in keep]
    if any(s.label is None for s in samples):
        samples = _idx_labels(src, samples)
    if any(s.label is None for s in samples):
        msg = f"{src}: some images have no label; eval needs labelled data"
        raise DatasetError(msg)
    imgs = [s.array() for s in samples]
    imgs = [a if a.ndim == 3 else a[:, :, None] for a in imgs]
    if len({a.shape for a in imgs}) != 1:
        msg = f"{src}: images differ in size; eval needs equal-sized images"
        raise DatasetError(msg)
    labs = [s.label for s in samples]
    if all(isinstance(lab, (int, np.integer)) or str(lab).isdigit() for lab in labs):
        y = np.asarray([int(lab) for lab in labs], np.int64)  # numbers are class indices (idx files, their .cls sidecars)
    else:
        classes = sorted({str(lab) for lab in labs})
        y = np.asarray([classes.index(str(lab)) for lab in labs], np.int64)
    if len(np.unique(y)) < 2:
        msg = f"{src}: every image has the label {labs[0]!r}; eval needs labelled data (class folders, .cls files, idx labels)"
        raise DatasetError(msg)
    sizes = np.asarray([len(s.data) if s.data is not None else imgs[0].size for s in samples], np.int64)
    return np.stack(imgs), y, sizes


def _idx_labels(src: str | os.PathLike[str], samples: list[Any]) -> list[Any]:
    """Labels for MNIST idx files named `*-images.idx3-ubyte*` (sources only pairs `*-images-idx3*` names)."""
    p = Path(src)
    lab = p.with_name(p.name.replace("images", "labels").replace("idx3", "idx1"))
    if lab == p or not lab.is_file():
        return samples
    labels = read_idx(lab)
    for s in samples:
        s.label = int(labels[int(s.key.rsplit("/", 1)[1])])
    return samples


PSNR_CAP = 60.0


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image PSNR in dB of uint8 batches (N,H,W,C)."""
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(1)
    return 10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))


def psnr_pooled(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of the MSE pooled over every pixel of every image (capped at PSNR_CAP)."""
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return float(min(10 * np.log10(255.0**2 / max(mse, 1e-10)), PSNR_CAP))


def _roundtrip(cs: CodecSetting, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    sizes, out = np.zeros(len(x), np.int64), np.empty_like(x)
    t_enc = t_dec = 0.0
    cs.decode(cs.encode(x[0]), x.shape[3])  # warm-up (numba compilation, codebook caches) outside the timing
    for i in tqdm(range(len(x)), desc=cs.label, leave=False, file=sys.stderr):
        t0 = time.perf_counter()
        data = cs.encode(x[i])
        t1 = time.perf_counter()
        out[i] = cs.decode(data, x.shape[3])
        t_dec += time.perf_counter() - t1
        t_enc += t1 - t0
        sizes[i] = len(data)
    return out, sizes, 1e3 * t_enc / len(x), 1e3 * t_dec / len(x)


def _source_decode_ms(src: str | os.PathLike[str], n: int) -> float | None:
    """Mean ms to decode one source file with Pillow (first n files); None for pixel sources (MNIST idx)."""
    t, k = 0.0, 0
    for s in iter_samples(src):
        if s.data is None or k >= n:
            break
        t0 = time.perf_counter()
        with Image.open(io.BytesIO(s.data)) as im:
            im.load()
        t += time.perf_counter() - t0
        k += 1
    return 1e3 * t / k if k else None


def run(dataset: str | os.PathLike[str], models: list[str], codecs: list[str], limit: int | None = None,
        threads: int = 2, seed: int = 0) -> dict[str, Any]:
    """Evaluate every codec setting on `dataset` with every model; returns the bench-shaped result dict."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    if not models:
        raise SymcodecError("eval needs at least one --model")
    settings = [cs for spec in codecs for cs in parse_codec(spec)]
    nets = {name: M.load(name) for name in models}
    x, y, src_sizes = load_dataset(dataset, limit)
    n, h, w, c = x.shape
    rows: list[dict[str, Any]] = []
    src_ok = {m: M.predict(net, x) == y for m, net in nets.items()}
    src_acc = {m: float(ok.mean() * 100) for m, ok in src_ok.items()}
    rows.append({"codec": "source", "setting": Path(str(dataset)).name, "sizes": src_sizes, "psnr": None, "psnr_mean": None,
                 "encode_ms": None, "decode_ms": _source_decode_ms(dataset, min(n, 1000)), "acc": src_acc, "ok": src_ok})
    for cs in tqdm(settings, desc="codecs", file=sys.stderr):
        try:
            rec, sizes, enc_ms, dec_ms = _roundtrip(cs, x)
        except (SymcodecError, OSError, ValueError) as e:
            print(f"symcodec eval: {cs.label} failed: {e}", file=sys.stderr)
            continue
        ok = {m: M.predict(net, rec) == y for m, net in nets.items()}
        rows.append({"codec": cs.codec, "setting": cs.setting, "sizes": sizes, "psnr": psnr_pooled(x, rec),
                     "psnr_mean": float(np.minimum(psnr(x, rec), PSNR_CAP).mean()),
                     "encode_ms": enc_ms, "decode_ms": dec_ms, "acc": {m: float(v.mean() * 100) for m, v in ok.items()}, "ok": ok})
    results: dict[str, list[Any]] = {k: [] for k in METRICS}
    first = models[0]
    for m in models[1:]:
        results[f"top1@{m}"], results[f"top1_delta@{m}"] = [], []
    boot = atrate.boot_weights(n, seed=seed)
    for r in rows:
        sz = r["sizes"]
        results["codec"].append(r["codec"])
        results["setting"].append(r["setting"])
        results["bytes"].append(float(sz.mean()))
        results["bpp"].append(float((sz * 8 / (h * w)).mean()))
        results["ratio_source"].append(float(src_sizes.sum() / sz.sum()))
        results["ratio_raw"].append(float(n * h * w * c / sz.sum()))
        results["psnr"].append(r["psnr"])
        results["psnr_mean"].append(r["psnr_mean"])
        results["encode_ms"].append(r["encode_ms"])
        results["decode_ms"].append(r["decode_ms"])
        for m in models:
            key = "" if m == first else f"@{m}"
            results["top1" + key].append(r["acc"][m])
            results["top1_delta" + key].append(r["acc"][m] - src_acc[m])
        lo, hi = atrate.ci95(atrate.boot_top1(r["ok"][first], boot))
        results["top1_lo"].append(float(lo))
        results["top1_hi"].append(float(hi))
    descs = {"source": "the dataset's own files, decoded with Pillow (or raw pixels for MNIST idx)"}
    descs.update({cs.codec: cs.description.split(", codebook")[0] for cs in settings})
    return {
        "name": f"symcodec-eval-{Path(str(dataset)).stem}",
        "description": f"Compression against top-1 accuracy on {n} images of {Path(str(dataset)).name} "
                       f"({w}x{h}x{c}), models: {', '.join(models)}",
        "results": results,
        "settings": {"dataset": str(dataset), "n_images": n, "limit": limit, "image_shape": [h, w, c],
                     "models": {m: _model_info(m, nets[m]) for m in models}, "codecs": codecs,
                     "codec_descriptions": descs, "rows": [cs.description for cs in settings], "threads": threads},
        "aggregation": AGGREGATION,
        "per_image": {"correct": {m: [atrate.pack_correct(r["ok"][m]) for r in rows] for m in models}},
        "versions": versions(),
        "git_commit": git_commit(),
        "seed": seed,
    }


def _model_info(name: str, net: Any) -> dict[str, Any]:
    meta = getattr(net, "meta", {}) or {}
    return {"arch": net.arch, "preprocess": net.preprocess_name, "trained_on": meta.get("train"),
            "purify": meta.get("purify"), "card_test_accuracy": meta.get("test_accuracy")}


def run_and_save(dataset: str | os.PathLike[str], models: list[str], codecs: list[str], limit: int | None = None,
                 json_path: str | os.PathLike[str] | None = None, plot_path: str | os.PathLike[str] | None = None,
                 threads: int = 2, seed: int = 0, at_bpp: list[float] | None = None) -> dict[str, Any]:
    """`run`, then each codec's top-1 at the `at_bpp` rates (`atrate`), then write the JSON (atomically) and the plot."""
    result = run(dataset, models, codecs, limit=limit, threads=threads, seed=seed)
    if at_bpp:
        cur = atrate.curves(result)
        ref = next((c for c in ("symc", "sym") if c in cur), None)
        result["at_bpp"] = [atrate.at_rate(cur, b, reference=ref, seed=seed) for b in at_bpp]
    if json_path is not None:
        atomic_write(Path(json_path), (json.dumps(result, indent=2) + "\n").encode())
    if plot_path is not None:
        plot(result, plot_path)
    return result


def summary(result: dict[str, Any]) -> str:
    """A plain-text table of the result, one row per codec setting."""
    r = result["results"]
    extra = [k for k in r if k.startswith("top1@")]
    sw = max([8, *(len(str(v)) for v in r["setting"])]) + 2  # settings are never cut (cifar10-ycc420-k512-ppm is not ...-k512)
    ew = [max(10, len(k) + 2) for k in extra]
    head = f"{'codec':<7}{'setting':<{sw}}{'bytes':>8}{'bpp':>7}{'x src':>7}{'x raw':>7}{'PSNR':>7}{'top1':>7}{'delta':>7}"
    head += "".join(f"{k:>{w}}" for k, w in zip(extra, ew)) + f"{'enc ms':>8}{'dec ms':>8}"
    lines = [head]

    def f(v: Any, fmt: str) -> str:
        return format(v, fmt) if v is not None else "-"

    for i in range(len(r["codec"])):
        line = (f"{r['codec'][i]:<7}{str(r['setting'][i]):<{sw}}{r['bytes'][i]:>8.1f}{r['bpp'][i]:>7.3f}"
                f"{r['ratio_source'][i]:>7.2f}{r['ratio_raw'][i]:>7.2f}{f(r['psnr'][i], '.2f'):>7}{r['top1'][i]:>7.2f}"
                f"{r['top1_delta'][i]:>+7.2f}")
        line += "".join(f"{r[k][i]:>{w}.2f}" for k, w in zip(extra, ew))
        line += f"{f(r['encode_ms'][i], '.3f'):>8}{f(r['decode_ms'][i], '.3f'):>8}"
        lines.append(line)
    return "\n".join(lines)


def seed_chain(dataset: str | os.PathLike[str], model: str, codebooks: list[str], limit: int | None = None,
               threads: int = 2, batch: int = 500) -> dict[str, Any]:
    """SymDNN's own order: preprocess (Normalize + softclamp) -> purify the float image -> network (no re-preprocessing).

    Returns top-1 accuracy (%) clean and per codebook, in the bench shape (one list entry per codebook).
    """
    torch.set_num_threads(threads)
    net = M.load(model)
    x, y, _ = load_dataset(dataset, limit)
    cbs = [registry.get(c) for c in codebooks]
    correct = np.zeros(len(cbs) + 1)
    with torch.no_grad():
        for i in tqdm(range(0, len(x), batch), desc="seed chain", leave=False, file=sys.stderr):
            pre = net.pre(M.to_tensor(x[i:i + batch]))
            yb = y[i:i + batch]
            correct[0] += (net.net(pre).argmax(1).numpy() == yb).sum()
            arr = np.ascontiguousarray(pre.permute(0, 2, 3, 1).numpy(), dtype=np.float32)
            for j, cb in enumerate(cbs):
                pur = torch.from_numpy(purify(arr, cb)).permute(0, 3, 1, 2)
                correct[j + 1] += (net.net(pur).argmax(1).numpy() == yb).sum()
    acc = (100 * correct / len(x)).tolist()
    return {"name": f"seed-chain-{Path(str(model)).stem}",
            "description": f"SymDNN order on {len(x)} images of {Path(str(dataset)).name}: {net.preprocess_name} "
                           "preprocessing, then purify the preprocessed float image, then the network",
            "results": {"codebook": ["none"] + [Path(c).name for c in codebooks], "k": [None] + [cb.k for cb in cbs],
                        "top1": acc, "top1_delta": [a - acc[0] for a in acc]},
            "settings": {"dataset": str(dataset), "model": str(model), "n_images": len(x), "limit": limit,
                         "preprocess": net.preprocess_name},
            "aggregation": "top1 = % of images whose argmax logit equals the label",
            "versions": versions(), "git_commit": git_commit(), "seed": 0}
