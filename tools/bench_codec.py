"""Codec benchmark (issue 2 acceptance): size, entropy, PSNR on CIFAR-10; speed against Pillow WebP/JPEG.

Usage: python tools/bench_codec.py [--limit N] [--codebook NAME] [--json results/bench_codec.json] [--no-speed]
Prints one table. Timings are best-of-R wall clock on this machine, single-threaded unless marked.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import symcodec  # noqa: E402
from symcodec.codec.decoder import decode_symbols  # noqa: E402
from symcodec.data import sources  # noqa: E402

CIFAR_TEST = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg" / "test.tar"
SEED_MS = {"cifar": 12.4, "224": 626.0}  # SymDNN reference purification, 1 thread (symdnn-reference.md section 5)


def best(f, reps: int = 5) -> float:
    """Best-of-reps seconds for f() after one warm-up call."""
    f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return min(ts)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def cifar_size(cb, limit: int | None) -> dict:
    """Encode the CIFAR-10 test JPEGs: bytes, bits/symbol, model cross-entropy, PSNR vs source pixels."""
    from tqdm import tqdm

    n = 0
    file_bytes = payload_bits = src_bytes = 0
    xent = 0.0
    psnrs, sq = [], 0.0
    n_sym = 0
    for s in tqdm(sources.iter_samples(CIFAR_TEST), total=limit or 10000, desc="cifar10 test", file=sys.stderr):
        if limit and n >= limit:
            break
        x = s.array()
        data = symcodec.encode(x, cb)
        f = symcodec.read(data)
        sym = decode_symbols(f, cb)
        y = symcodec.decode(data, cb)
        file_bytes += len(data)
        src_bytes += len(s.data or b"")
        payload_bits += len(f.payload or b"") * 8
        xent += cb.entropy.code_length(sym)  # the coding model's ideal code length of the same symbols
        n_sym += sum(p.size for p in sym)
        psnrs.append(psnr(x, y))
        sq += np.mean((x.astype(np.float64) - y) ** 2)
        n += 1
    return {
        "images": n,
        "sym_bytes_per_image": file_bytes / n,
        "source_jpeg_bytes_per_image": src_bytes / n,
        "bits_per_symbol_coded": payload_bits / n_sym,
        "bits_per_symbol_file": file_bytes * 8 / n_sym,
        "cross_entropy_bits_per_symbol": xent / n_sym,
        "coder_overhead_pct": 100 * (payload_bits / xent - 1),
        "psnr_mean_db": float(np.mean(psnrs)),
        "psnr_pooled_db": float(10 * np.log10(255.0**2 / (sq / n))),
        "bpp_file": file_bytes * 8 / (n * 32 * 32),
        "sym_vs_source_bytes": file_bytes / max(src_bytes, 1),
    }


def photos() -> list[np.ndarray]:
    """Four 512x512 RGB photos from scikit-image (held out of codebook training)."""
    import skimage.data as sd

    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        im = Image.fromarray(getattr(sd, name)()).convert("RGB")
        w, h = im.size
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)).resize((512, 512), Image.LANCZOS)
        out.append(np.asarray(im))
    return out


def speed(cb, imgs: list[np.ndarray], threads: int, reps: int) -> dict:
    """Encode/decode throughput for .sym beside WebP q75 encode and JPEG q75 decode of the same images."""
    t_sym_e = t_webp = t_sym_d = t_jpeg = 0.0
    px = 0
    for x in imgs:
        im = Image.fromarray(x)
        data = symcodec.encode(x, cb, threads=threads)
        jb = io.BytesIO()
        im.save(jb, "JPEG", quality=75)
        jpg = jb.getvalue()
        t_sym_e += best(lambda: symcodec.encode(x, cb, threads=threads), reps)
        t_webp += best(lambda: im.save(io.BytesIO(), "WEBP", quality=75), reps)
        t_sym_d += best(lambda: symcodec.decode(data, cb), reps)
        t_jpeg += best(lambda: np.asarray(Image.open(io.BytesIO(jpg)).convert("RGB")), reps)
        px += x.shape[0] * x.shape[1]
    mp = px / 1e6
    return {"sym_encode_mps": mp / t_sym_e, "webp_q75_encode_mps": mp / t_webp,
            "sym_decode_mps": mp / t_sym_d, "jpeg_q75_decode_mps": mp / t_jpeg,
            "encode_vs_webp": t_webp / t_sym_e, "decode_vs_jpeg": t_jpeg / t_sym_d}


def cifar_speed(cb, limit: int) -> dict:
    """Images/s on CIFAR images: .sym encode vs WebP, .sym decode vs decoding the source JPEG files."""
    xs, jpgs = [], []
    for i, s in enumerate(sources.iter_samples(CIFAR_TEST)):
        if i >= limit:
            break
        xs.append(s.array())
        jpgs.append(s.data)
    syms = [symcodec.encode(x, cb) for x in xs]
    pils = [Image.fromarray(x) for x in xs]
    r = {}
    r["sym_encode_ips"] = len(xs) / best(lambda: [symcodec.encode(x, cb) for x in xs], 3)
    r["webp_q75_encode_ips"] = len(xs) / best(lambda: [p.save(io.BytesIO(), "WEBP", quality=75) for p in pils], 3)
    r["sym_decode_ips"] = len(xs) / best(lambda: [symcodec.decode(d, cb) for d in syms], 3)
    r["jpeg_decode_ips"] = len(xs) / best(lambda: [np.asarray(Image.open(io.BytesIO(j)).convert("RGB")) for j in jpgs], 3)
    return r


def purify_speed(cb, batch: np.ndarray) -> dict:
    """Purification (quantize + reconstruct) per image, 1 thread, against the seed's design."""
    import skimage.data as sd

    one = batch[0]
    t32 = best(lambda: symcodec.purify(one, cb), 20)
    t32b = best(lambda: symcodec.purify(batch, cb), 3) / len(batch)
    big = np.asarray(Image.fromarray(sd.astronaut()).resize((224, 224), Image.LANCZOS))
    t224 = best(lambda: symcodec.purify(big, cb), 5)
    return {"purify_cifar_ms": t32 * 1e3, "purify_cifar_batched_ms": t32b * 1e3, "purify_224_ms": t224 * 1e3,
            "speedup_cifar_vs_seed": SEED_MS["cifar"] / (t32 * 1e3), "speedup_224_vs_seed": SEED_MS["224"] / (t224 * 1e3)}


def versions() -> dict:
    import numba
    import PIL

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    return {"symcodec": symcodec.__version__, "numpy": np.__version__, "numba": numba.__version__, "pillow": PIL.__version__,
            "python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "git_commit": commit}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="CIFAR images for the size table (default all 10,000)")
    ap.add_argument("--codebook", default="cifar10-2x2-k2048")
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    cb = symcodec.get_codebook(a.codebook)
    t = time.perf_counter()
    cb.searcher  # noqa: B018  (build once; reported, not counted in speeds)
    build_s = time.perf_counter() - t
    res: dict = {"size": cifar_size(cb, a.limit), "searcher_build_s": build_s, "load": {"loadavg_1min_before": os.getloadavg()[0]}}
    if not a.no_speed:
        imgs = photos()
        res["photo512_1thread"] = speed(cb, imgs, 1, a.reps)
        res["photo512_2threads"] = speed(cb, imgs, 2, a.reps)
        res["cifar_speed"] = cifar_speed(cb, 1000)
        xs, _, _ = sources.load_arrays(CIFAR_TEST, limit=256)
        res["purify"] = purify_speed(cb, xs)
    res["load"]["loadavg_1min_after"] = os.getloadavg()[0]
    s = res["size"]
    rows = [
        ("codebook", f"{cb.name} (K={cb.k}, {cb.patch}x{cb.patch}, id {cb.short_id})"),
        ("CIFAR-10 test images", f"{s['images']}"),
        (".sym bytes/image (header incl.)", f"{s['sym_bytes_per_image']:.1f}  (source JPEG {s['source_jpeg_bytes_per_image']:.1f}; ratio {s['sym_vs_source_bytes']:.3f})"),
        ("bits/symbol coded (file)", f"{s['bits_per_symbol_coded']:.3f}  ({s['bits_per_symbol_file']:.3f})"),
        ("model cross-entropy bits/symbol", f"{s['cross_entropy_bits_per_symbol']:.3f}"),
        ("coder overhead vs cross-entropy", f"{s['coder_overhead_pct']:+.3f}%  (must be < 1%)"),
        ("PSNR vs source pixels", f"{s['psnr_mean_db']:.2f} dB mean of images, {s['psnr_pooled_db']:.2f} dB pooled MSE"),
        ("searcher build (once per codebook)", f"{build_s:.2f} s"),
        ("load average (1 min) before / after", f"{res['load']['loadavg_1min_before']:.2f} / {res['load']['loadavg_1min_after']:.2f}"),
    ]
    if not a.no_speed:
        for key, lab in (("photo512_1thread", "1 thread"), ("photo512_2threads", "2 threads")):
            p = res[key]
            rows.append((f"512x512 encode MP/s ({lab})", f"{p['sym_encode_mps']:.1f} vs WebP q75 {p['webp_q75_encode_mps']:.1f}  -> {p['encode_vs_webp']:.2f}x"))
            rows.append((f"512x512 decode MP/s ({lab})", f"{p['sym_decode_mps']:.1f} vs JPEG q75 {p['jpeg_q75_decode_mps']:.1f}  -> {p['decode_vs_jpeg']:.2f}x"))
        c = res["cifar_speed"]
        rows.append(("CIFAR encode images/s", f"{c['sym_encode_ips']:.0f} vs WebP q75 {c['webp_q75_encode_ips']:.0f}  -> {c['sym_encode_ips'] / c['webp_q75_encode_ips']:.2f}x"))
        rows.append(("CIFAR decode images/s", f"{c['sym_decode_ips']:.0f} vs source JPEG {c['jpeg_decode_ips']:.0f}  -> {c['sym_decode_ips'] / c['jpeg_decode_ips']:.2f}x"))
        p = res["purify"]
        rows.append(("purify per CIFAR image", f"{p['purify_cifar_ms']:.3f} ms ({p['purify_cifar_batched_ms']:.4f} ms batched) vs seed 12.4 ms -> {p['speedup_cifar_vs_seed']:.0f}x"))
        rows.append(("purify per 224x224 image", f"{p['purify_224_ms']:.2f} ms vs seed 626 ms -> {p['speedup_224_vs_seed']:.0f}x"))
    w = max(len(r[0]) for r in rows)
    print("\nsymcodec codec benchmark")
    for k, v in rows:
        print(f"  {k:<{w}}  {v}")
    if a.json:
        flat = {f"{g}.{k}": v for g, d in res.items() if isinstance(d, dict) for k, v in d.items()}
        mid = cb.entropy.model_id
        model = {1: "static model (.sym v1)", 2: "context model (entropy model 2, .sym v2)", 3: "escape-chain context tables (entropy model 3, .sym v3)"}[mid]
        out = {"name": f"symcodec-{cb.name}", "description": f"symcodec {model}, colour {cb.colour}, tools/bench_codec.py",
               "results": {k: [v] for k, v in flat.items()}, "settings": {"codebook": cb.name, "codebook_id": cb.hexid, "limit": a.limit, "reps": a.reps},
               "aggregation": "bytes and bits: totals over images / counts; psnr_mean_db: mean of per-image dB; psnr_pooled_db: from the mean MSE; speeds: best of reps, summed over images",
               "versions": versions(), "seed": None}
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
