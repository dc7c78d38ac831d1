"""Long fuzzing run of the .sym/.symcb parsers: mutated and truncated valid files must raise only
symcodec errors, never another exception, hang, or allocate far more than the input warrants.

Usage: python tools/fuzz_parser.py [--examples 200000] [--seed 0]
Prints a summary line; exits 1 on the first finding (and saves the input to fuzz-finding.sym).
"""
from __future__ import annotations

import argparse
import resource
import signal
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import symcodec  # noqa: E402
from symcodec import errors  # noqa: E402
from symcodec.codebook.codebook import Codebook  # noqa: E402
from symcodec.format.chunks import pack_chunk  # noqa: E402


def seeds() -> list[bytes]:
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (13, 11, 3), dtype=np.uint8)
    out = [
        symcodec.encode(img, "cifar10-2x2-k128"),
        symcodec.encode(img[:, :, 0].copy(), "mnist-2x2-k32", embed_codebook=True, text={"k": "v"}),
        symcodec.encode(np.dstack([img, img[:, :, 1]]), "cifar10-2x2-k256", icc_profile=b"icc" * 10),
    ]
    out += [p.read_bytes() for p in sorted((ROOT / "formats" / "vectors").glob("*.sym"))]
    return out


def split_chunks(b: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """Preamble and (type, payload) list of a well-formed file."""
    pos, out = 12, []
    while pos + 12 <= len(b):
        n = int.from_bytes(b[pos : pos + 4], "little")
        out.append((b[pos + 4 : pos + 8], b[pos + 8 : pos + 8 + n]))
        pos += 12 + n
    return b[:12], out


def mutate_valid_crc(rng: np.random.Generator, b: bytes) -> bytes:
    """Mutate inside one chunk's payload and fix its CRC, so the parser's inner checks are exercised."""
    pre, chs = split_chunks(b)
    i = int(rng.integers(0, len(chs)))
    t, d = chs[i]
    d = bytearray(d)
    for _ in range(int(rng.integers(1, 4))):
        if d and rng.random() < 0.7:
            d[int(rng.integers(0, len(d)))] = int(rng.integers(0, 256))
        elif d:
            d = d[: int(rng.integers(0, len(d)))]
    chs[i] = (t, bytes(d))
    return pre + b"".join(pack_chunk(t, p) for t, p in chs)


def mutate(rng: np.random.Generator, b: bytes) -> bytes:
    if rng.random() < 0.5:
        return mutate_valid_crc(rng, b)
    a = bytearray(b)
    for _ in range(int(rng.integers(1, 6))):
        op = rng.integers(0, 5)
        i = int(rng.integers(0, max(len(a), 1)))
        if op == 0 and a:
            a[i % len(a)] = int(rng.integers(0, 256))
        elif op == 1 and a:
            a[i % len(a)] ^= 1 << int(rng.integers(0, 8))
        elif op == 2:
            a = a[: i]
        elif op == 3:
            a[i:i] = rng.integers(0, 256, int(rng.integers(1, 16)), dtype=np.uint8).tobytes()
        elif op == 4 and len(a) > 4:
            j = int(rng.integers(0, len(a) - 4))
            a[j : j + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()  # lengths, counts, sizes
    return bytes(a)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--examples", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    pool = seeds()
    cb_bytes = symcodec.get_codebook("mnist-2x2-k32").to_bytes()
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("hang")))
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.time()
    counts: dict[str, int] = {}
    for n in range(a.examples):
        src = pool[int(rng.integers(0, len(pool)))] if n % 10 else cb_bytes
        data = mutate(rng, src)
        signal.alarm(5)
        try:
            if src is cb_bytes:
                Codebook.from_bytes(data)
            else:
                symcodec.decode(data)
            counts["ok"] = counts.get("ok", 0) + 1
        except errors.SymcodecError as exc:
            counts[type(exc).__name__] = counts.get(type(exc).__name__, 0) + 1
        except BaseException as exc:  # a finding
            signal.alarm(0)
            Path("fuzz-finding.sym").write_bytes(data)
            print(f"FINDING after {n} examples: {type(exc).__name__}: {exc} (saved fuzz-finding.sym)")
            sys.exit(1)
        finally:
            signal.alarm(0)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss
        if grown > 512 * 1024:  # KiB: more than 512 MiB over the start
            print(f"FINDING: memory grew by {grown // 1024} MiB")
            sys.exit(1)
        if n % 20000 == 0 and n:
            print(f"{n} examples, {time.time() - t0:.0f} s, outcomes {counts}", flush=True)
    print(f"no findings in {a.examples} examples ({time.time() - t0:.0f} s); outcomes {counts}")


if __name__ == "__main__":
    main()
