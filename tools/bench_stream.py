"""Streaming benchmark (issue 6 acceptance): CIFAR-10 test images over an emulated 9,600 bit/s lossy link.

Usage: python tools/bench_stream.py [--limit N] [--rate BPS] [--classifier NAME] [--json results/bench_stream.json]

Each codec's packets for all images are sent back to back through symcodec.stream.link.Link; time is
*simulated* (airtime = 8 * bytes / rate, no gaps, nothing slept). .sym images go as BAND packets; the source
JPEG files go as FILE packets of the same maximum size (255 bytes). "+fecG" adds one XOR parity packet per G bands. A received JPEG counts as delivered only
when every packet arrived; incomplete JPEGs are also tried with the gaps zero-filled (Pillow with
LOAD_TRUNCATED_IMAGES) and reported as "partial". A .sym image counts as delivered when at least one band
arrived (lost bands concealed); "complete" means every band arrived.
"""
from __future__ import annotations

import argparse
import io
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import symcodec  # noqa: E402
from symcodec.data import sources  # noqa: E402
from symcodec.stream import bands, link, receiver  # noqa: E402
from symcodec.stream import packets as pk  # noqa: E402

CIFAR_TEST = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg" / "test.tar"
CODECS = ["jpeg", "cifar10-2x2-k128", "cifar10-2x2-k256", "cifar10-2x2-k256+fec4", "cifar10-2x2-k2048"]
LINKS = [  # name, loss, corrupt, duplicate, reorder
    ("loss 0%", 0.0, 0.0, 0.0, 0.0),
    ("loss 5%", 0.05, 0.0, 0.0, 0.0),
    ("loss 20%", 0.20, 0.0, 0.0, 0.0),
    ("loss 20% + 5% corrupt/dup/reorder", 0.20, 0.05, 0.05, 0.05),
]
STREAM = 0x5EED


def load(limit: int) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    """`limit` CIFAR-10 test JPEG files evenly spaced through the tar (which is sorted by class), pixels, labels."""
    samples = list(sources.iter_samples(CIFAR_TEST))
    classes = sorted({str(s.label) for s in samples})  # class folders, alphabetical = label order
    pick = np.unique(np.linspace(0, len(samples) - 1, min(limit, len(samples))).astype(int))
    files = [samples[i].data or b"" for i in pick]
    px = np.stack([samples[i].array() for i in pick])
    return files, px, np.array([classes.index(str(samples[i].label)) for i in pick])


def packetize(codec: str, files: list[bytes], px: np.ndarray) -> tuple[list[list[bytes]], np.ndarray | None]:
    """Per-image packet lists, and (for .sym) the lossless reconstructions."""
    if codec == "jpeg":
        return [pk.file_packets(f, STREAM, i) for i, f in enumerate(files)], None
    name, _, fec = codec.partition("+fec")
    cb = symcodec.get_codebook(name)
    sym = symcodec.quantize(px, cb)
    rec = symcodec.reconstruct(sym, cb, shape=px.shape)
    return [bands.encode_bands(s, cb, 32, 32, STREAM, i, fec=int(fec or 0)) for i, s in enumerate(sym)], rec


def partial_jpeg(chunks: dict[int, bytes], size: int) -> np.ndarray | None:
    """Decode a JPEG whose missing chunks are zero-filled, as a lenient viewer would; None if Pillow refuses."""
    buf = bytearray(size)
    for off, data in chunks.items():
        buf[off:off + len(data)] = data
    old = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with Image.open(io.BytesIO(bytes(buf))) as im:
            a = np.asarray(im.convert("RGB"))
        return a if a.shape == (32, 32, 3) else None
    except Exception:  # noqa: BLE001 - any refusal means "not decodable"
        return None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old


def run_one(codec: str, pkts: list[list[bytes]], setting: tuple, rate: float, seed: int, n: int):
    """Send everything through one link; return the receiver, the link, arrivals and the sent-bytes set."""
    _, loss, corrupt, dup, reorder = setting
    lk = link.Link(rate=rate, loss=loss, corrupt=corrupt, duplicate=dup, reorder=reorder, seed=seed)
    flat = [p for ps in pkts for p in ps]
    arrivals = lk.transmit(flat)
    rx = receiver.Receiver(None, keep_pixels=True, image_timeout=1e9)
    sent = set(flat)
    bad_accepted = 0
    for t, data in arrivals:
        before = rx.counts["accepted"]
        rx.feed(data, t)
        if rx.counts["accepted"] > before and data not in sent:
            bad_accepted += 1
    rx.close()
    return rx, lk, arrivals, bad_accepted


def first_packet(codec: str, pkts: list[list[bytes]], n: int) -> np.ndarray | None:
    """Each .sym image decoded from its first packet alone (the coarse preview); None for JPEG."""
    if codec == "jpeg":
        return None
    out = []
    for ps in pkts:
        rx = receiver.Receiver(None, keep_pixels=True)
        rx.feed(ps[0])
        out.append(rx.close()[0].pixels)
    return np.stack(out)


def psnr_db(mse: float) -> float | None:
    return None if mse <= 0 else round(10 * np.log10(255.0**2 / mse), 2)


def classify(model, imgs: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div(255)
        return torch.cat([model(x[i:i + 500]).argmax(1) for i in range(0, len(x), 500)]).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=9600.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--classifier", default=None, help="symcodec.classify.models.load name; accuracy on arrival if given")
    ap.add_argument("--json", default=str(ROOT / "results" / "bench_stream.json"))
    args = ap.parse_args()

    model = None
    if args.classifier:
        import torch

        from symcodec.classify.models import load as load_model

        torch.set_num_threads(1)  # faster than 2 on this shared 2-core machine
        model = load_model(args.classifier)
    files, px, labels = load(args.limit)
    n = len(files)
    acc_source = float((classify(model, px) == labels).mean()) if model is not None else None
    res: dict[str, list] = {k: [] for k in (
        "bytes_per_image", "packets_per_image", "airtime_s", "images_per_minute_delivered",
        "images_per_minute_complete", "share_delivered", "share_complete", "share_partial_decodable",
        "share_symbols_recovered", "psnr_vs_lossless_db", "psnr_vs_source_db", "accuracy_all",
        "accuracy_delivered", "accuracy_lossless", "corrupt_packets_sent", "corrupt_packets_accepted",
        "packets_lost", "psnr_first_packet_db", "accuracy_first_packet", "correct_per_minute")}
    settings = []
    for codec in CODECS:
        t0 = time.perf_counter()
        pkts, lossless = packetize(codec, files, px)
        ref = px if lossless is None else lossless
        pred_ref = classify(model, ref) if model is not None else None
        acc_lossless = float((pred_ref == labels).mean()) if model is not None else None
        first = first_packet(codec, pkts, n)
        psnr_first = None if first is None else psnr_db(float(np.mean((first.astype(float) - ref) ** 2)))
        acc_first = None if first is None or model is None else float((classify(model, first) == labels).mean())
        for li, setting in enumerate(LINKS):
            rx, lk, arrivals, bad = run_one(codec, pkts, setting, args.rate, args.seed + li, n)
            out = np.zeros_like(px)
            delivered = np.zeros(n, bool)
            complete = np.zeros(n, bool)
            partial = np.zeros(n, bool)
            sym_tot = sym_got = 0
            for r in rx.done:
                i = int(r.name[-5:])
                complete[i] = r.received + r.recovered == r.packets and r.ok
                sym_tot += r.symbols
                sym_got += r.symbols_received
                if r.ok and r.pixels is not None:
                    delivered[i] = True
                    out[i] = r.pixels
            if codec == "jpeg":  # what a lenient decoder makes of incomplete files
                chunks: dict[int, dict[int, bytes]] = {}
                for _, data in arrivals:
                    try:
                        p = pk.parse(data)
                    except symcodec.errors.SymcodecError:
                        continue
                    chunks.setdefault(p.image, {})[p.file_fields()[1]] = p.payload
                for i, ch in chunks.items():
                    if not complete[i]:
                        a = partial_jpeg(ch, len(files[i]))
                        if a is not None:
                            partial[i] = True
                            out[i] = a
            shown = delivered | partial
            mse_l = float(np.mean((out[shown].astype(float) - ref[shown]) ** 2)) if shown.any() else float("nan")
            mse_s = float(np.mean((out[shown].astype(float) - px[shown]) ** 2)) if shown.any() else float("nan")
            minutes = lk.clock / 60
            nbytes = sum(len(p) for ps in pkts for p in ps)
            acc_all = acc_del = None
            if model is not None:  # images equal to the lossless ones keep its predictions
                pred = pred_ref.copy()
                redo = shown & (out != ref).reshape(n, -1).any(1)
                if redo.any():
                    pred[redo] = classify(model, out[redo])
                ok = (pred == labels) & shown
                acc_all = float(ok.mean())
                acc_del = float(ok[shown].mean()) if shown.any() else None
            settings.append({"codec": codec, "link": setting[0], "loss": setting[1], "corrupt": setting[2],
                             "duplicate": setting[3], "reorder": setting[4], "rate_bps": args.rate, "images": n})
            vals = {
                "bytes_per_image": nbytes / n, "packets_per_image": sum(map(len, pkts)) / n,
                "airtime_s": lk.clock, "images_per_minute_delivered": delivered.sum() / minutes,
                "images_per_minute_complete": complete.sum() / minutes, "share_delivered": delivered.mean(),
                "share_complete": complete.mean(), "share_partial_decodable": partial.mean(),
                "share_symbols_recovered": (sym_got / sym_tot) if sym_tot else None,
                "psnr_vs_lossless_db": psnr_db(mse_l), "psnr_vs_source_db": psnr_db(mse_s),
                "accuracy_all": acc_all, "accuracy_delivered": acc_del, "accuracy_lossless": acc_lossless,
                "corrupt_packets_sent": lk.stats["corrupted"], "corrupt_packets_accepted": bad,
                "packets_lost": lk.stats["lost"], "psnr_first_packet_db": psnr_first,
                "accuracy_first_packet": acc_first,
                "correct_per_minute": None if acc_all is None else acc_all * n / minutes,
            }
            for k, v in vals.items():
                res[k].append(None if v is None else round(float(v), 4))
            print(f"{codec:>18} | {setting[0]:<34} | {vals['images_per_minute_delivered']:6.1f} img/min "
                  f"(complete {vals['images_per_minute_complete']:6.1f}) | delivered {vals['share_delivered']:.3f} "
                  f"partial {vals['share_partial_decodable']:.3f} | sym {vals['share_symbols_recovered'] or 0:.3f} | "
                  f"PSNR vs lossless {vals['psnr_vs_lossless_db']} | acc {acc_all} | bad accepted {bad}", flush=True)
        print(f"{codec}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    import torch

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    out = {
        "name": "bench_stream",
        "description": ("CIFAR-10 test images streamed as 255-byte packets over an emulated "
                        f"{args.rate:.0f} bit/s link with simulated time (8*bytes/rate, back to back, nothing "
                        "slept); .sym as BAND packets (formats/stream.md) vs the source JPEG files as FILE "
                        "packets. delivered: .sym with >= 1 band (lost bands concealed), JPEG only when complete; "
                        "partial: incomplete JPEG that Pillow still decodes with gaps zero-filled. correct_per_minute: "
                        "correctly classified images per minute of link time. *_first_packet: each "
                        ".sym image from its first packet alone (a codec property, repeated per link). PSNR over shown "
                        "images (delivered or partial); accuracy_all counts lost images as wrong; "
                        f"accuracy on the original JPEG pixels: {acc_source}."),
        "results": res,
        "settings": settings,
        "aggregation": "per setting: totals over all images; PSNR from the mean MSE over shown images",
        "versions": {"symcodec": symcodec.__version__, "numpy": np.__version__, "torch": torch.__version__,
                     "python": platform.python_version(), "classifier": args.classifier},
        "git_commit": commit,
        "seed": args.seed,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    print(args.json)


if __name__ == "__main__":
    main()
