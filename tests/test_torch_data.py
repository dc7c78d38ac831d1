"""symcodec.data.torch: datasets over .sym tars/folders and source formats, DataLoader workers, the Purify transform."""
from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
import torch

import symcodec
from symcodec.data import convert as cv
from symcodec.data.sources import iter_samples, read_idx
from symcodec.data.torch import ImageDataset, Purify, SymDataset
from symcodec.errors import DatasetError

CB = "cifar10-2x2-k2048"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="module")
def sym_tar(tmp_path_factory, cifar_test_tar):
    """120 CIFAR-10 test images, 12 per class (every 83rd of the first 1000 per class), converted to a .sym tar."""
    d = tmp_path_factory.mktemp("td")
    picks = [s for i, s in enumerate(iter_samples(cifar_test_tar)) if i % 1000 < 12]
    import tarfile

    src = d / "src.tar"
    with tarfile.open(src, "w") as tf:
        for s in picks:
            ti = tarfile.TarInfo(s.key)
            ti.size = len(s.data)
            import io

            tf.addfile(ti, io.BytesIO(s.data))
    cv.convert(src, d / "sym.tar", codebook=CB, workers=0, progress=False)
    return d / "sym.tar", picks


def test_sym_tar_dataset(sym_tar):
    path, picks = sym_tar
    ds = SymDataset(path)
    assert len(ds) == 120 and ds.classes == CLASSES
    assert [CLASSES[t] for t in ds.targets] == [s.label for s in picks]
    x, y = ds[13]
    assert x.dtype == torch.float32 and x.shape == (3, 32, 32) and 0 <= x.min() and x.max() <= 1
    ref = symcodec.purify(picks[13].array(), CB)
    assert torch.equal(x, torch.from_numpy(ref).permute(2, 0, 1).float() / 255) and CLASSES[y] == picks[13].label
    xu, _ = SymDataset(path, dtype=torch.uint8)[-1]
    assert xu.dtype == torch.uint8 and torch.equal(xu, torch.from_numpy(symcodec.purify(picks[-1].array(), CB)).permute(2, 0, 1))
    with pytest.raises(IndexError):
        ds[120]


def test_dataloader_workers_share_the_index(sym_tar):
    ds = SymDataset(sym_tar[0], transform=torch.neg)
    ds[0]  # opens a descriptor in this process; workers must open their own
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._fd is None
    loader = torch.utils.data.DataLoader(ds, batch_size=32, num_workers=2)
    xs, ys = zip(*loader)
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.shape == (120, 3, 32, 32) and torch.equal(y, torch.from_numpy(ds.targets))
    assert torch.equal(x[7], ds[7][0])


def test_folder_with_cls_files_and_sources(tmp_path, sym_tar, cifar_test_tar, mnist_test_images):
    cv.convert(sym_tar[0], tmp_path / "png", workers=0, progress=False)  # class folders of PNGs
    img = ImageDataset(tmp_path / "png")
    assert len(img) == 120 and img.classes == CLASSES
    assert torch.equal(img[5][0], SymDataset(sym_tar[0])[5][0])  # PNG of the reconstruction = the .sym decoded
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        (flat / f"{i}.sym").write_bytes(symcodec.encode(sym_tar[1][i].array()))
        (flat / f"{i}.cls").write_text(str(2 - i))
    ds = SymDataset(flat)
    assert ds.classes == ["0", "1", "2"] and list(ds.targets) == [2, 1, 0]
    jpg = ImageDataset(cifar_test_tar)
    assert len(jpg) == 10000 and jpg.classes == CLASSES and jpg.targets[4321] == 4
    first = next(itertools.islice(iter_samples(cifar_test_tar), 4321, None))
    assert torch.equal(jpg[4321][0], torch.from_numpy(first.array().copy()).permute(2, 0, 1).float() / 255)
    mn = ImageDataset(mnist_test_images, dtype=torch.uint8)
    raw = read_idx(mnist_test_images)
    assert len(mn) == 10000 and mn[9][0].shape == (1, 28, 28) and torch.equal(mn[9][0][0], torch.from_numpy(raw[9].copy()))
    assert mn.classes == [str(i) for i in range(10)] and mn[0][1] == 7  # first MNIST test digit is a 7
    with pytest.raises(DatasetError):
        SymDataset(tmp_path / "png")  # no .sym files there


def test_purify_transform(cifar_images):
    p = Purify(CB)
    x = torch.from_numpy(cifar_images[:4]).permute(0, 3, 1, 2).contiguous()  # NCHW uint8
    ref = torch.from_numpy(symcodec.purify(cifar_images[:4], CB)).permute(0, 3, 1, 2)
    assert torch.equal(p(x), ref)
    xf = x.double() / 255
    out = p(xf[1])  # single CHW float64
    assert out.dtype == torch.float64 and out.shape == (3, 32, 32)
    cb = symcodec.get_codebook(CB)
    expect = symcodec.reconstruct(symcodec.quantize(cifar_images[1], cb), cb, shape=(32, 32, 3), dtype=np.float32)
    assert torch.allclose(out, torch.from_numpy(expect).permute(2, 0, 1).double())
    assert torch.equal(pickle.loads(pickle.dumps(p))(x), ref)
    grey = torch.from_numpy(cifar_images[0, :, :, 0]).unsqueeze(0)
    assert p(grey).shape == (1, 32, 32)
    with pytest.raises(ValueError):
        p(torch.zeros(32, 32))
