"""Flood a `symcodec receive` with CRC-valid absurd-geometry packets; a real image sent meanwhile must arrive.

Usage: python tools/stress_receiver.py [--seconds 30] [--rate 1000] [--json results/stream/stress.json]
Starts the CLI receiver (UDP, 127.0.0.1) in its own process, sends `--rate` packets a second for
`--seconds`: BAND packets naming a shipped codebook with 4096x4096 (over the receiver's pixel budget)
and 2048x2048 geometries (within it, so they are held until they time out, are superseded, or are pushed
out), each from a fresh stream. Halfway it sends one CIFAR-10 test image with `symcodec send`. The
receiver must deliver that image and report a peak resident memory under 300 MiB.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symcodec.codebook import registry  # noqa: E402
from symcodec.stream import net  # noqa: E402
from symcodec.stream import packets as pk  # noqa: E402

CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg" / "test.tar"


def flood_packets(n: int) -> list[bytes]:
    """n CRC-valid BAND packets with absurd geometries, each a new stream and image."""
    cb = registry.get("cifar10-2x2-k2048")
    out = []
    for i in range(n):
        side = 4096 if i % 2 else 2048
        geo = pk.Geometry(cb.id[:8], side, side, 3, 2, cb.k, 1)
        out.append(pk.band_packet(geo, i % 65536, i // 65536, 0, 2, bytes(200)))
    return out


def run(seconds: float, rate: float, out: Path) -> dict:
    """One stress run; returns the receiver's report summary and the verdict."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "symcodec.cli", "receive", str(out), "--listen", "127.0.0.1:0",
                             "--timeout", str(seconds + 30), "--image-timeout", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stderr.readline()
        port = int(line.strip().rsplit(":", 1)[1])
        log: list[str] = []  # the receiver writes a line per image: drain them, or it blocks on a full pipe
        threading.Thread(target=lambda: log.extend(proc.stderr), daemon=True).start()
        pkts = flood_packets(int(seconds * rate))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t0 = time.monotonic()
        sent_real = None
        for i, p in enumerate(pkts):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sock.sendto(p, ("127.0.0.1", port))
            if sent_real is None and time.monotonic() - t0 > seconds / 2:
                sent_real = net.send(CIFAR, f"127.0.0.1:{port}", codebook="cifar10-2x2-k256", limit=1, progress=False)
        flood_s = time.monotonic() - t0
        sock.close()
        time.sleep(3)
        proc.send_signal(2)  # Ctrl-C: the receiver finishes what it holds and writes its report
        stdout, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    rep = json.loads(stdout.strip().splitlines()[-1])
    items = json.loads((out / "report.json").read_text())["items"]
    real = [it for it in items if it["name"].startswith(sent_real["stream"])]
    ok = bool(real and real[0]["ok"] and real[0]["received"] == real[0]["packets"]) and rep["peak_rss_mib"] < 300
    return {"seconds": round(flood_s, 2), "packets_flooded": len(pkts), "rate_per_s": round(len(pkts) / flood_s, 1),
            "real_image_delivered": bool(real and real[0]["ok"]), "real_image_complete": bool(real and real[0]["received"] == real[0]["packets"]),
            "peak_rss_mib": rep["peak_rss_mib"], "refused": rep["refused"], "invalid": rep["invalid"], "images": rep["images"],
            "dropped_by_kernel": rep.get("dropped_by_kernel"), "dropped_queue_full": rep.get("dropped_queue_full"), "ok": ok}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--out", default="/tmp/symcodec-stress")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    res = run(a.seconds, a.rate, Path(a.out))
    print(json.dumps(res))
    if a.json:
        Path(a.json).write_text(json.dumps({"name": "symcodec-stress-receiver", "description": __doc__.splitlines()[0], **res}, indent=2) + "\n")
    sys.exit(0 if res["ok"] else 1)


if __name__ == "__main__":
    main()
