"""The .sym container: bad input of every kind raises a specific symcodec error, never anything else."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

import symcodec
from symcodec import errors
from symcodec.codebook import registry
from symcodec.format import chunks
from symcodec.format import sym as symfmt


@pytest.fixture(scope="module")
def small_sym(cifar_images) -> bytes:
    return symcodec.encode(cifar_images[0], "cifar10-2x2-k256", text={"k": "v"})


def test_signature_and_header(small_sym):
    assert small_sym[:8] == b"\x89SYM\r\n\x1a\n" and small_sym[8:10] == b"\x01\x00"
    f = symcodec.read(small_sym)
    h = f.header
    assert (h.width, h.height, h.mode, h.patch, h.k, h.planes, h.grid, h.symbols) == (32, 32, "RGB", 2, 256, 3, (16, 16), 768)
    assert h.codebook_id == registry.get("cifar10-2x2-k256").id
    assert f.text == {"k": "v"}


def test_foreign_file_is_not_sym():
    with pytest.raises(errors.NotSymFileError):
        symcodec.decode(b"\xff\xd8\xff\xe0" + b"\0" * 40)
    with pytest.raises(errors.NotSymFileError):
        symcodec.decode(b"")


def test_every_truncation_is_detected(small_sym):
    for n in range(len(small_sym)):
        with pytest.raises(errors.FormatError):
            symcodec.decode(small_sym[:n])


def test_bit_flips_never_escape_as_other_exceptions(small_sym):
    rng = np.random.default_rng(0)
    for _ in range(300):
        b = bytearray(small_sym)
        i = int(rng.integers(0, len(b)))
        b[i] ^= 1 << int(rng.integers(0, 8))
        try:
            symcodec.decode(bytes(b))
        except errors.SymcodecError:
            pass


def test_payload_flip_is_a_checksum_error(small_sym):
    b = bytearray(small_sym)
    b[-20] ^= 0x10  # inside the last SDAT payload
    with pytest.raises(errors.ChecksumError):
        symcodec.decode(bytes(b))


def _insert_chunk(data: bytes, ctype: bytes, payload: bytes) -> bytes:
    pre = 12
    (hl,) = struct.unpack("<I", data[pre : pre + 4])
    cut = pre + 12 + hl  # after HEAD
    return data[:cut] + chunks.pack_chunk(ctype, payload) + data[cut:]


def test_unknown_ancillary_skipped_unknown_critical_refused(small_sym):
    ok = _insert_chunk(small_sym, b"zzzz", b"future")
    assert np.array_equal(symcodec.decode(ok), symcodec.decode(small_sym))
    bad = _insert_chunk(small_sym, b"ZZZZ", b"future")
    with pytest.raises(errors.UnknownChunkError):
        symcodec.decode(bad)


def test_newer_major_version_refused(small_sym):
    b = bytearray(small_sym)
    b[8] = 5  # majors 1-4 are entropy models 1-4 (formats/sym.md, version table)
    with pytest.raises(errors.UnsupportedVersionError):
        symcodec.decode(bytes(b))


def _with_head(data: bytes, **fields) -> bytes:
    f = symcodec.read(data)
    h = f.header
    vals = {k: getattr(h, k) for k in ("width", "height", "mode", "patch", "colour", "model_id", "k", "codebook_id", "symbols")}
    vals.update(fields)
    f.header = symfmt.Header(**vals)
    return f.to_bytes()


def test_pixel_cap_checked_from_header_before_allocation(small_sym, monkeypatch):
    huge = _with_head(small_sym, width=100_000, height=100_000, symbols=3 * 50_000 * 50_000 % 2**32)
    with pytest.raises(errors.ImageTooLargeError):
        symcodec.read(huge, header_only=True)
    monkeypatch.setattr(symfmt, "MAX_PIXELS", 1000)
    with pytest.raises(errors.ImageTooLargeError):
        symcodec.decode(small_sym)


def test_unknown_codebook_names_id_folders_and_fix(small_sym):
    fake = bytes(range(32))
    with pytest.raises(errors.CodebookNotFoundError) as ei:
        symcodec.decode(_with_head(small_sym, codebook_id=fake))
    msg = str(ei.value)
    assert fake.hex() in msg and "symcodec" in msg and "install" in msg and "cifar10-2x2-k2048" in msg


def test_inconsistent_header_fields_refused(small_sym):
    with pytest.raises(errors.FormatError):
        symcodec.read(_with_head(small_sym, symbols=7))
    with pytest.raises(errors.FormatError):
        symcodec.decode(_with_head(small_sym, k=512))


def test_empty_and_unsupported_inputs():
    with pytest.raises(errors.EmptyImageError):
        symcodec.encode(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(errors.UnsupportedModeError):
        symcodec.encode(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(errors.UnsupportedModeError):
        symcodec.encode(np.zeros((4, 4, 5), np.uint8))
    from PIL import Image

    with pytest.raises(errors.UnsupportedModeError, match="I;16"):
        symcodec.encode(Image.new("I;16", (4, 4)))
    with pytest.warns(errors.ModeConversionWarning):
        symcodec.encode(Image.new("P", (4, 4)))
    with pytest.warns(errors.ModeConversionWarning):
        symcodec.encode(Image.new("CMYK", (4, 4)))


def test_metadata_round_trip():
    from PIL import Image

    im = Image.new("RGB", (6, 5), (10, 200, 30))
    exif = Image.Exif()
    exif[0x010F] = "symcodec"
    data = symcodec.encode(im, icc_profile=b"fake-icc", exif=exif.tobytes(), xmp=b"<x/>")
    f = symcodec.read(data)
    assert (f.icc_profile, f.exif, f.xmp) == (b"fake-icc", exif.tobytes(), b"<x/>")


def test_alpha_chunk_corruption(cifar_images):
    rgba = np.dstack([cifar_images[0], np.full((32, 32), 7, np.uint8)])
    f = symcodec.read(symcodec.encode(rgba))
    f.alpha = zlib.compress(b"\0" * 10)
    with pytest.raises(errors.FormatError):
        symcodec.decode(f.to_bytes())
