"""Coverage-guided fuzzing (atheris, libFuzzer) of every parser that reads untrusted bytes.

Usage: python tools/fuzz.py [TARGET ...] [--runs N] [--seconds S] [--corpus DIR] [--json PATH]
Targets (default: all):
  sym      `.sym` files: symcodec.read, symcodec.decode, Pillow open + load (SYM only)
  symcb    `.symcb` codebooks: Codebook.from_bytes, then its context model and a small encode and decode
  tables   the raw tables of CTXM, PPMT and TCTX (deflated by the harness, then parsed), and a code/decode
           of a few symbols with what parses
  stream   a byte stream of packets (formats/stream.md): the deframer, then a Receiver (budget 256x256)
  jpeg     convert's fast path for small JPEGs (symcodec.data.fastjpeg): it must give None or exactly the
           pixels Pillow's Image.open + load gives, and never accept what Pillow refuses
Seeds come from formats/vectors and small files the harness writes. Each target runs in its own process
with libFuzzer's limits: an input that runs over 10 s is a hang, a process over 1 GiB RSS a memory finding,
and anything but a `symcodec.errors` exception a crash; findings are saved under the corpus folder's
`findings/`. Prints one JSON line per target (runs, seconds, executions/s, corpus size, findings) and exits 1
if any target found something. `make fuzz` runs every target to 1M executions; `make test` runs each for
a few seconds (tests/test_fuzz.py).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("sym", "symcb", "tables", "stream", "jpeg")
RSS_LIMIT_MB = 1024
TIMEOUT_S = 10


# -- seeds ----------------------------------------------------------------------------------------------
def seeds(target: str) -> list[bytes]:
    """Small valid inputs for a target."""
    import numpy as np

    import symcodec
    from symcodec.codebook import registry
    from symcodec.format.sym import read

    vec = sorted(p for p in (ROOT / "formats" / "vectors").glob("*.sym") if not p.name.startswith("invalid"))
    if target == "sym":
        rng = np.random.default_rng(7)
        img = rng.integers(0, 256, (13, 11, 3), dtype=np.uint8)
        out = [p.read_bytes() for p in vec if p.stat().st_size < 200_000]
        out += [p.read_bytes() for p in (ROOT / "formats" / "vectors").glob("invalid*.sym")]
        out += [symcodec.encode(img, "cifar10-2x2-k128", text={"k": "v"}, icc_profile=b"icc" * 10),
                symcodec.encode(np.dstack([img, img[:, :, 1]]), "mnist-2x2-k32", embed_codebook=True)]
        return out
    if target == "symcb":
        out = [read(p.read_bytes()).codebook for p in vec if "embedded" in p.name]
        return [c for c in out if c] + [registry.get("mnist-2x2-k32").to_bytes()]
    if target == "tables":
        from symcodec.codebook.codebook import Codebook, TransformCodebook

        out = []
        for p in vec:
            c = read(p.read_bytes()).codebook
            if not c:
                continue
            cb = Codebook.from_bytes(c)
            tag, payload = (b"TCTX", cb.entropy.to_bytes()) if isinstance(cb, TransformCodebook) else (cb.context_chunk or (None, None))
            if tag in (b"CTXM", b"PPMT"):
                payload = zlib.decompress(payload[4:])
            if tag is not None:
                out.append(_TAGS[tag] + struct.pack("<H", cb.k) + payload)
        return out
    if target == "jpeg":
        from PIL import Image

        rng = np.random.default_rng(5)
        x = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
        out = []
        for arr, kw in ((x, {"quality": 75}), (x, {"quality": 30, "subsampling": 0}), (x[:, :, 0], {}),
                        (x, {"progressive": True}), (x[:9, :7], {"optimize": True}), (x, {"restart_marker_blocks": 1})):
            b = io.BytesIO()
            Image.fromarray(arr).save(b, "JPEG", **kw)
            out.append(b.getvalue())
        return out
    from symcodec.stream import bands

    cb = registry.get("cifar10-2x2-k256")
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (16, 12, 3), dtype=np.uint8)
    sym = np.stack(cb_symbols(cb, img))
    pk1 = bands.encode_bands(sym, cb, 12, 16, 5, 0, 96, fec=2)
    return [b"".join(pk1), b"".join(pk1[::-1]) + pk1[0][:20]]


_TAGS = {b"CTXM": b"\x02", b"PPMT": b"\x03", b"TCTX": b"\x04"}


def cb_symbols(cb, img):  # noqa: ANN001, ANN201
    """Per-plane symbols of an RGB image with a per-plane codebook."""
    from symcodec.codec.encoder import encoder_for

    enc = encoder_for(cb, img.shape[1], img.shape[0], "RGB")
    return enc.symbols(img[None])[0].reshape(enc.planes, *enc.grids[0])


# -- harnesses (run inside the fuzzing process) ----------------------------------------------------------
def fix_crcs(data: bytes) -> bytes:
    """The input with the CRC-32 of each chunk it frames (12-byte preamble, then length, type, data, CRC) made right."""
    b = bytearray(data)
    pos = 12
    while pos + 12 <= len(b):
        n = int.from_bytes(b[pos:pos + 4], "little")
        end = pos + 8 + n
        if end + 4 > len(b):
            break
        b[end:end + 4] = struct.pack("<I", zlib.crc32(bytes(b[pos + 4:end])))
        pos = end + 4
    return bytes(b)


def harness(target: str):  # noqa: ANN201
    """The TestOneInput function of a target; anything but a symcodec error escapes (a finding)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    import symcodec
    from symcodec import errors
    from symcodec.codebook.codebook import Codebook
    from symcodec.entropy.base import deflate
    from symcodec.entropy.coef import CoefModel
    from symcodec.entropy.context import ContextModel
    from symcodec.entropy.ppm import PPMModel
    from symcodec.stream import packets as pk
    from symcodec.stream.receiver import Receiver

    ok = errors.SymcodecError
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)

    def sym(data: bytes) -> None:
        for d in (data, fix_crcs(data)):  # as is, and with every chunk's CRC made right (the parsers behind it)
            for fn in (symcodec.read, symcodec.decode):
                try:
                    fn(d)
                except ok:
                    pass
        try:
            with Image.open(io.BytesIO(fix_crcs(data)), formats=["SYM"]) as im:
                im.load()
        except (ok, UnidentifiedImageError, Image.DecompressionBombError):
            pass

    def symcb(data: bytes) -> None:
        data = fix_crcs(data)
        try:
            cb = Codebook.from_bytes(data)
            if isinstance(cb, Codebook):
                cb.context  # noqa: B018
                if cb.k <= 4096 and cb.colour == 0:
                    symcodec.decode(symcodec.encode(img[:, :, :1].copy() if cb.patch else img, cb))
            else:
                symcodec.decode(symcodec.encode(np.repeat(np.repeat(img, 2, 0), 2, 1), cb, quality=50))
        except ok:
            pass

    models = {2: ContextModel, 3: PPMModel, 4: CoefModel}

    def tables(data: bytes) -> None:
        if len(data) < 3 or data[0] not in models:
            return
        k = struct.unpack_from("<H", data, 1)[0]
        cls = models[data[0]]
        try:
            m = cls.from_bytes(data[3:] if cls is CoefModel else deflate(data[3:]), k)
            if cls is not CoefModel and 2 <= k:
                s = rng.integers(0, k, (3, 4, 5)).astype(np.int32)
                planes = [s[i] for i in range(3)]
                code = m.encode(planes) if hasattr(m, "encode") else None
                if code is not None:
                    m.decode(code, [(4, 5)] * 3)
                m.decode(data[-64:] + bytes(-len(data[-64:]) % 4), [(4, 5)] * 3)
        except ok:
            pass

    def stream(data: bytes) -> None:
        rx = Receiver(image_timeout=0.0, max_pixels=256 * 256, max_pending=8, max_bytes_per_sender=1 << 20)
        d = pk.Deframer()
        try:
            for p in d.feed(data, final=True):
                rx.add(p, 0.0, "fuzz")
            for i in range(0, len(data) - 40, 97):  # and datagram by datagram
                rx.feed(data[i:i + 300], 1.0, "fuzz2")
        except ok:
            pass
        rx.close()

    from symcodec.data import fastjpeg

    def jpeg(data: bytes) -> None:
        a = fastjpeg.decode(data, 64)
        if a is None:
            return
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                ref = np.asarray(im)
        except Exception as exc:  # noqa: BLE001 - what Pillow refuses, the fast path must refuse too
            msg = f"fastjpeg decoded a file Pillow refuses ({type(exc).__name__}: {exc})"
            raise AssertionError(msg) from None
        if a.shape != ref.shape or not np.array_equal(a, ref):
            msg = f"fastjpeg's pixels differ from Pillow's ({a.shape} vs {ref.shape})"
            raise AssertionError(msg)

    return {"sym": sym, "symcb": symcb, "tables": tables, "stream": stream, "jpeg": jpeg}[target]


def _jitted_modules() -> list[str]:
    """symcodec modules that hold numba-compiled functions."""
    out = []
    for p in sorted((ROOT / "symcodec").rglob("*.py")):
        if "numba" in p.read_text(encoding="utf-8"):
            out.append(".".join(p.relative_to(ROOT).with_suffix("").parts))
    return out


def child(target: str, corpus: Path, runs: int | None, seconds: float | None) -> None:
    """Fuzz one target in this process (libFuzzer takes it over and exits)."""
    import atheris

    sys.path.insert(0, str(ROOT))
    jitted = [m for m in _jitted_modules()]  # numba compiles their bytecode: instrumenting it breaks them
    with atheris.instrument_imports(include=["symcodec"], exclude=jitted):
        fn = harness(target)
    for seed in sorted((corpus / "queue").glob("seed-*")):  # the parent's seeds: pay one-time costs (numba's
        try:                                                # cached kernels, codebooks) here, not in a timed input
            fn(seed.read_bytes())
        except Exception:  # noqa: BLE001 - libFuzzer runs every seed again and reports what escapes
            pass
    findings = corpus / "findings"
    findings.mkdir(parents=True, exist_ok=True)
    args = [sys.argv[0], str(corpus / "queue"), f"-timeout={TIMEOUT_S}", f"-rss_limit_mb={RSS_LIMIT_MB}",
            f"-artifact_prefix={findings}/", "-print_final_stats=1", "-max_len=65536"]
    if runs is not None:
        args.append(f"-runs={runs}")
    if seconds is not None:
        args.append(f"-max_total_time={int(seconds)}")
    atheris.Setup(args, fn)
    atheris.Fuzz()


def run_target(target: str, corpus_root: Path, runs: int | None, seconds: float | None) -> dict:
    """Fuzz one target in a child process; its summary from libFuzzer's final stats."""
    corpus = corpus_root / target
    q = corpus / "queue"
    q.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    for i, s in enumerate(seeds(target)):
        (q / f"seed-{i:03d}").write_bytes(s)
    before = set((corpus / "findings").glob("*")) if (corpus / "findings").exists() else set()
    t0 = time.monotonic()
    cmd = [sys.executable, __file__, "--child", target, "--corpus", str(corpus)]
    cmd += ["--runs", str(runs)] if runs is not None else []
    cmd += ["--seconds", str(seconds)] if seconds is not None else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.monotonic() - t0
    execs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", r.stderr)
    peak = re.findall(r"stat::peak_rss_mb:\s*(\d+)", r.stderr)
    new = sorted(str(p) for p in set((corpus / "findings").glob("*")) - before)
    n = int(execs[-1]) if execs else 0
    res = {"target": target, "runs": n, "seconds": round(dt, 1), "execs_per_s": round(n / max(dt, 1e-9), 1),
           "corpus": len(list(q.iterdir())), "peak_rss_mb": int(peak[-1]) if peak else None, "findings": new,
           "exit_code": r.returncode}
    if r.returncode != 0 or new:
        res["log_tail"] = r.stderr[-3000:]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("targets", nargs="*", default=list(TARGETS))
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--corpus", default=None, help="corpus folder (kept between runs); default: a temporary one")
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, Path(a.corpus), a.runs, a.seconds)
        return
    bad = [t for t in a.targets if t not in TARGETS]
    if bad:
        ap.error(f"unknown target(s) {bad}; known: {', '.join(TARGETS)}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(a.corpus) if a.corpus else Path(tmp)
        results = []
        for t in a.targets:
            res = run_target(t, root, a.runs, a.seconds)
            print(json.dumps({k: v for k, v in res.items() if k != "log_tail"}), flush=True)
            if "log_tail" in res:
                print(res["log_tail"], file=sys.stderr)
            results.append(res)
    if a.json:
        Path(a.json).write_text(json.dumps({"name": "symcodec-fuzz", "description": __doc__.splitlines()[0],
                                            "limits": {"timeout_s": TIMEOUT_S, "rss_limit_mb": RSS_LIMIT_MB},
                                            "results": results}, indent=2) + "\n")
    sys.exit(1 if any(r["exit_code"] != 0 or r["findings"] for r in results) else 0)


if __name__ == "__main__":
    main()
