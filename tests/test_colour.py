"""Colour 1 (ycc420): integer BT.601 conversion, 2x2 chroma, and end-to-end .sym coding with a small codebook."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import symcodec
from reference import planes_to_rgb_numpy, rgb_to_planes_numpy, tile_numpy
from symcodec.codebook import registry
from symcodec.errors import FormatError, UnsupportedModeError
from symcodec.format import sym as symfmt
from symcodec.vq import patches
from symcodec.vq.colour import chroma_size, planes_to_rgb, rgb_to_planes, ycc_pixels


def test_matches_pillow_luma_and_chroma(cifar_images: np.ndarray) -> None:
    a = cifar_images[:8].reshape(-1, 32, 3)
    y, cb, cr = rgb_to_planes(a)
    ref = np.asarray(Image.fromarray(a).convert("YCbCr")).astype(int)
    assert np.abs(y.astype(int) - ref[..., 0]).max() <= 1
    sub = ref[..., 1:].reshape(128, 2, 16, 2, 2).mean((1, 3))
    assert np.abs(cb - sub[..., 0]).max() <= 1.5 and np.abs(cr - sub[..., 1]).max() <= 1.5


def test_known_values_and_round_trip(cifar_images: np.ndarray) -> None:
    grey = np.full((3, 5, 3), 100, np.uint8)
    y, cb, cr = rgb_to_planes(grey)
    assert y.shape == (3, 5) and cb.shape == cr.shape == chroma_size(3, 5) == (2, 3)
    assert (y == 100).all() and (cb == 128).all() and (cr == 128).all()
    assert (planes_to_rgb(y, cb, cr) == 100).all()
    x = cifar_images[:16]
    back = np.stack([planes_to_rgb(*rgb_to_planes(im)) for im in x])
    mse = np.mean((back.astype(float) - x) ** 2)
    assert 10 * np.log10(255**2 / mse) > 28  # only chroma subsampling is lost


@pytest.mark.parametrize("h,w", [(1, 1), (3, 5), (7, 2), (32, 32), (33, 31), (40, 257)])
def test_kernels_match_numpy_twins(h: int, w: int) -> None:
    rng = np.random.default_rng(h * 1000 + w)
    a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    a[0, 0], a[-1, -1] = (255, 0, 255), (0, 255, 0)  # saturating chroma
    for got, ref in zip(rgb_to_planes(a), rgb_to_planes_numpy(a)):
        assert got.dtype == np.uint8 and np.array_equal(got, ref)
    y = rng.integers(0, 256, (h, w), dtype=np.uint8)
    cb, cr = (rng.integers(0, 256, chroma_size(h, w), dtype=np.uint8) for _ in range(2))
    assert np.array_equal(planes_to_rgb(y, cb, cr), planes_to_rgb_numpy(y, cb, cr))


@pytest.fixture(scope="module")
def ycc(cifar_test_tar):
    from symcodec.train.kmeans import train_ycc420

    return train_ycc420([cifar_test_tar], 64, max_patches=20000, niter=4, limit_images=96, name="t-ycc", progress=False)


def test_ycc_weighted_kmeans(cifar_test_tar, ycc) -> None:
    """`weigh` reaches k-means in the pooled patch order: weight on the Cb and Cr patches fits them better than Y's."""
    from symcodec.train.kmeans import train_ycc420

    def chroma_only(planes: list[np.ndarray]) -> np.ndarray:
        n = [p.shape[0] * (p.shape[1] // 2) * (p.shape[2] // 2) for p in planes]
        return np.concatenate([np.full(n[0], 1e-6), np.ones(n[1] + n[2])])

    cb = train_ycc420([cifar_test_tar], 64, max_patches=20000, niter=4, limit_images=96, progress=False, weigh=chroma_only)
    from symcodec.data.sources import load_arrays
    from symcodec.vq.patches import extract

    x = load_arrays(cifar_test_tar, limit=96)[0]
    planes = [np.stack(p) for p in zip(*(rgb_to_planes(a) for a in x))]

    def mse(book, pl: np.ndarray) -> float:
        v = extract(pl[..., None], 2).reshape(-1, 4)
        return float(((v - book.centroids[book.searcher.nearest(v)]) ** 2).mean())

    chroma, luma = np.concatenate(planes[1:]), planes[0]
    assert mse(cb, chroma) < 0.9 * mse(ycc, chroma) and mse(cb, luma) > 3 * mse(ycc, luma)


def test_ycc_codebook_file(ycc) -> None:
    raw = ycc.to_bytes()
    assert raw[8] == 3 and ycc.colour == 1 and ycc.context.model_id == 3  # trained with entropy model 3
    back = symcodec.Codebook.from_bytes(raw)
    assert back.id == ycc.id and back.colour == 1
    with pytest.raises(FormatError):
        symcodec.Codebook.from_bytes(raw[:8] + b"\x01" + raw[9:])


def test_ycc_encode_decode(ycc, photo: np.ndarray) -> None:
    for img in (photo[:33, :45], photo[:1, :1], photo[:32, :32]):
        data = symcodec.encode(img, ycc)
        f = symfmt.read(data)
        assert data[8] == 3 and f.header.colour == 1 and f.header.model_id == 3
        out = symcodec.decode(data, ycc)
        # expected: each plane reconstructed from its nearest centroids, then converted back
        pl = rgb_to_planes(img)
        rec = [symcodec.reconstruct(symcodec.quantize(p, ycc), ycc, shape=p.shape) for p in pl]
        assert np.array_equal(out, planes_to_rgb(*rec))
        assert out.shape == img.shape
    with pytest.raises(UnsupportedModeError):
        symcodec.encode(photo[:8, :8, 0], ycc)
    # colour 1 is not valid in a version-1 container
    with pytest.raises(FormatError):
        symfmt.read(data[:8] + b"\x01" + data[9:])
    assert patches.grid(33, 45, 2) == (17, 23)


@pytest.mark.parametrize("name", ["cifar10-ycc420-k512", "cifar10-ycc420-k1024", "cifar10-ycc420-k512-ppm"])
def test_shipped_ycc_codebooks(name, cifar_images, photo) -> None:
    cb = registry.get(name)
    assert cb.colour == 1 and cb.context is not None
    for img in (cifar_images[3], photo[:37, :51]):
        out = symcodec.decode(symcodec.encode(img, cb))
        rec = [symcodec.reconstruct(symcodec.quantize(p, cb), cb, shape=p.shape) for p in rgb_to_planes(img)]
        assert np.array_equal(out, planes_to_rgb(*rec))


def test_purify_matches_round_trip(ycc, cifar_images) -> None:
    x = cifar_images[:3]
    p = symcodec.purify(x, ycc)
    assert p.shape == x.shape and p.dtype == np.uint8
    assert np.array_equal(p[1], symcodec.decode(symcodec.encode(x[1], ycc), ycc))
    pf = symcodec.purify(x[0].astype(np.float32) / 255, ycc)
    assert pf.dtype == np.float32 and np.array_equal(np.rint(pf * 255).astype(np.uint8), p[0])


def test_pillow_opens_ycc_files(ycc, cifar_images, tmp_path) -> None:
    path = tmp_path / "x.sym"
    path.write_bytes(symcodec.encode(cifar_images[5], ycc, embed_codebook=True))
    symcodec.register()
    with Image.open(path) as im:
        assert np.array_equal(np.asarray(im), symcodec.decode(path))
    with Image.open(path) as im:
        im.draft("RGB", (16, 16))
        assert im.size == (16, 16) and np.asarray(im).shape == (16, 16, 3)


@pytest.mark.parametrize("h,w,p", [(1, 1, 2), (3, 5, 2), (33, 31, 2), (40, 57, 4)])
def test_ycc_pixels_kernel_matches_numpy(h: int, w: int, p: int) -> None:
    """The fused gather + colour kernel equals tiling each plane and converting with the numpy twins."""
    rng = np.random.default_rng(h * 100 + w)
    table = rng.integers(0, 256, (50, p * p), dtype=np.uint8)
    sizes = [(h, w)] + [chroma_size(h, w)] * 2
    syms = [rng.integers(0, 50, patches.grid(hh, ww, p), dtype=np.int32) for hh, ww in sizes]
    ref = [tile_numpy(s[None, None], table, p, hh, ww)[0, :, :, 0] for s, (hh, ww) in zip(syms, sizes)]
    got = ycc_pixels(np.concatenate([s.ravel() for s in syms]), table, p, h, w)
    assert np.array_equal(got, planes_to_rgb_numpy(*ref))
