"""The Pillow plugin, in the style of Pillow's Tests/test_file_qoi.py: open, load, verify, save, draft, errors."""
from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageFile, UnidentifiedImageError

import symcodec
from symcodec import SymImagePlugin, errors
from symcodec.codec.decoder import decode_symbols
from symcodec.format import sym as symfmt
from symcodec.vq import patches

CB = "photo-2x2-k1024"


@pytest.fixture(scope="module")
def sym_file(tmp_path_factory, photo):
    """A real photo (301x399) encoded with the library API, and its PNG twin."""
    d = tmp_path_factory.mktemp("plugin")
    png = d / "coffee.png"
    Image.fromarray(photo).save(png)
    sym = d / "coffee.sym"
    sym.write_bytes(symcodec.encode(photo, CB))
    return sym, png


def test_registered_on_import():
    assert Image.registered_extensions()[".sym"] == "SYM"
    assert Image.MIME["SYM"] == "image/x-sym"
    assert "SYM" in Image.SAVE and "sym" in Image.DECODERS


def test_open_is_lazy_and_load_matches_decode(sym_file):
    sym, png = sym_file
    with Image.open(sym) as im:
        assert im.format == "SYM" and im.mode == "RGB" and im.size == (399, 301)
        assert im.tile and im.tile[0].codec_name == "sym"  # nothing decoded yet
        assert im.info["codebook"] == CB and im.info["patch"] == 2 and im.info["k"] == 1024
        assert im.info["codebook_id"] == symcodec.get_codebook(CB).hexid
        assert im.get_format_mimetype() == "image/x-sym"
        assert not im.is_animated and im.n_frames == 1
        im.load()
        assert np.array_equal(np.asarray(im), symcodec.decode(sym))
    with Image.open(png) as twin:  # the reconstruction is close to the original, not equal
        diff = np.abs(np.asarray(twin, np.int16) - np.asarray(Image.open(sym), np.int16))
        assert 0 < diff.mean() < 12


def test_verify(sym_file, tmp_path):
    with Image.open(sym_file[0]) as im:
        im.verify()
    bad = bytearray(sym_file[0].read_bytes())
    bad[-1] ^= 0xFF  # the end chunk's CRC: open() stops before it, verify() reads everything
    p = tmp_path / "bad.sym"
    p.write_bytes(bytes(bad))
    with Image.open(p) as im, pytest.raises(errors.ChecksumError):
        im.verify()


def test_foreign_file_is_not_identified(sym_file):
    with pytest.raises(SyntaxError):
        SymImagePlugin.SymImageFile(str(sym_file[1]))
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(b"\x89SYX\r\n\x1a\n" + bytes(64)))


def test_truncation_at_every_length_class(sym_file):
    data = sym_file[0].read_bytes()
    cuts = [3, 8, 11, 20, 60, len(data) // 2, len(data) - 13, len(data) - 1]
    for n in cuts:
        f = io.BytesIO(data[:n])
        if n < len(symfmt.SIGNATURE):
            with pytest.raises(UnidentifiedImageError):  # too short to even be recognised
                Image.open(f)
            continue
        with pytest.raises(errors.TruncatedError):  # a real .sym: the reason reaches the user
            im = Image.open(f)
            im.load()


def test_real_sym_problems_are_not_swallowed(sym_file):
    data = bytearray(sym_file[0].read_bytes())
    newer = bytes(data[:8]) + b"\x09" + bytes(data[9:])  # a major version no reader knows
    with pytest.raises(errors.UnsupportedVersionError, match="major version 9"):
        Image.open(io.BytesIO(newer))
    f = symcodec.read(bytes(data))
    other = f.header.__class__(**{**f.header.__dict__, "codebook_id": bytes(32)})
    f2 = symfmt.SymFile(other, payload=f.payload)
    with Image.open(io.BytesIO(f2.to_bytes())) as im:  # the header reads without the codebook
        assert im.size == (f.header.width, f.header.height) and im.info["codebook"] is None
        with pytest.raises(errors.CodebookNotFoundError, match="0000000000"):
            im.load()


def test_save_round_trip_with_options(tmp_path, photo):
    out = tmp_path / "x.sym"
    Image.fromarray(photo[:64, :80]).save(out, codebook="cifar10-2x2-k512", embed_codebook=True)
    with Image.open(out) as im:
        assert im.info["codebook"] == "cifar10-2x2-k512" and im.info["codebook_embedded"]
        assert np.array_equal(np.asarray(im), symcodec.purify(photo[:64, :80], "cifar10-2x2-k512"))
    for mode in ("L", "LA", "RGBA"):
        src = Image.fromarray(photo[:33, :47]).convert(mode)
        buf = io.BytesIO()
        src.save(buf, format="SYM", codebook=CB)
        with Image.open(io.BytesIO(buf.getvalue())) as im:
            assert im.mode == mode and im.size == (47, 33)
            if mode.endswith("A"):
                assert np.array_equal(np.asarray(im)[..., -1], np.asarray(src)[..., -1])  # alpha is lossless


def test_unsupported_mode(tmp_path):
    im = Image.new("I;16", (8, 8))
    with pytest.raises(errors.UnsupportedModeError):
        im.save(tmp_path / "x.sym")
    assert not (tmp_path / "x.sym").exists()  # Pillow removes the half-written file


def test_metadata_round_trip(tmp_path, photo):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "symcodec-test-camera"
    jpg = tmp_path / "a.jpg"
    Image.fromarray(photo[:40, :40]).save(jpg, icc_profile=icc, exif=exif, xmp=b"<x:xmpmeta/>")
    with Image.open(jpg) as src:
        src.save(tmp_path / "a.sym", codebook=CB)  # metadata comes from im.info by default
    with Image.open(tmp_path / "a.sym") as im:
        assert im.info["icc_profile"] == icc
        assert im.info["xmp"] == b"<x:xmpmeta/>"
        assert im.getexif()[0x010F] == "symcodec-test-camera"
        im.save(tmp_path / "b.png", exif=im.info["exif"])  # and on (Pillow's PNG writer takes exif only as an option)
    with Image.open(tmp_path / "b.png") as png:
        assert png.info["icc_profile"] == icc and png.getexif()[0x010F] == "symcodec-test-camera"
    f = symcodec.read(tmp_path / "a.sym")
    assert f.exif is not None and f.exif[:2] in (b"II", b"MM")  # stored without Pillow's Exif\0\0 prefix


def test_thumbnail_uses_the_preview(sym_file, monkeypatch):
    sym = sym_file[0]
    cb = symcodec.get_codebook(CB)
    calls = []
    real = patches.tile
    monkeypatch.setattr(patches, "tile", lambda *a, **k: calls.append(1) or real(*a, **k))
    with Image.open(sym) as im:
        assert im.draft(None, (100, 100)) == ("RGB", (0, 0, 399 / 2, 301 / 2))
        assert im.size == (200, 151)
        im.load()
        prev = np.asarray(im)
    assert not calls  # no full reconstruction
    f = symcodec.read(sym)
    sym_arr = np.stack(decode_symbols(f, cb))
    assert np.array_equal(prev, cb.table_mean_u8[sym_arr].transpose(1, 2, 0))
    with Image.open(sym) as im:
        im.thumbnail((64, 64))
        assert im.size == (64, 48) and not calls
        full = Image.fromarray(symcodec.decode(sym)).resize((64, 48), Image.Resampling.BICUBIC)
        assert np.abs(np.asarray(im, np.int16) - np.asarray(full, np.int16)).mean() < 6
    with Image.open(sym) as im:
        assert im.draft(None, (300, 300)) is None  # preview would be smaller than asked
        im.thumbnail((300, 300))
        assert calls


def test_readme_quickstart_in_a_fresh_process(sym_file):
    code = (
        "import symcodec; symcodec.register()\n"
        "from PIL import Image\n"
        f"im = Image.open({str(sym_file[0])!r}); im.load(); print(im.format, im.size, im.mode)\n"
        f"im = Image.open({str(sym_file[0])!r}); im.thumbnail((64, 64)); print(im.size)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["SYM (399, 301) RGB", "(64, 48)"]


def test_load_truncated_images_flag_does_not_hide_errors(sym_file, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = sym_file[0].read_bytes()
    with pytest.raises(errors.TruncatedError):
        Image.open(io.BytesIO(data[:-100])).load()
