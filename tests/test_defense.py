"""The purification defense module: exact forward passes, straight-through and soft backward passes, randomness."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import symcodec
from symcodec.robust.defense import BitDepthPurifier, Defended, JPEGPurifier, VQPurifier, make_purifier
from symcodec.errors import SymcodecError

CB = "cifar10-2x2-k2048"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def imgs(cifar_images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(cifar_images[:16]).permute(0, 3, 1, 2).float() / 255


@pytest.fixture(scope="module")
def seed_model():
    from conftest import need_shared
    from symcodec.classify.models import load_seed

    p = need_shared("reference/symdnn/cifar10/cifar10_resnet_gradinit_sc_232.pt")
    return load_seed(p, "resnet20", "cifar-softclamp")


def test_deterministic_forward_is_the_codec_purifier(imgs: torch.Tensor) -> None:
    pur = VQPurifier(CB)
    got = pur(imgs).permute(0, 2, 3, 1).numpy()
    want = symcodec.purify(imgs.permute(0, 2, 3, 1).numpy(), CB)
    np.testing.assert_array_equal(got, want)


def test_odd_sizes_match_the_codec() -> None:
    x = torch.rand(2, 3, 7, 9)
    want = symcodec.purify(x.permute(0, 2, 3, 1).numpy(), CB)
    np.testing.assert_array_equal(VQPurifier(CB)(x).permute(0, 2, 3, 1).numpy(), want)


def test_straight_through_gradient_is_classifier_gradient_at_purified_point(imgs, seed_model) -> None:
    y = torch.arange(len(imgs)) % 10
    d = Defended(VQPurifier(CB), seed_model)
    x = imgs.clone().requires_grad_(True)
    g, = torch.autograd.grad(torch.nn.functional.cross_entropy(d(x), y), x)
    q = VQPurifier(CB).transform(imgs).requires_grad_(True)
    g2, = torch.autograd.grad(torch.nn.functional.cross_entropy(seed_model(q), y), q)
    assert g.abs().sum() > 0
    torch.testing.assert_close(g, g2)


def test_soft_backward_keeps_the_exact_forward_and_gives_a_different_gradient(imgs, seed_model) -> None:
    y = torch.arange(len(imgs)) % 10
    hard = Defended(VQPurifier(CB), seed_model)
    soft = Defended(VQPurifier(CB, backward="soft"), seed_model)
    x = imgs.clone().requires_grad_(True)
    torch.testing.assert_close(soft(x), hard(imgs), rtol=0, atol=0)
    g_soft, = torch.autograd.grad(torch.nn.functional.cross_entropy(soft(x), y), x)
    g_hard, = torch.autograd.grad(torch.nn.functional.cross_entropy(hard(x), y), x)
    assert g_soft.abs().sum() > 0 and not torch.allclose(g_soft, g_hard)
    # a cold surrogate converges to the hard quantiser (up to exact distance ties, which it averages)
    cold = VQPurifier(CB, backward="soft", temperature=1e-7)
    off = (cold.soft(imgs) - cold.transform(imgs)).abs() > 1e-5
    assert off.float().mean() < 0.005


def test_random_mode_picks_among_the_r_plus_1_nearest(imgs) -> None:
    r = 5
    pur = VQPurifier(CB, rlevel=r, seed=3)
    a, b = pur(imgs), pur(imgs)
    assert not torch.equal(a, b)  # fresh draws differ
    assert torch.equal(VQPurifier(CB, rlevel=r, seed=3)(imgs), a)  # same seed, same draw
    sym = pur.symbols(imgs).reshape(-1)
    from symcodec.robust.defense import _patches

    flat = _patches(imgs, 2)[0].reshape(-1, 4)
    d2 = ((flat[:, None, :] - pur.centroids[None]) ** 2).sum(-1)
    rank = (d2 < d2.gather(1, sym[:, None])).sum(1)
    assert int(rank.max()) <= r and int(rank.max()) > 0
    assert torch.equal(VQPurifier(CB, rlevel=0)(imgs), VQPurifier(CB)(imgs))


def test_frozen_randomness_is_deterministic(imgs) -> None:
    pur = VQPurifier(CB, rlevel=25, seed=1)
    pur.freeze(pur.draw_ranks((3, 16, 16)))
    a = pur(imgs)
    assert torch.equal(a, pur(imgs)) and torch.equal(a[:4], pur(imgs[:4]))
    pur.freeze(None)
    assert not torch.equal(a, pur(imgs))


def test_jpeg_and_bitdepth_baselines(cifar_images: np.ndarray) -> None:
    from PIL import Image

    x = torch.from_numpy(cifar_images[:2]).permute(0, 3, 1, 2).float() / 255
    buf = io.BytesIO()
    Image.fromarray(cifar_images[0]).save(buf, format="JPEG", quality=50)
    want = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    got = (JPEGPurifier(50)(x)[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    np.testing.assert_array_equal(got, want)
    b = BitDepthPurifier(3)(x)
    assert len(torch.unique(b)) <= 8 and (b - x).abs().max() <= 1 / 14 + 1e-6


def test_make_purifier_specs_and_errors() -> None:
    p = make_purifier(f"sym:{CB},random=25,backward=soft,T=0.01")
    assert isinstance(p, VQPurifier) and p.rlevel == 25 and p.backward_mode == "soft" and p.temperature == 0.01
    assert p.randomized and not make_purifier(f"sym:{CB}").randomized
    for bad in ("sym:", "sym:x,random", f"sym:{CB},colour=1", "blur:3", f"sym:{CB},backward=x"):
        with pytest.raises(SymcodecError):
            make_purifier(bad)


def test_torch_search_matches_the_codec_searcher(imgs) -> None:
    """The brute-force torch search (the GPU path) gives the codec's nearest centroid, ties included."""
    from symcodec.robust.defense import _patches

    codec, brute = VQPurifier(CB, search="codec"), VQPurifier(CB, search="torch")
    x = torch.cat([imgs, torch.rand(4, 3, 32, 32), torch.round(torch.rand(4, 3, 32, 32) * 4) / 4])
    assert torch.equal(codec.symbols(x), brute.symbols(x))
    flat = _patches(imgs[:4], 2)[0].reshape(-1, 4)
    a, b = codec.knn_ids(flat, 26), brute.knn_ids(flat, 26)
    assert torch.equal(a[:, 0], b[:, 0]) and torch.equal(a.sort(1).values, b.sort(1).values)
    ra, rb = VQPurifier(CB, rlevel=25, seed=4, search="codec"), VQPurifier(CB, rlevel=25, seed=4, search="torch")
    assert torch.equal(ra(imgs), rb(imgs))  # same CPU random stream, same candidate lists
    sa, sb = VQPurifier(CB, backward="soft", search="codec"), VQPurifier(CB, backward="soft", search="torch")
    torch.testing.assert_close(sa.soft(imgs), sb.soft(imgs))
    assert make_purifier(f"sym:{CB},search=torch").search == "torch"
    with pytest.raises(SymcodecError):
        VQPurifier(CB, search="gpu")
