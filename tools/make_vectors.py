"""Regenerate the .sym test vectors in formats/vectors/ (formats/sym.md section 8).

Usage: python tools/make_vectors.py
Writes, for each vector, the source PNG, the .sym file and the expected decoded PNG, plus invalid
files with the error class a reader must raise, and vectors.json listing them with SHA-256 sums. The
vectors cover every (entropy model, colour mode) a reader must accept. Vectors already published must
come out byte for byte as before (tests/test_vectors.py pins their SHA-256); new ones are only added.
"""
from __future__ import annotations

import hashlib
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import symcodec  # noqa: E402
from symcodec.codebook.codebook import Codebook  # noqa: E402
from symcodec.entropy.context import ContextModel, Expert  # noqa: E402
from symcodec.entropy.rans import quantize_counts  # noqa: E402
from symcodec.format import chunks, sym  # noqa: E402
from symcodec.train.ppm import train_ppm  # noqa: E402
from symcodec.vq.colour import rgb_to_planes  # noqa: E402

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


def ppm_codebook(cb: Codebook, colour: int = 0) -> Codebook:
    """The same 16 centroids with entropy-model-3 tables (formats/sym.md 5.3) fitted on generated images."""
    x = np.stack([image(16, 16, 3, s) for s in range(10, 30)])
    if colour == 1:
        sym = [symcodec.quantize(np.stack(p)[..., None], cb)[:, 0] for p in zip(*(rgb_to_planes(im) for im in x))]
        model = train_ppm(sym, cb.k, "ycc420", d=0.6, cmin=2, tmin=2, progress=False)
    else:
        q = symcodec.quantize(x, cb)
        model = train_ppm([q[:, c] for c in range(3)], cb.k, d=0.6, cmin=2, tmin=2, progress=False)
    name = f"{cb.name}-ppm" if colour == 0 else f"vector-ycc420-k{cb.k}-ppm"
    return Codebook(cb.centroids, patch=cb.patch, counts=cb.counts, colour=colour, name=name,
                    provenance={"trained_on": "generated images (tools/make_vectors.py)"}, context=model)


def ctx_codebook(cb: Codebook, colour: int = 0) -> Codebook:
    """The same 16 centroids with hand-made entropy-model-2 tables (formats/sym.md 5.2): two tables, three slots."""
    k, m = cb.k, 4
    cand = np.full((2, k, m), -1, np.int32)
    score = np.zeros((2, k, m), np.int32)
    for c in range(k):  # table 0: a symbol's neighbours look like it; table 1: across planes, or 8 levels away
        cand[0, c, :3], score[0, c, :3] = [c, (c + 1) % k, (c + k - 1) % k], [600, 200, 150]
        cand[1, c, :2], score[1, c, :2] = [c, (c + 8) % k], [400, -100]
    dflt = np.stack([np.full(k, -80, np.int32), np.full(k, -40, np.int32)])
    slots = [[Expert(0, 0, 0, -1, 12, 4), Expert(0, 0, -1, 0, 10, 4)],
             [Expert(1, 1, 0, 0, 14, 4), Expert(0, 0, 0, -1, 8, 3)],
             [Expert(1, 1, 0, 0, 12, 4), Expert(1, 2, 0, 0, 6, 2), Expert(0, 0, -1, 0, 6, 4)]]
    model = ContextModel(quantize_counts(cb.counts).astype(np.int64), cand, score, dflt, slots)
    name = f"{cb.name}-ctx" if colour == 0 else f"vector-ycc420-k{cb.k}-ctx"
    return Codebook(cb.centroids, patch=cb.patch, counts=cb.counts, colour=colour, name=name,
                    provenance={"trained_on": "hand-made for test vectors"}, context=model)


def image(h: int, w: int, c: int, seed: int) -> np.ndarray:
    """A smooth gradient with some noise, deterministic."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (yy * 255 // max(h - 1, 1) + xx * 128 // max(w - 1, 1)) % 256
    a = np.stack([(base + 60 * i) % 256 for i in range(c)], -1) + rng.integers(-20, 21, (h, w, c))
    return np.clip(a, 0, 255).astype(np.uint8)


def published(vector: str, build) -> Codebook:
    """The codebook embedded in a published vector (trainers evolve; published vectors do not), else a new one."""
    path = OUT / f"{vector}.sym"
    return Codebook.from_bytes(symcodec.read(path.read_bytes()).codebook) if path.exists() else build()


def _with(f: symcodec.format.sym.SymFile, **kw) -> bytes:
    """The file `f` with some fields replaced, written with valid CRCs."""
    g = symcodec.format.sym.SymFile(**{**f.__dict__, **kw})
    return g.to_bytes()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    cb2, cb4 = tiny_codebook(2), tiny_codebook(4)
    ppm2 = published("RGB-13x11-k16-model3-embedded", lambda: ppm_codebook(cb2))
    ctx2 = published("RGB-11x7-k16-model2-embedded", lambda: ctx_codebook(cb2))
    ycc_ppm = published("RGBA-10x7-k16-ycc420-model3-embedded", lambda: ppm_codebook(cb2, colour=1))
    ycc_ctx = published("RGB-13x9-k16-ycc420-model2-embedded", lambda: ctx_codebook(cb2, colour=1))
    photo = published("RGB-29x21-photo-dct-q60-embedded", lambda: symcodec.get_codebook("photo-dct"))
    meta = {"icc_profile": b"not a real ICC profile", "exif": b"II*\x00\x08\x00\x00\x00\x00\x00", "xmp": b"<x:xmpmeta/>"}
    cases = [
        ("L-7x5-k16-embedded", image(5, 7, 1, 1)[:, :, 0], cb2, True),
        ("RGB-9x6-k16-embedded", image(6, 9, 3, 2), cb2, True),
        ("RGBA-4x4-k16-embedded", np.dstack([image(4, 4, 3, 3), np.arange(16, dtype=np.uint8).reshape(4, 4) * 16]), cb2, True),
        ("L-10x9-p4-k16-embedded", image(9, 10, 1, 4)[:, :, 0], cb4, True),
        ("RGB-33x17-cifar10-k256", image(17, 33, 3, 5), symcodec.get_codebook("cifar10-2x2-k256"), False),
        ("RGB-13x11-k16-model3-embedded", image(11, 13, 3, 6), ppm2, True),  # version 3: entropy model 3
        ("L-9x7-k16-model3-embedded", image(7, 9, 1, 7)[:, :, 0], ppm2, True),
        # added with formats/sym.md (issue 15): every (entropy model, colour) pair, shipped codebooks, metadata
        ("RGB-11x7-k16-model2-embedded", image(7, 11, 3, 8), ctx2, True),
        ("LA-6x5-k16-model2-embedded", np.dstack([image(5, 6, 1, 9), np.arange(30, dtype=np.uint8).reshape(5, 6) * 8]), ctx2, True),
        ("RGB-13x9-k16-ycc420-model2-embedded", image(9, 13, 3, 10), ycc_ctx, True),
        ("RGBA-10x7-k16-ycc420-model3-embedded", np.dstack([image(7, 10, 3, 11), np.full((7, 10), 99, np.uint8)]), ycc_ppm, True),
        ("RGB-5x4-k16-metadata-embedded", image(4, 5, 3, 12), cb2, True),
        ("RGB-32x32-cifar10-2x2-k2048-ctx", image(32, 32, 3, 13), symcodec.get_codebook("cifar10-2x2-k2048-ctx"), False),
        ("RGB-32x32-cifar10-ycc420-k512-ppm", image(32, 32, 3, 14), symcodec.get_codebook("cifar10-ycc420-k512-ppm"), False),
        # added with version 4.0 (issue 16): the transform mode, with the shipped photo-dct codebook embedded (3.9 KB)
        ("RGB-29x21-photo-dct-q60-embedded", image(21, 29, 3, 15), photo, True),
        ("L-17x11-photo-dct-q90-embedded", image(11, 17, 1, 16)[:, :, 0], photo, True),
        ("RGBA-12x9-photo-dct-q30-embedded", np.dstack([image(9, 12, 3, 17), np.arange(108, dtype=np.uint8).reshape(9, 12)]), photo, True),
        ("RGB-40x270-photo-dct-q50", image(270, 40, 3, 18), photo, False),  # two strips
        # added with the compact form (issue 17, section 9): plain files, shipped codebooks, no text chunk
        ("compact-RGB-32x32-cifar10-ycc420-k512-ppm", image(32, 32, 3, 19), symcodec.get_codebook("cifar10-ycc420-k512-ppm"), False),
        ("compact-RGB-33x17-cifar10-k256", image(17, 33, 3, 20), symcodec.get_codebook("cifar10-2x2-k256"), False),
        ("compact-L-28x28-mnist-k256", image(28, 28, 1, 21)[:, :, 0], symcodec.get_codebook("mnist-2x2-k256"), False),
        # added with compact version 2 (section 9): 4 id bytes, a 16-bit check, a final 0x0000 word left out
        ("compact2-RGB-32x32-cifar10-ycc420-k512-ppm", image(32, 32, 3, 22), symcodec.get_codebook("cifar10-ycc420-k512-ppm"), False),
        ("compact2-RGB-33x17-cifar10-k256", image(17, 33, 3, 23), symcodec.get_codebook("cifar10-2x2-k256"), False),
        ("compact2-L-28x28-mnist-k256", image(28, 28, 1, 24)[:, :, 0], symcodec.get_codebook("mnist-2x2-k256"), False),
    ]
    manifest = {"valid": [], "invalid": []}
    for name, px, cb, embed in cases:
        old = OUT / f"{name}.sym"
        src = OUT / f"{name}.src.png"
        Image.fromarray(px).save(src)
        kw = dict(meta) if "metadata" in name else {}
        if "-q" in name:
            kw["quality"] = int(name.split("-q")[1].split("-")[0])
        if name.startswith("compact-"):  # version 1, as first published (writers now write version 2)
            plain = symcodec.read(symcodec.encode(px, cb))
            data = sym.pack_compact(plain.header, plain.payload, version=1)
        elif name.startswith("compact2-"):
            data = symcodec.encode(px, cb, compact=True)
        else:
            data = symcodec.encode(px, cb, embed_codebook=embed, text={"vector": name}, **kw)
        if old.exists() and old.read_bytes() != data:
            sys.exit(f"{name}.sym would change: vectors already published keep their bytes")
        (OUT / f"{name}.sym").write_bytes(data)
        dec = symcodec.decode(data)
        Image.fromarray(dec).save(OUT / f"{name}.expected.png")
        f = symcodec.read(data)
        manifest["valid"].append({"name": name, "sym_sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                                  "codebook": cb.name, "codebook_id": cb.hexid, "embedded": embed, "mode": f.header.mode,
                                  "entropy_model": f.header.model_id, "colour": f.header.colour, "patch": f.header.patch,
                                  "metadata": sorted(k for k in kw if k != "quality"), "quality": kw.get("quality"),
                                  "form": "compact" if f.compact else "chunked",
                                  **({"compact_version": f.compact_version} if f.compact else {})})
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
    y3 = (OUT / "RGBA-10x7-k16-ycc420-model3-embedded.sym").read_bytes()
    f = symcodec.read(y3)
    h = f.header
    v1 = symcodec.read(base)
    bad["colour1-under-major-1"] = (_with(f, header=type(h)(h.width, h.height, h.mode, h.patch, h.colour, 1, h.k, h.codebook_id, h.symbols)),
                                    "FormatError")
    bad["alpha-missing"] = (_with(f, alpha=None), "FormatError")
    bad["embedded-codebook-id-mismatch"] = (_with(v1, codebook=ctx2.to_bytes()), "FormatError")
    bad["rans-final-state"] = (_with(v1, payload=v1.payload[:4] + bytes([v1.payload[4] ^ 1]) + v1.payload[5:]), "DecodeError")
    bad["rans-initial-state-below-2-16"] = (_with(v1, payload=b"\x00\x00\x00\x00" + v1.payload[4:]), "DecodeError")
    t4 = (OUT / "RGB-29x21-photo-dct-q60-embedded.sym").read_bytes()
    f4 = symcodec.read(t4)
    bad["model4-zero-step"] = (_with(f4, payload=f4.payload[:7] + b"\x00" + f4.payload[8:]), "FormatError")
    bad["model4-strip-count"] = (_with(f4, payload=f4.payload[:128] + b"\x02" + f4.payload[129:]), "FormatError")
    bad["model4-patch-4"] = (_with(f4, header=type(f4.header)(*[4 if k == "patch" else getattr(f4.header, k) for k in
                                                                ("width", "height", "mode", "patch", "colour", "model_id", "k",
                                                                 "codebook_id", "symbols")])), "FormatError")
    cpt = (OUT / "compact-RGB-32x32-cifar10-ycc420-k512-ppm.sym").read_bytes()

    def recrc(body: bytes) -> bytes:
        return body + struct.pack("<I", zlib.crc32(body))

    bad["compact-bad-crc"] = (cpt[:-1] + bytes([cpt[-1] ^ 1]), "ChecksumError")
    bad["compact-truncated"] = (cpt[:-9], "ChecksumError")
    bad["compact-version-2"] = (recrc(cpt[:4] + b"\x02" + cpt[5:-4]), "ChecksumError")  # was UnsupportedVersionError before version 2
    bad["compact-descriptor-reserved-bit"] = (recrc(cpt[:5] + bytes([cpt[5] | 0x80]) + cpt[6:-4]), "FormatError")
    bad["compact-width-not-minimal"] = (recrc(cpt[:6] + b"\xa0\x00" + cpt[7:-4]), "FormatError")
    bad["compact-payload-not-multiple-of-4"] = (recrc(cpt[:-4] + b"\x00"), "FormatError")
    # version 2 (the bytes of invalid-compact-version-2 above are unchanged: since version 2 exists, its check fails)
    c2 = (OUT / "compact2-RGB-32x32-cifar10-ycc420-k512-ppm.sym").read_bytes()
    p2 = symcodec.read(c2).payload  # the SDAT payload

    def recheck(body: bytes) -> bytes:
        return body + struct.pack("<I", zlib.crc32(body))[:2]

    bad["compact-version-3"] = (recheck(c2[:4] + b"\x03" + c2[5:-2]), "UnsupportedVersionError")
    bad["compact2-bad-check"] = (c2[:-1] + bytes([c2[-1] ^ 1]), "ChecksumError")
    bad["compact2-odd-payload"] = (recheck(c2[:-2] + b"\x00"), "FormatError")
    bad["compact2-final-zero-word-kept"] = (recheck(c2[:14] + (p2 if p2[-2:] == b"\0\0" else p2 + b"\0" * 4)), "FormatError")
    for name, (data, err) in bad.items():
        if (OUT / f"invalid-{name}.sym").exists() and (OUT / f"invalid-{name}.sym").read_bytes() != data:
            sys.exit(f"invalid-{name}.sym would change: vectors already published keep their bytes")
        (OUT / f"invalid-{name}.sym").write_bytes(data)
        manifest["invalid"].append({"name": f"invalid-{name}", "error": err})
    (OUT / "vectors.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {len(manifest['valid'])} valid and {len(manifest['invalid'])} invalid vectors to {OUT}")


if __name__ == "__main__":
    main()
