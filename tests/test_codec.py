"""One encoder, one parser: the fast paths (fused kernel, batches, plain-file parse) give the bytes, pixels
and errors of the general ones (quantize per plane, the entropy protocol on planes, SymFile, the chunk reader)."""
from __future__ import annotations

import numpy as np
import pytest

import symcodec
from symcodec.codebook import registry
from symcodec.codebook.codebook import Codebook
from symcodec.codec import decoder
from symcodec.codec.encoder import Encoder, encoder_for
from symcodec.errors import SymcodecError
from symcodec.format import sym as symfmt
from symcodec.vq.colour import rgb_to_planes

CODEBOOKS = ["cifar10-ycc420-k512-ppm", "cifar10-2x2-k2048-ppm", "cifar10-ycc420-k512", "cifar10-2x2-k2048-ctx",
             "cifar10-2x2-k128"]


def general_encode(a: np.ndarray, cb: Codebook) -> bytes:
    """The long way: per-plane `quantize` (strips), the model's plane API, `SymFile.to_bytes`."""
    mode = {1: "L", 3: "RGB"}[a.shape[2]]
    planes = [symcodec.quantize(p, cb)[0] for p in rgb_to_planes(a)] if cb.colour == 1 else list(symcodec.quantize(a, cb))
    model = cb.entropy
    hdr = symfmt.Header(a.shape[1], a.shape[0], mode, cb.patch, cb.colour, model.model_id, cb.k, cb.id,
                        sum(p.size for p in planes))
    return symfmt.SymFile(hdr, payload=model.encode(planes)).to_bytes()


def general_decode(d: bytes, cb=None) -> np.ndarray:
    """`decode` without the plain-file path (a bytearray is read by the general reader)."""
    return symcodec.decode(bytearray(d), cb)


def plain_ran(d: bytes, cb) -> bool:
    """Whether `decode` reads this file through the plain-file parse and a cached decoder."""
    p = symfmt.parse_plain(d)
    return p is not None and decoder._plain(p, cb) is not None


@pytest.mark.parametrize("name", CODEBOOKS)
def test_fast_paths_match_the_general_ones(name, cifar_images, photo):
    cb = registry.get(name)
    images = list(cifar_images[:6]) + [cifar_images[6, :17, :31], cifar_images[7, :1, :1], photo[:45, :67]]
    for a in images:
        a = np.ascontiguousarray(a)
        d = symcodec.encode(a, cb)
        assert d == general_encode(a, cb)
        fast = symcodec.decode(d, cb)
        assert plain_ran(d, cb)
        np.testing.assert_array_equal(fast, general_decode(d, cb))
        np.testing.assert_array_equal(symcodec.decode(d), fast)  # codebook found by id
    batch = np.ascontiguousarray(cifar_images[:8])
    assert encoder_for(cb, 32, 32, "RGB").encode_batch(batch) == [symcodec.encode(a, cb) for a in batch]


def test_fused_encode_builds_missing_cells_the_long_way(cifar_images, photo):
    """RGB model-3 encoders search and entropy-code in one kernel; a cell not yet built sends that image the long way."""
    cb = Codebook.from_bytes(registry.get("cifar10-2x2-k2048-ppm").to_bytes())  # a fresh, empty cell cache
    assert encoder_for(cb, 32, 32, "RGB").fused
    for a in [cifar_images[10], photo[:32, :32], cifar_images[10], photo[:32, :32]]:
        a = np.ascontiguousarray(a)
        before = int(cb.searcher.used[0])
        assert symcodec.encode(a, cb) == general_encode(a, cb)
        if before == 0:
            assert cb.searcher.used[0] > 0  # the first image built its cells


def test_grey_images(mnist_test_images):
    from symcodec.data.sources import load_arrays

    x, _, _ = load_arrays(mnist_test_images, limit=8)
    cb = registry.get("mnist-2x2-k64")
    for a in x:
        a = a[:, :, None] if a.ndim == 2 else a
        d = symcodec.encode(a, cb)
        assert d == general_encode(np.ascontiguousarray(a), cb)
        out = symcodec.decode(d, cb)
        assert out.shape == a.shape[:2]
        np.testing.assert_array_equal(out, general_decode(d, cb))


def test_metadata_alpha_and_embedded_codebooks_go_through_the_same_encoder(cifar_images):
    a = cifar_images[0]
    cb = registry.get("cifar10-ycc420-k512-ppm")
    plain = symcodec.encode(a, cb)
    with_text = symcodec.encode(a, cb, text={"k": "v"})
    embedded = symcodec.encode(a, cb, embed_codebook=True)
    rgba = symcodec.encode(np.dstack([a, np.full(a.shape[:2], 200, np.uint8)]), cb)
    for d in (with_text, embedded, rgba):
        assert d != plain and symfmt.parse_plain(d) is None
        f = symcodec.read(d)
        assert f.payload == symcodec.read(plain).payload  # the same SDAT, framed with more chunks
    np.testing.assert_array_equal(symcodec.decode(with_text, cb), symcodec.decode(plain, cb))
    np.testing.assert_array_equal(symcodec.decode(rgba, cb)[:, :, :3], symcodec.decode(plain, cb))
    batch = np.stack([np.dstack([x, x[:, :, 0]]) for x in cifar_images[:3]])
    metas = [{"exif": b"II*\0" + bytes([i])} for i in range(3)]
    got = encoder_for(cb, 32, 32, "RGBA").encode_batch(batch, metas, embed_codebook=True)
    assert got == [symcodec.encode(x, cb, exif=m["exif"], embed_codebook=True) for x, m in zip(batch, metas)]


def _error(f):
    try:
        f()
    except SymcodecError as e:
        return type(e), str(e)
    return None


def _mutants(d: bytes, rng: np.random.Generator, n: int) -> list[bytes]:
    """Bit flips, byte sets, truncations, insertions, deletions and lying chunk lengths of a file."""
    out = [d[:-3], d + b"junk", d[: len(d) // 2]]
    for _ in range(n):
        b = bytearray(d)
        kind = int(rng.integers(0, 5))
        i = int(rng.integers(0, len(b)))
        if kind == 0:
            b[i] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:
            b[i] = int(rng.integers(0, 256))
        elif kind == 2:
            b.insert(i, int(rng.integers(0, 256)))
        elif kind == 3:
            del b[i]
        else:
            b[int(rng.choice([8, 12, 76, 80]))] = int(rng.integers(0, 256))  # major, HEAD length, SDAT length
        out.append(bytes(b))
    return out


@pytest.mark.parametrize("name", ["cifar10-2x2-k2048-ppm", "cifar10-ycc420-k512", "mnist-2x2-k32"])
def test_fuzz_fast_and_general_reader_accept_and_reject_alike(name, cifar_images):
    """Mutated plain files: `decode` (plain-file parse first) and the general reader agree on pixels or on error class and message."""
    cb = registry.get(name)
    rng = np.random.default_rng(7)
    for a in (cifar_images[1], cifar_images[2, :9, :13]):
        d = symcodec.encode(np.ascontiguousarray(a), cb)
        for b in _mutants(d, rng, 400):
            for c in (cb, None):
                fast, slow = _error(lambda: symcodec.decode(b, c)), _error(lambda: general_decode(b, c))
                assert fast == slow, (b.hex(), fast, slow)
                if fast is None:
                    np.testing.assert_array_equal(symcodec.decode(b, c), general_decode(b, c))
    other = registry.get("cifar10-ycc420-k512-ppm" if name != "cifar10-ycc420-k512-ppm" else "cifar10-2x2-k128")
    err = _error(lambda: symcodec.decode(d, other))
    assert err is not None and err == _error(lambda: general_decode(d, other))


def test_encoders_follow_the_codebook_object():
    cb = registry.get("cifar10-2x2-k128")
    e1 = encoder_for(cb, 32, 32, "RGB")
    assert encoder_for(cb, 32, 32, "RGB") is e1 and isinstance(e1, Encoder)
    assert encoder_for(cb, 33, 32, "RGB") is not e1
    assert e1.header.symbols == 3 * 16 * 16 and e1.start.startswith(symfmt.SIGNATURE)
    copy = Codebook.from_bytes(cb.to_bytes())
    assert encoder_for(copy, 32, 32, "RGB") is not e1
