"""The per-shape fast path (symcodec.plans) writes and reads exactly what the general path does."""
from __future__ import annotations

import numpy as np
import pytest

import symcodec
from symcodec import codec, container, plans, registry
from symcodec.errors import SymcodecError

CODEBOOKS = ["cifar10-ycc420-k512-ppm", "cifar10-2x2-k2048-ppm", "cifar10-ycc420-k512", "cifar10-2x2-k2048-ctx",
             "cifar10-2x2-k128"]


def general_encode(a: np.ndarray, cb) -> bytes:
    """codec.encode's general branch (quantize, then assemble the container)."""
    cb = registry.get(cb)
    mode = {1: "L", 3: "RGB"}[a.shape[2]]
    syms = codec.quantize_ycc(a, cb) if cb.colour == 1 else codec.quantize(a, cb)
    return codec.assemble(cb, a, mode, syms, {})


def general_decode(d: bytes, cb=None) -> np.ndarray:
    """codec.decode's general branch (bytearray input skips the plan)."""
    return symcodec.decode(bytearray(d), cb)


@pytest.mark.parametrize("name", CODEBOOKS)
def test_plan_bytes_and_pixels_match_the_general_path(name, cifar_images, photo):
    cb = registry.get(name)
    images = list(cifar_images[:6]) + [cifar_images[6, :17, :31], cifar_images[7, :1, :1], photo[:45, :67]]
    for a in images:
        a = np.ascontiguousarray(a)
        d = symcodec.encode(a, cb)
        assert d == general_encode(a, cb)
        fast = symcodec.decode(d, cb)
        assert plans.decode(d, cb) is not None  # the plan really ran
        np.testing.assert_array_equal(fast, general_decode(d, cb))
        np.testing.assert_array_equal(symcodec.decode(d), fast)  # codebook found by id


def test_fused_encode_builds_missing_cells_the_long_way(cifar_images, photo):
    """RGB model-3 plans search and entropy-code in one kernel; a cell not yet built sends that image the long way."""
    from symcodec.codebook import Codebook

    cb = Codebook.from_bytes(registry.get("cifar10-2x2-k2048-ppm").to_bytes())  # a fresh, empty cell cache
    for a in [cifar_images[10], photo[:32, :32], cifar_images[10], photo[:32, :32]]:
        a = np.ascontiguousarray(a)
        before = int(cb.searcher.used[0])
        d = symcodec.encode(a, cb)
        assert d == general_encode(a, cb)
        assert plans.encoder(cb, 32, 32, "RGB").fused
        if before == 0:
            assert cb.searcher.used[0] > 0  # the first image built its cells


def test_plan_grey_images(mnist_test_images):
    from symcodec.sources import load_arrays

    x, _, _ = load_arrays(mnist_test_images, limit=8)
    cb = registry.get("mnist-2x2-k64")
    for a in x:
        a = a[:, :, None] if a.ndim == 2 else a
        d = symcodec.encode(a, cb)
        assert d == general_encode(np.ascontiguousarray(a), cb)
        out = symcodec.decode(d, cb)
        assert out.shape == a.shape[:2]
        np.testing.assert_array_equal(out, general_decode(d, cb))


def test_files_outside_the_common_layout_take_the_general_path(cifar_images):
    a = cifar_images[0]
    cb = registry.get("cifar10-ycc420-k512-ppm")
    plain = symcodec.encode(a, cb)
    with_text = symcodec.encode(a, cb, text={"k": "v"})
    embedded = symcodec.encode(a, cb, embed_codebook=True)
    rgba = symcodec.encode(np.dstack([a, np.full(a.shape[:2], 200, np.uint8)]), cb)
    for d in (with_text, embedded, rgba):
        assert d != plain and plans.decode(d, cb) is None
    np.testing.assert_array_equal(symcodec.decode(with_text, cb), symcodec.decode(plain, cb))
    np.testing.assert_array_equal(symcodec.decode(rgba, cb)[:, :, :3], symcodec.decode(plain, cb))


def _error(f):
    try:
        f()
    except SymcodecError as e:
        return type(e), str(e)
    return None


def test_corrupt_files_raise_what_the_general_reader_raises(cifar_images):
    cb = registry.get("cifar10-2x2-k2048-ppm")
    d = symcodec.encode(cifar_images[1], cb)
    other = registry.get("cifar10-ycc420-k512-ppm")
    bad = []
    for i in range(0, len(d), 7):  # every seventh byte flipped
        b = bytearray(d)
        b[i] ^= 0x20
        bad.append(bytes(b))
    v9 = bytearray(d)
    v9[len(container.SIGNATURE)] = 9
    bad += [d[:-3], d + b"junk", bytes(v9)]
    for b in bad:
        assert _error(lambda: symcodec.decode(b, cb)) == _error(lambda: general_decode(b, cb))
    err = _error(lambda: symcodec.decode(d, other))
    assert err is not None and err == _error(lambda: general_decode(d, other))


def test_plans_follow_the_codebook_object():
    cb = registry.get("cifar10-2x2-k128")
    p1 = plans.encoder(cb, 32, 32, "RGB")
    assert plans.encoder(cb, 32, 32, "RGB") is p1
    assert plans.encoder(cb, 33, 32, "RGB") is not p1
    assert p1.hdr.symbols == 3 * 16 * 16 and p1.prefix.startswith(container.SIGNATURE)
