"""Regenerate the .sym test vectors in formats/vectors/ (only when the format version changes).

Usage: python tools/make_vectors.py
Writes, for each vector, the source PNG, the .sym file and the expected decoded PNG, plus invalid
files with the error class a reader must raise, and vectors.json listing them with SHA-256 sums.
"""
from __future__ import annotations

import hashlib
import json
import struct
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import symcodec  # noqa: E402
from symcodec import chunks  # noqa: E402
from symcodec.codebook import Codebook  # noqa: E402

OUT = ROOT / "formats" / "vectors"


def tiny_codebook(patch: int) -> Codebook:
    """A 16-centroid codebook that is easy to check by hand: flat levels and simple edges."""
    levels = np.linspace(0, 1, 8, dtype=np.float32)
    flat = np.repeat(levels[:, None], patch * patch, 1)
    ramp = np.tile(np.linspace(0, 1, patch * patch, dtype=np.float32), (4, 1)) * np.array([[1], [0.5], [0.25], [0.75]], np.float32)
    edge = np.zeros((4, patch * patch), np.float32)
    edge[0, : patch * patch // 2] = 1
    edge[1, patch * patch // 2 :] = 1
    edge[2, ::2] = 1
    edge[3, 1::2] = 1
    cent = np.concatenate([flat, ramp, edge])
    counts = np.array([40, 30, 20, 20, 20, 20, 30, 40, 5, 5, 5, 5, 3, 3, 3, 3], np.uint32)
    return Codebook(cent, patch=patch, counts=counts, name=f"vector-{patch}x{patch}-k16", provenance={"trained_on": "hand-made for test vectors"})


def ppm_codebook(cb: Codebook) -> Codebook:
    """The same 16 centroids with an entropy-model-3 table (formats/sym-v3.md) fitted on generated images."""
    from symcodec.ppmtrain import train_ppm

    sym = symcodec.quantize(np.stack([image(16, 16, 3, s) for s in range(10, 30)]), cb)
    model = train_ppm([sym[:, c] for c in range(3)], cb.k, d=0.6, cmin=2, tmin=2, progress=False)
    return Codebook(cb.centroids, patch=cb.patch, counts=cb.counts, name=f"{cb.name}-ppm",
                    provenance={"trained_on": "generated images (tools/make_vectors.py)"}, ppm=model.to_bytes())


def image(h: int, w: int, c: int, seed: int) -> np.ndarray:
    """A smooth gradient with some noise, deterministic."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (yy * 255 // max(h - 1, 1) + xx * 128 // max(w - 1, 1)) % 256
    a = np.stack([(base + 60 * i) % 256 for i in range(c)], -1) + rng.integers(-20, 21, (h, w, c))
    return np.clip(a, 0, 255).astype(np.uint8)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    cb2, cb4 = tiny_codebook(2), tiny_codebook(4)
    ppm2 = ppm_codebook(cb2)
    cases = [
        ("L-7x5-k16-embedded", image(5, 7, 1, 1)[:, :, 0], cb2, True),
        ("RGB-9x6-k16-embedded", image(6, 9, 3, 2), cb2, True),
        ("RGBA-4x4-k16-embedded", np.dstack([image(4, 4, 3, 3), np.arange(16, dtype=np.uint8).reshape(4, 4) * 16]), cb2, True),
        ("L-10x9-p4-k16-embedded", image(9, 10, 1, 4)[:, :, 0], cb4, True),
        ("RGB-33x17-cifar10-k256", image(17, 33, 3, 5), symcodec.get_codebook("cifar10-2x2-k256"), False),
        ("RGB-13x11-k16-model3-embedded", image(11, 13, 3, 6), ppm2, True),  # version 3: entropy model 3
        ("L-9x7-k16-model3-embedded", image(7, 9, 1, 7)[:, :, 0], ppm2, True),
    ]
    manifest = {"valid": [], "invalid": []}
    for name, px, cb, embed in cases:
        src = OUT / f"{name}.src.png"
        Image.fromarray(px).save(src)
        data = symcodec.encode(px, cb, embed_codebook=embed, text={"vector": name})
        (OUT / f"{name}.sym").write_bytes(data)
        dec = symcodec.decode(data)
        Image.fromarray(dec).save(OUT / f"{name}.expected.png")
        manifest["valid"].append({"name": name, "sym_sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                                  "codebook": cb.name, "codebook_id": cb.hexid, "embedded": embed})
    base = (OUT / "RGB-9x6-k16-embedded.sym").read_bytes()
    bad = {
        "truncated-no-end": (base[:-12], "TruncatedError"),
        "truncated-mid-chunk": (base[: len(base) // 2], "TruncatedError"),
        "bad-crc": (base[:-20] + bytes([base[-20] ^ 1]) + base[-19:], "ChecksumError"),
        "major-version-9": (base[:8] + b"\x09" + base[9:], "UnsupportedVersionError"),
        "unknown-critical-chunk": (base[:-12] + chunks.pack_chunk(b"ZZZZ", b"x") + base[-12:], "UnknownChunkError"),
        "not-sym": (b"\x89PNG\r\n\x1a\n" + base[8:], "NotSymFileError"),
    }
    h_off = 12 + 8  # HEAD payload offset
    head = bytearray(base[h_off : h_off + 52])
    struct.pack_into("<I", head, 48, 5)  # wrong symbol count
    fixed = base[:12] + chunks.pack_chunk(b"HEAD", bytes(head)) + base[12 + 12 + 52 :]
    bad["bad-symbol-count"] = (fixed, "FormatError")
    v3 = (OUT / "RGB-13x11-k16-model3-embedded.sym").read_bytes()
    bad["model3-under-major-2"] = (v3[:8] + b"\x02" + v3[9:], "FormatError")
    for name, (data, err) in bad.items():
        (OUT / f"invalid-{name}.sym").write_bytes(data)
        manifest["invalid"].append({"name": f"invalid-{name}", "error": err})
    (OUT / "vectors.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {len(manifest['valid'])} valid and {len(manifest['invalid'])} invalid vectors to {OUT}")


if __name__ == "__main__":
    main()
