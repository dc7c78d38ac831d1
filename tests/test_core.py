"""Patches, search and the codec round trip on real images and every shipped codebook."""
from __future__ import annotations

import numpy as np
import pytest

import symcodec
from reference import extract_numpy, nearest_brute, tile_numpy
from symcodec.codebook import registry
from symcodec.codebook.codebook import Codebook
from symcodec.codec.decoder import decode_symbols
from symcodec.vq import patches

SHIPPED = [e.name for e in registry.entries() if e.path.parent == registry.shipped_dir()]


def test_shipped_codebooks_present():
    for k in (128, 256, 512, 1024, 2048):
        assert f"cifar10-2x2-k{k}" in SHIPPED
    assert any(n.startswith("mnist-2x2-") for n in SHIPPED)
    assert "photo-2x2-k1024" in SHIPPED


@pytest.mark.parametrize("shape", [(1, 7, 9, 3), (2, 32, 32, 3), (1, 5, 4, 1)])
@pytest.mark.parametrize("p", [2, 4, 8])
def test_extract_and_tile_match_numpy(shape, p):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    a, b = patches.extract(x, p), extract_numpy(x, p)
    assert a.shape == b.shape and np.array_equal(a, b)
    xf = x.astype(np.float32) / 255
    assert np.array_equal(patches.extract(xf, p), extract_numpy(xf, p))
    gh, gw = patches.grid(shape[1], shape[2], p)
    sym = rng.integers(0, 16, (shape[0], shape[3], gh, gw)).astype(np.int32)
    table = rng.integers(0, 256, (16, p * p), dtype=np.uint8)
    assert np.array_equal(patches.tile(sym, table, p, shape[1], shape[2]), tile_numpy(sym, table, p, shape[1], shape[2]))


def test_edge_replication_padding():
    x = np.arange(15, dtype=np.uint8).reshape(1, 3, 5, 1)
    pt = patches.extract(x, 2)[0, 0]  # (2, 3, 4)
    assert pt[1, 2].tolist() == pytest.approx([14 / 255] * 4)  # bottom-right corner patch repeats pixel (2,4)


@pytest.mark.parametrize("name", ["cifar10-2x2-k2048", "cifar10-2x2-k128", "mnist-2x2-k32"])
def test_search_is_exact_on_real_and_random_patches(name, cifar_images):
    cb = registry.get(name)
    real = patches.extract(cifar_images[:16], cb.patch).reshape(-1, cb.dim)
    rnd = np.random.default_rng(1).random((20000, cb.dim), dtype=np.float32)
    for x in (real, rnd):
        got = cb.searcher.nearest(x)
        ref = nearest_brute(x, cb.centroids)
        assert np.array_equal(got, ref)


def test_threads_do_not_change_symbols(photo):
    cb = registry.get("cifar10-2x2-k2048")
    assert np.array_equal(symbolize := symcodec.quantize(photo, cb, threads=1), symcodec.quantize(photo, cb, threads=2))
    assert symbolize.shape == (3, 151, 200)


def _roundtrip(x, cb, **kw):
    data = symcodec.encode(x, cb, **kw)
    y = symcodec.decode(data)
    ref = symcodec.reconstruct(symcodec.quantize(x[..., :3] if x.ndim == 3 and x.shape[2] == 4 else x, cb), cb, shape=x.shape[:2] + ((3,) if x.ndim == 3 else ()))
    f = symcodec.read(data)
    syms = np.stack(decode_symbols(f))
    assert np.array_equal(syms, symcodec.quantize(x[..., :3] if x.ndim == 3 and x.shape[2] == 4 else x, cb).reshape(syms.shape))
    return y, ref


@pytest.mark.parametrize("name", [n for n in SHIPPED if "ycc420" not in n and registry.get(n).patch != 8])  # colour 1: test_colour.py
def test_roundtrip_every_shipped_codebook(name, cifar_images, photo):
    cb = registry.get(name)
    for x in (cifar_images[3], photo[:37, :51], photo[:33, :20, 0]):
        y, ref = _roundtrip(x, cb)
        assert y.dtype == np.uint8 and y.shape == x.shape
        assert np.array_equal(y, ref)


def test_roundtrip_embedded_codebook_decodes_without_registry(photo, monkeypatch, tmp_path):
    cb = registry.get("cifar10-2x2-k512")
    data = symcodec.encode(photo, cb, embed_codebook=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(registry, "shipped_dir", lambda: tmp_path / "none")
    y = symcodec.decode(data)
    assert np.array_equal(y, symcodec.purify(photo, cb))


def test_rgba_alpha_is_lossless(photo):
    rgba = np.dstack([photo[:40, :40], np.arange(1600, dtype=np.uint16).reshape(40, 40).astype(np.uint8)])
    y = symcodec.decode(symcodec.encode(rgba, "cifar10-2x2-k2048"))
    assert y.shape == (40, 40, 4)
    assert np.array_equal(y[..., 3], rgba[..., 3])
    assert np.array_equal(y[..., :3], symcodec.purify(rgba[..., :3]))


def test_float_purify_uses_exact_centroids(cifar_images):
    cb = registry.get("cifar10-2x2-k256")
    x = cifar_images[:4].astype(np.float32) / 255
    y = symcodec.purify(x, cb)
    assert y.dtype == np.float32 and y.shape == x.shape
    sym = symcodec.quantize(x, cb)
    assert set(np.unique(y[0, :2, :2, 0].ravel())) <= set(cb.centroids[sym[0, 0, 0, 0]].tolist())
    # uint8 and float inputs give the same symbols
    assert np.array_equal(sym, symcodec.quantize(cifar_images[:4], cb))


def test_codebook_id_tracks_content(tmp_path):
    cb = registry.get("cifar10-2x2-k128")
    same = Codebook(cb.centroids.copy(), 2, cb.counts.copy(), name="other name")
    assert same.id == cb.id  # names and provenance are not content
    c2 = cb.centroids.copy()
    c2[0, 0] = np.nextafter(c2[0, 0], np.float32(1))
    assert Codebook(c2, 2, cb.counts).id != cb.id
    n2 = cb.counts.copy()
    n2[5] += 1
    assert Codebook(cb.centroids, 2, n2).id != cb.id
    cb.save(tmp_path / "x.symcb")
    back = Codebook.load(tmp_path / "x.symcb")
    assert back.id == cb.id and back.name == cb.name and back.provenance == cb.provenance


def test_import_seed_faiss_codebook(tmp_path):
    from conftest import need_shared

    idx = need_shared("reference/symdnn/cifar10/kmeans_img_k2_s0_c2048_v1_softclamp.index")
    cb = registry.get(str(idx))
    assert cb.k == 2048 and cb.patch == 2
    import faiss

    ref = faiss.read_index(str(idx)).reconstruct_n(0, 2048)
    assert np.array_equal(cb.centroids, ref)
    x = np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    assert np.array_equal(symcodec.decode(symcodec.encode(x, cb, embed_codebook=True)), symcodec.purify(x, cb))


def test_large_image_is_processed_in_strips(monkeypatch, photo):
    from symcodec.codec import symbols

    cb = registry.get("cifar10-2x2-k256")
    whole = symcodec.quantize(photo, cb)
    monkeypatch.setattr(symbols, "STRIP_VALUES", 5000)  # forces many strips, odd remainder rows
    assert np.array_equal(symcodec.quantize(photo, cb), whole)


def test_training_is_reproducible(mnist_test_images):
    from symcodec.train.kmeans import train_codebook

    kw = dict(limit_images=300, max_patches=20000, niter=5, progress=False)
    a = train_codebook([mnist_test_images], 16, seed=1, **kw)
    b = train_codebook([mnist_test_images], 16, seed=1, **kw)
    c = train_codebook([mnist_test_images], 16, seed=2, **kw)
    assert a.id == b.id and a.id != c.id
    assert a.provenance["patches"] == 20000 and a.provenance["images"] == 300
    assert a.counts.sum() == 20000 + 16


def test_exif_from_a_jpeg_is_stored_without_app1_prefix(tmp_path):
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "symcodec-test"
    Image.new("RGB", (8, 8), (9, 99, 199)).save(tmp_path / "e.jpg", exif=exif)
    with Image.open(tmp_path / "e.jpg") as im:
        assert im.info["exif"].startswith(b"Exif\x00\x00")
        f = symcodec.read(symcodec.encode(im))
    assert f.exif == exif.tobytes()[6:] or f.exif == exif.tobytes()
    assert not f.exif.startswith(b"Exif")


def test_registry_sees_codebooks_installed_changed_and_removed(monkeypatch, tmp_path):
    """The registry's caches (by folder and file stat) pick up changes between calls."""
    from symcodec.errors import CodebookNotFoundError

    src = registry.get("cifar10-2x2-k256")
    folder = tmp_path / "cbs"
    folder.mkdir()
    monkeypatch.setenv(registry.ENV, str(folder))
    with pytest.raises(CodebookNotFoundError):
        registry.get("mine")
    one = Codebook(src.centroids, patch=2, counts=np.ones(src.k, np.uint32), name="mine")
    one.save(folder / "mine.symcb")
    assert registry.get("mine").id == one.id and registry.by_id(one.id).id == one.id
    two = Codebook(src.centroids[::-1].copy(), patch=2, counts=np.ones(src.k, np.uint32), name="mine")
    two.save(folder / "mine.symcb")  # replaced under the same name
    assert registry.load_file(folder / "mine.symcb").id == two.id and registry.by_id(two.id).id == two.id
    (folder / "mine.symcb").unlink()
    with pytest.raises(CodebookNotFoundError):
        registry.by_id(two.id)
    with pytest.raises(CodebookNotFoundError):
        registry.get("mine")
