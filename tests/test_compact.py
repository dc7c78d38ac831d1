"""The compact form (formats/sym.md section 9): layout pinned byte by byte, same pixels as the chunked form,
hostile files refused with one-line errors, and every reader (Pillow, datasets, convert) takes it."""
from __future__ import annotations

import io
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import symcodec
from symcodec.codebook import registry
from symcodec.codec.decoder import decode, read
from symcodec.codec.encoder import encode
from symcodec.errors import (
    ChecksumError,
    FormatError,
    ImageTooLargeError,
    SymcodecError,
    TruncatedError,
    UnsupportedVersionError,
)
from symcodec.format import sym

CB = "cifar10-ycc420-k512-ppm"


def _recrc(body: bytes) -> bytes:
    """A version-1 body with its CRC-32."""
    return body + struct.pack("<I", zlib.crc32(body))


def _recheck(body: bytes) -> bytes:
    """A version-2 body with its check (the low 16 bits of CRC-32)."""
    return body + struct.pack("<I", zlib.crc32(body))[:2]


def _head(version: int, cb_id: bytes) -> bytes:
    # magic, version, descriptor (model 3 | patch 2 -> 0 | colour 1 << 4 | RGB << 5), W 32, H 32, K 512 as LEB128
    return b"\x89sym" + bytes((version, 3 | 1 << 4 | 1 << 5, 32, 32)) + b"\x80\x04" + cb_id[: 8 if version == 1 else 4]


def test_layout_pinned(cifar_images: np.ndarray) -> None:
    cb = registry.get(CB)
    ends = set()
    for x in cifar_images[:16]:
        full, small = encode(x, CB), encode(x, CB, compact=True)
        payload = read(full).payload
        zero_end = payload[-2:] == b"\0\0"  # version 2 leaves that word out
        ends.add(zero_end)
        assert small == _recheck(_head(2, cb.id) + (payload[:-2] if zero_end else payload))
        assert len(full) - len(small) == 100 - 16 + 2 * zero_end  # chunked framing 100 bytes, compact 16 at 32x32, K=512
        assert np.array_equal(decode(small), decode(full))
        f = read(small)
        assert f.compact and f.compact_version == 2 and f.payload == payload and f.to_bytes() == small
        assert f.header.symbols == read(full).header.symbols
    assert ends == {True, False}  # both cases seen


def test_version_1_still_reads(cifar_images: np.ndarray) -> None:
    """Files written before version 2 (8 id bytes, CRC-32, whole payload) decode to the same pixels and rewrite exactly."""
    cb = registry.get(CB)
    for x in cifar_images[:4]:
        full = encode(x, CB)
        f = read(full)
        old = sym.pack_compact(f.header, f.payload, version=1)
        assert old == _recrc(_head(1, cb.id) + f.payload)
        back = read(old)
        assert back.compact_version == 1 and back.to_bytes() == old and back.payload == f.payload
        assert np.array_equal(decode(old), decode(full))


@pytest.mark.parametrize("cbname", ["mnist-2x2-k32", "cifar10-2x2-k256", "cifar10-ycc420-k512"])
def test_same_pixels_every_model(cifar_images: np.ndarray, cbname: str) -> None:
    """Entropy models 1-3, L and RGB: the compact file decodes to exactly the chunked file's pixels."""
    for x in cifar_images[:8]:
        img = x if cbname.startswith("cifar10") else x.mean(2).astype(np.uint8)
        a, b = encode(img, cbname), encode(img, cbname, compact=True)
        assert b[:4] == sym.COMPACT_MAGIC and len(b) < len(a)
        assert np.array_equal(decode(a), decode(b))


def test_falls_back_to_chunked(cifar_images: np.ndarray) -> None:
    """Alpha, metadata, an embedded codebook, or the transform mode: the chunked form, whatever `compact` says."""
    x = cifar_images[0]
    rgba = np.concatenate([x, np.full(x.shape[:2] + (1,), 200, np.uint8)], 2)
    assert encode(rgba, CB, compact=True)[:8] == sym.SIGNATURE
    assert encode(x, CB, compact=True, text={"k": "v"})[:8] == sym.SIGNATURE
    assert encode(x, CB, compact=True, embed_codebook=True)[:8] == sym.SIGNATURE
    photo = np.asarray(Image.fromarray(x).resize((256, 256)))
    assert encode(photo, compact=True)[:8] == sym.SIGNATURE


def test_hostile_compact_files(cifar_images: np.ndarray) -> None:
    good = encode(cifar_images[1], CB, compact=True)
    body = good[:-2]
    for n in range(len(good)):  # every truncation: a one-line symcodec error, never a crash
        with pytest.raises(SymcodecError):
            decode(good[:n])
    for i in range(0, len(good), 7):  # bit flips: the check
        bad = bytearray(good)
        bad[i] ^= 0x10
        with pytest.raises(FormatError):
            decode(bytes(bad))
    with pytest.raises(UnsupportedVersionError):
        decode(_recheck(body[:4] + b"\x03" + body[5:]))
    with pytest.raises(FormatError, match="descriptor"):
        decode(_recheck(body[:5] + bytes((body[5] | 0x40,)) + body[6:]))
    with pytest.raises(FormatError, match="minimally"):  # W as two bytes (0xA0 0x00): not minimal
        decode(_recheck(body[:6] + b"\xa0\x00" + body[7:]))
    with pytest.raises(FormatError, match="even length"):
        decode(_recheck(body + b"\0"))
    sdat = read(good).payload  # a final 0x0000 word the writer would have left out:
    head = body[:14]  # magic 4, version, descriptor, W, H, K (2), id prefix 4
    with pytest.raises(FormatError, match="no final 0x0000"):
        decode(_recheck(head + (sdat if sdat[-2:] == b"\0\0" else sdat + b"\0\0\0\0")))
    with pytest.raises(FormatError):  # K differs from the codebook's
        decode(_recheck(body[:8] + b"\x80\x02" + body[10:]))
    huge = body[:6] + b"\xff\xff\xff\x07\xff\xff\xff\x07" + body[8:]  # claims 2^31-1 squared pixels
    with pytest.raises(ImageTooLargeError):
        decode(_recheck(huge))
    with pytest.raises(ChecksumError):
        decode(good[:-1] + bytes((good[-1] ^ 1,)))
    with pytest.raises(TruncatedError):
        sym.read(b"\x89sym\x02")
    old = read(good)
    v1 = sym.pack_compact(old.header, old.payload, version=1)
    with pytest.raises(FormatError, match="multiple of 4"):  # version 1 keeps its own rule
        decode(_recrc(v1[:-4] + b"\0\0"))


def test_pillow_and_info(tmp_path: Path, cifar_images: np.ndarray) -> None:
    p = tmp_path / "a.sym"
    Image.fromarray(cifar_images[2]).save(p, codebook=CB, compact=True)
    assert p.read_bytes()[:4] == sym.COMPACT_MAGIC
    with Image.open(p) as im:
        assert im.format == "SYM" and im.info["codebook"] == CB
        assert im.info["codebook_id"] == registry.get(CB).hexid  # the whole id, resolved from the 4 bytes
        assert np.array_equal(np.asarray(im), decode(p.read_bytes()))
    from symcodec.codec.files import describe

    d = describe(p)
    assert d["form"] == "compact" and d["bytes"] == p.stat().st_size


def test_convert_compact_and_back(tmp_path: Path, cifar_test_tar: Path) -> None:
    from symcodec.data.convert import convert

    out = tmp_path / "c.tar"
    s = convert(cifar_test_tar, out, codebook=CB, compact=True, limit=40, workers=0, progress=False)
    assert s.total_failures == 0
    with tarfile.open(out) as tf:
        syms = [tf.extractfile(m).read() for m in tf.getmembers() if m.name.endswith(".sym")]
    assert len(syms) == 40 and all(b[:4] == sym.COMPACT_MAGIC for b in syms)
    back = tmp_path / "png"
    s2 = convert(out, back, to="png", workers=0, progress=False)
    assert s2.total_failures == 0
    pngs = sorted(back.rglob("*.png"))
    assert len(pngs) == 40
    first = np.asarray(Image.open(pngs[0]))
    assert first.shape == (32, 32, 3)


def test_sniffers_take_compact(cifar_images: np.ndarray) -> None:
    b = encode(cifar_images[3], CB, compact=True)
    assert sym.is_sym(b) and sym.is_sym(encode(cifar_images[3], CB))
    assert not sym.is_sym(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(b)) as im:
        assert im.size == (32, 32)
