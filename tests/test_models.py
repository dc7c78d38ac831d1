"""Classifiers: the seed's state_dicts load into our architectures; shipped weights load and are accurate."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from symcodec.classify import models
from tests.conftest import need_shared


def _nparams(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_seed_resnet20_state_dict_loads() -> None:
    p = need_shared("reference/symdnn/cifar10/cifar10_resnet_gradinit_sc_232.pt")
    sd = torch.load(p, map_location="cpu", weights_only=True)
    assert len(sd) == 126
    m = models.load_seed(p, "resnet20", "cifar-softclamp")
    assert _nparams(m.net) == 269_818
    auto = models.load(p)  # a bare seed state_dict: arch and preprocessing inferred from keys and file name
    assert (auto.arch, auto.preprocess_name) == ("resnet20", "cifar-softclamp")
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(auto(x), m(x))


def test_seed_lenet_loads() -> None:
    p = need_shared("reference/symdnn/mnist/mnist_sc_v0_best.pt")
    m = models.load(p)
    assert (m.arch, m.preprocess_name) == ("lenet", "mnist-resize-softclamp")
    assert _nparams(m.net) == 61_706
    assert m(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_unknown_weights_is_clear_error() -> None:
    from symcodec.errors import SymcodecError

    with pytest.raises(SymcodecError, match="not found"):
        models.load("no-such-model")


@pytest.mark.parametrize("arch,pre,shape", [("airnet", "cifar-normalize", (2, 3, 32, 32)),
                                            ("mnistnet", "mnist-normalize", (2, 1, 28, 28)),
                                            ("resnet20", "cifar-softclamp", (2, 3, 32, 32))])
def test_save_load_roundtrip(tmp_path, arch: str, pre: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    m = models.Classifier(arch, pre).eval()
    if arch == "airnet":
        m.net.init_whitening(torch.rand(16, 3, 32, 32))
    models.save(m, tmp_path / "m.pt", {"note": "test"})
    back = models.load(tmp_path / "m.pt")
    x = torch.rand(*shape)
    with torch.no_grad():
        assert torch.allclose(back(x), m(x))
    assert back.meta == {"note": "test"}


def test_shipped_weights_have_cards() -> None:
    names = sorted(p.stem for p in models.weights_dir().glob("*.pt"))
    assert {"cifar10-airnet3", "cifar10-airnet2", "cifar10-airnet2-sym", "cifar10-clean", "mnist-clean", "mnist-sym"} <= set(names)
    for n in names:
        card = models.weights_dir() / f"{n}.md"
        assert card.is_file(), f"weights/{n}.pt has no card"
        assert "Test accuracy" in card.read_text()
        assert models.load(n).meta["n_test"] == 10000


def test_shipped_cifar_accuracy(cifar_test_tar) -> None:
    from symcodec.bench.evaluate import load_dataset

    torch.set_num_threads(2)
    x, y, _ = load_dataset(cifar_test_tar, limit=500)  # evenly spaced: all 10 classes
    assert len(np.unique(y)) == 10
    for name, floor in (("cifar10-airnet3", 88.0), ("cifar10-airnet2", 87.0), ("cifar10-clean", 83.0)):  # cards: 90.62, 89.73, 85.22 on all 10k
        acc = (models.predict(models.load(name), x) == y).mean() * 100
        assert acc >= floor, (name, acc)


def test_shipped_mnist_accuracy(mnist_test_images) -> None:
    from symcodec.bench.evaluate import load_dataset

    x, y, _ = load_dataset(mnist_test_images, limit=500)
    acc = (models.predict(models.load("mnist-clean"), x) == y).mean() * 100
    assert acc >= 98.0, acc


def test_airnet_test_time_views() -> None:
    torch.manual_seed(0)
    net = models.AirNet(widths=(8, 8, 8)).eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        net.tta = 0
        plain = net(x)
        net.tta = 1
        flip = net(x)
        net.tta = 2
        six = net(x)
        assert torch.allclose(flip, 0.5 * (plain + net._logits(x.flip(-1))))
        p = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
        assert torch.allclose(six, 0.5 * flip + 0.25 * (net._mirror(p[..., :32, :32]) + net._mirror(p[..., 2:, 2:])))
        assert not torch.allclose(six, flip)
