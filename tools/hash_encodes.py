"""SHA-256 of what every shipped codebook writes and reads back: the fingerprint a refactor must not move.

Usage: python tools/hash_encodes.py [--n 1000] [--json PATH] [--compare OLD.json]
For each codebook file in codebooks/: the .sym bytes of the first N CIFAR-10 test images (plain RGB, the
common path), then of 40 variants that take the general path (L, RGBA, an odd 31x29 crop, EXIF and text
metadata, an embedded codebook), and the pixels every file decodes to. Uses only the public API
(`symcodec.encode`, `symcodec.decode`, `symcodec.get_codebook` with a file path), so the same script runs
before and after the package moves. A variant a codebook refuses hashes the error class name.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import symcodec  # noqa: E402

CIFAR_TEST = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg" / "test.tar"


def cifar(n: int) -> list[np.ndarray]:
    """The first n images of the CIFAR-10 test tar, in member order, as (32, 32, 3) uint8."""
    out = []
    with tarfile.open(CIFAR_TEST) as tf:
        for m in tf:
            if len(out) >= n:
                break
            if m.isfile() and m.name.endswith(".jpg"):
                with Image.open(io.BytesIO(tf.extractfile(m).read())) as im:  # type: ignore[union-attr]
                    out.append(np.asarray(im.convert("RGB")))
    return out


def variants(xs: list[np.ndarray]) -> list[tuple[object, dict]]:
    """Inputs that take the general path: modes, odd sizes, metadata, embedded codebooks."""
    out: list[tuple[object, dict]] = []
    for i, x in enumerate(xs[:10]):
        grey = np.asarray(Image.fromarray(x).convert("L"))
        rgba = np.concatenate([x, grey[:, :, None]], 2)
        out += [(grey, {}), (rgba, {}), (np.ascontiguousarray(x[:31, :29]), {}),
                (x, {"exif": b"II*\x00" + bytes([i]) * 8, "text": {"k": f"v{i}"}, "embed_codebook": i % 2 == 0})]
    return out


def fingerprint(cb_path: Path, xs: list[np.ndarray], var: list[tuple[object, dict]]) -> dict[str, str | int]:
    """sha256 of the plain encodes, of the variant encodes, and of every decoded file's pixels."""
    cb = symcodec.get_codebook(str(cb_path))
    h_plain, h_var, h_pix = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    total = 0
    for x in xs:
        d = symcodec.encode(x, cb)
        total += len(d)
        h_plain.update(len(d).to_bytes(4, "little") + d)
        h_pix.update(symcodec.decode(d, cb).tobytes())
    for a, kw in var:
        try:
            d = symcodec.encode(a, cb, **kw)
        except symcodec.errors.SymcodecError as exc:
            h_var.update(type(exc).__name__.encode())
            continue
        h_var.update(len(d).to_bytes(4, "little") + d)
        h_pix.update(symcodec.decode(d, cb).tobytes())
    return {"plain_sha256": h_plain.hexdigest(), "variants_sha256": h_var.hexdigest(),
            "pixels_sha256": h_pix.hexdigest(), "plain_bytes": total}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--json", default=None)
    ap.add_argument("--compare", default=None, help="an earlier --json output: report each codebook equal or not, exit 1 if any differs")
    a = ap.parse_args()
    xs = cifar(a.n)
    var = variants(xs)
    res = {}
    for p in sorted((ROOT / "codebooks").glob("*.symcb")):
        res[p.stem] = fingerprint(p, xs, var)
        print(f"{p.stem:<28} plain {res[p.stem]['plain_sha256'][:16]}  variants {res[p.stem]['variants_sha256'][:16]}  "
              f"pixels {res[p.stem]['pixels_sha256'][:16]}  ({res[p.stem]['plain_bytes']} bytes)", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"images": a.n, "codebooks": res}, indent=2) + "\n")
    if a.compare:
        old = json.loads(Path(a.compare).read_text())["codebooks"]
        common = [n for n in res if n in old]
        same = [n for n in common if old[n] == res[n]]
        new, gone = sorted(set(res) - set(old)), sorted(set(old) - set(res))
        print(f"{len(same)} of {len(common)} codebooks write and read exactly what {a.compare} records"
              + ("" if len(same) == len(common) else f"; different: {', '.join(n for n in common if n not in same)}")
              + (f"; new since: {', '.join(new)}" if new else "") + (f"; missing: {', '.join(gone)}" if gone else ""))
        if len(same) != len(common) or gone:
            sys.exit(1)


if __name__ == "__main__":
    main()
