"""The transform mode for photographs (formats/sym.md 4.3, 5.4): exact decoding, round trips, strips and threads,
corrupt input, the quality ladder and its defaults, Pillow, and bounded memory on large images."""
from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

import symcodec
from reference import transform_plane_reference, triangle_rgb_reference
from symcodec import errors
from symcodec.codebook import registry
from symcodec.codebook.codebook import Codebook, TransformCodebook
from symcodec.codec.choice import PHOTO_QUALITY, SMALL_SIDE
from symcodec.codec.decoder import decoder_for
from symcodec.entropy.coef import CoefModel
from symcodec.format import sym as symfmt
from symcodec.vq.transform import reconstruct_rows, smooth_rgb, steps_for_quality

PHOTO = "photo-dct"


@pytest.fixture(scope="module")
def cb() -> TransformCodebook:
    c = registry.get(PHOTO)
    assert isinstance(c, TransformCodebook)
    return c


def test_inverse_transform_matches_the_spec_on_random_levels():
    rng = np.random.default_rng(1)
    for trial in range(6):
        gh, gw = rng.integers(1, 5, 2)
        lv = np.zeros((gh, gw, 64), np.int32)
        dense = trial % 2 == 0
        mask = rng.random((gh, gw, 64)) < (0.5 if dense else 0.08)
        lv[mask] = rng.integers(-40, 41, int(mask.sum()))
        lv[:, :, 0] = rng.integers(-300, 300, (gh, gw))
        lv[0, 0, :] = 0  # a block that is all zero
        lv[-1, -1, 1:] = 0  # and one with only a DC level
        steps = rng.integers(1, 256, 64).astype(np.uint8)
        off = rng.integers(-128, 129, (3, 64))
        h, w = gh * 8 - int(rng.integers(0, 8)), gw * 8 - int(rng.integers(0, 8))
        got = np.empty((h, w), np.uint8)
        reconstruct_rows(lv, steps, off, got, 0)
        assert np.array_equal(got, transform_plane_reference(lv, steps, off, h, w))


def test_chroma_filter_matches_the_spec():
    rng = np.random.default_rng(2)
    for h, w in [(1, 1), (2, 3), (7, 5), (33, 64), (40, 9)]:
        y = rng.integers(0, 256, (h, w), dtype=np.uint8)
        cb, cr = (rng.integers(0, 256, ((h + 1) // 2, (w + 1) // 2), dtype=np.uint8) for _ in range(2))
        out = np.empty((h, w, 3), np.uint8)
        smooth_rgb(y, cb, cr, out, 0, h)
        assert np.array_equal(out, triangle_rgb_reference(y, cb, cr))


def test_decoded_photo_equals_the_reference_decoder(cb, photo):
    """Levels from the stream, then the spec's own arithmetic, give the pixels decode() gives."""
    for q in (25, 75):
        data = symcodec.encode(photo, cb, quality=q)
        f = symcodec.read(data)
        dec = decoder_for(cb, f.header)
        lv = dec.levels(f.payload)
        steps = np.frombuffer(f.payload, np.uint8, 128).reshape(2, 64)
        planes, o = [], 0
        for i, ((gh, gw), (h, w)) in enumerate(zip(dec.grids, [(301, 399), (151, 200), (151, 200)])):
            planes.append(transform_plane_reference(lv[o : o + gh * gw].reshape(gh, gw, 64), steps[min(i, 1)],
                                                    cb.offsets[min(i, 1)], h, w))
            o += gh * gw
        assert np.array_equal(symcodec.decode(data), triangle_rgb_reference(*planes))


@pytest.mark.parametrize("shape", [(1, 1, 3), (7, 9, 3), (9, 17, 1), (300, 257, 3), (520, 33, 4), (301, 40, 2)])
def test_round_trips_of_every_mode_and_size(cb, shape):
    rng = np.random.default_rng(sum(shape))
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    base = (yy * 3 + xx * 2) % 256
    a = np.clip(np.stack([base + 40 * c for c in range(shape[2])], -1) + rng.integers(-15, 16, shape), 0, 255).astype(np.uint8)
    data = symcodec.encode(a if shape[2] > 1 else a[:, :, 0], cb, quality=80)
    f = symcodec.read(data)
    assert data[8] == 4 and f.header.model_id == 4 and f.header.patch == 8
    assert f.header.colour == (1 if shape[2] >= 3 else 0)
    out = symcodec.decode(data)
    assert out.shape == (shape if shape[2] > 1 else shape[:2])
    if shape[2] in (2, 4):
        assert np.array_equal(out[:, :, -1], a[:, :, -1])  # alpha is lossless
    ref = a if shape[2] > 1 else a[:, :, 0]
    err = np.abs(out.astype(int) - ref.astype(int))
    assert (err[..., :3] if shape[2] >= 3 else err if shape[2] == 1 else err[..., 0]).mean() < 10  # noisy images, quality 80
    n_strips = -(-(-(-shape[0] // 8)) // 32)
    assert int.from_bytes(f.payload[128:132], "little") == n_strips


def test_rate_and_fidelity_follow_quality(cb, photo):
    sizes, psnrs = [], []
    for q in (10, 30, 50, 70, 90, 100):
        d = symcodec.encode(photo, cb, quality=q)
        y = symcodec.decode(d)
        sizes.append(len(d))
        psnrs.append(10 * np.log10(255**2 / np.mean((y.astype(float) - photo) ** 2)))
    assert sizes == sorted(sizes) and psnrs == sorted(psnrs)
    assert psnrs[-1] > 38 and psnrs[0] > 24  # 4:2:0 chroma bounds the top


def test_threads_change_neither_bytes_nor_pixels(cb):
    rng = np.random.default_rng(3)
    a = np.clip(np.cumsum(rng.integers(-3, 4, (700, 300, 3)), 0) + 128, 0, 255).astype(np.uint8)  # 3 strips
    one = symcodec.encode(a, cb, quality=60)
    assert symcodec.encode(a, cb, quality=60, threads=3) == one
    assert np.array_equal(symcodec.decode(one, threads=3), symcodec.decode(one))


def test_levels_round_trip_and_corrupt_streams(cb, photo):
    data = symcodec.encode(photo, cb, quality=50)
    f = symcodec.read(data)
    dec = decoder_for(cb, f.header)
    lv = dec.levels(f.payload)
    model: CoefModel = cb.entropy
    assert model.encode_flat(lv.ravel(), dec.layout) == f.payload[128:]
    assert np.array_equal(model.decode_flat(f.payload[128:], dec.layout).reshape(-1, 64), lv)
    body = bytearray(f.payload)
    for bad in (bytes(body[:-4]), bytes(body[:130]), bytes(body[:128]) + b"\x05\0\0\0" + bytes(body[132:])):
        with pytest.raises(errors.FormatError):  # DecodeError is a FormatError
            dec.pixels(bad)
    zero = bytearray(body)
    zero[5] = 0  # a step of 0
    with pytest.raises(errors.FormatError, match="step"):
        dec.pixels(bytes(zero))


def test_mutated_files_raise_only_symcodec_errors_and_both_readers_agree(cb):
    rng = np.random.default_rng(4)
    a = np.clip(np.cumsum(rng.integers(-4, 5, (40, 56, 3)), 1) + 100, 0, 255).astype(np.uint8)
    d = symcodec.encode(a, cb, quality=70)
    for _ in range(300):
        b = bytearray(d)
        for _ in range(int(rng.integers(1, 4))):
            b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        outcome = []
        for data in (bytes(b), bytearray(b)):  # the plain-file path, then the general reader
            try:
                outcome.append(("ok", symcodec.decode(data, cb).tobytes()))
            except errors.SymcodecError as e:
                outcome.append((type(e).__name__, str(e)))
        assert outcome[0] == outcome[1]


def test_quality_and_codebook_errors(cb, cifar_images):
    for q in (0, 101, -5, "50", 50.5, True):
        with pytest.raises(errors.OptionError, match="quality"):
            symcodec.encode(cifar_images[0], quality=q)
    with pytest.raises(errors.OptionError, match="patch codebook"):
        symcodec.encode(cifar_images[0], "cifar10-2x2-k128", quality=50)
    with pytest.raises(errors.CodebookError, match="transform"):
        symcodec.purify(cifar_images[0], cb)
    for bad in (Image.new("I;16", (80, 80)), np.zeros((0, 90, 3), np.uint8)):
        with pytest.raises((errors.UnsupportedModeError, errors.EmptyImageError)):
            symcodec.encode(bad, cb)


def test_defaults_follow_the_image_size(cb, cifar_images, photo):
    def cbid(d: bytes) -> bytes:
        return symcodec.read(d).header.codebook_id

    assert cbid(symcodec.encode(cifar_images[0])) == registry.get("cifar10-ycc420-k512-ppm").id
    assert cbid(symcodec.encode(cifar_images[0], quality=95)) == registry.get("cifar10-2x2-k2048-ppm").id
    assert cbid(symcodec.encode(cifar_images[0][:, :, 0])) == registry.get("mnist-2x2-k64").id
    assert cbid(symcodec.encode(photo[:SMALL_SIDE, :SMALL_SIDE])) != cb.id
    assert cbid(symcodec.encode(photo[: SMALL_SIDE + 1, :20])) == cb.id
    assert cbid(symcodec.encode(photo[:, :, 0])) == cb.id  # an L photo takes the transform mode too
    d = symcodec.encode(photo)
    assert np.array_equal(np.frombuffer(symcodec.read(d).payload, np.uint8, 128).reshape(2, 64), steps_for_quality(PHOTO_QUALITY))


def test_a_jpeg_source_keeps_its_own_tables(cb, photo, tmp_path):
    Image.fromarray(photo).save(tmp_path / "p.jpg", quality=83)
    with Image.open(tmp_path / "p.jpg") as im:
        d = symcodec.encode(im)
        tables = np.array([im.quantization[0], im.quantization[1]], np.uint8)
    assert np.array_equal(np.frombuffer(symcodec.read(d).payload, np.uint8, 128).reshape(2, 64), tables)
    assert np.array_equal(tables, steps_for_quality(83))
    with Image.open(tmp_path / "p.jpg") as im:  # an explicit quality wins
        assert symcodec.encode(im, quality=83) == d and symcodec.encode(im, quality=60) != d


def test_pillow_saves_opens_and_thumbnails_photos(photo, tmp_path):
    symcodec.register()
    Image.fromarray(photo).save(tmp_path / "p.sym", quality=40)
    with Image.open(tmp_path / "p.sym") as im:
        assert im.size == (399, 301) and im.mode == "RGB" and im.info["codebook"] == PHOTO
        assert np.array_equal(np.asarray(im), symcodec.decode(tmp_path / "p.sym"))
    with Image.open(tmp_path / "p.sym") as im:
        im.thumbnail((48, 48))
        assert max(im.size) == 48


def test_codebook_file_and_its_corruptions(cb):
    raw = cb.to_bytes()
    back = Codebook.from_bytes(raw)
    assert isinstance(back, TransformCodebook) and back.id == cb.id and raw[8] == 4
    assert np.array_equal(back.offsets, cb.offsets) and np.array_equal(back.entropy.initial, cb.entropy.initial)
    for bad in (raw[:8] + b"\x03" + raw[9:], raw[:-30], raw[:40] + bytes([raw[40] ^ 1]) + raw[41:]):
        with pytest.raises(errors.FormatError):
            Codebook.from_bytes(bad)
    with pytest.raises(errors.FormatError):
        CoefModel.from_bytes(cb.entropy.to_bytes()[:-2], 128)
    with pytest.raises(errors.FormatError):
        CoefModel(np.full((2, 674), 10))


def test_a_4096_photo_decodes_in_bounded_memory(cb, tmp_path):
    """A 4096x4096 photo decodes in under 300 MB peak (output 48 MB, planes 25 MB, one strip's levels per thread)."""
    yy, xx = np.mgrid[:4096, :4096]
    a = np.stack([(xx // 7 + yy // 5) % 256, (xx // 3) % 256, (yy // 9 + 40) % 256], -1).astype(np.uint8)
    (tmp_path / "big.sym").write_bytes(symcodec.encode(a, cb, quality=60, threads=2))
    code = textwrap.dedent(f"""
        import resource, symcodec
        small = symcodec.decode(symcodec.encode(__import__("numpy").zeros((64, 64, 3), "uint8"), "{cb.hexid}", quality=60))
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        data = open({str(tmp_path / 'big.sym')!r}, "rb").read()
        out = symcodec.decode(data, threads=2)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(out.shape, (peak - base) // 1024)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    shape, mib = res.stdout.rsplit(" ", 1)
    assert shape == "(4096, 4096, 3)" and int(mib) < 300, res.stdout
