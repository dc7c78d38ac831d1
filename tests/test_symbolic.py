"""Symbol-domain inference (issue 17): the front end against the decoder, the ids read back from files, training, the bench."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from symcodec.bench import atrate
from symcodec.bench import symbolic as bench
from symcodec.classify import models, symbolic
from symcodec.codebook import registry
from symcodec.codec.decoder import decode, decode_ids
from symcodec.codec.encoder import encode, encoder_for
from symcodec.data.sources import load_arrays
from symcodec.errors import FormatError, OptionError, SymcodecError
from symcodec.train.symbolic import train_symbolic
from tests.conftest import need_shared

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mnist_images():
    x, y, _ = load_arrays(need_shared("datasets/mnist/t10k-images.idx3-ubyte.gz"), limit=300)
    return x, y


@pytest.mark.parametrize(("cb_name", "pixel_model", "which"), [
    ("cifar10-ycc420-k512-ppm", "cifar10-airnet3-ft-symc", "cifar"),  # colour 1: Y, Cb, Cr tables, chroma 2x2
    ("mnist-2x2-k256", "mnist-clean", "mnist"),  # colour 0: one grey plane
])
def test_front_end_starts_at_the_decoders_pixels(cb_name, pixel_model, which, cifar_images, mnist_images):
    x = cifar_images if which == "cifar" else mnist_images[0][:64]
    cb = registry.get(cb_name)
    mode = "RGB" if x.shape[3] == 3 else "L"
    files = [encode(a if mode == "RGB" else a[:, :, 0], cb) for a in x]
    px = np.stack([decode(f) for f in files]).reshape(x.shape).astype(np.float32)
    ids = np.stack([decode_ids(f)[1] for f in files])
    model = symbolic.build(cb, pixel_model, x.shape[1], x.shape[2], mode)
    with torch.no_grad():
        front = model.front(torch.from_numpy(ids.astype(np.int64))).permute(0, 2, 3, 1).numpy() * 255
    # within rounding of the decoder's integer colour conversion (exact for grey)
    assert np.abs(front - px).max() <= (0.5 + 1e-3 if mode == "RGB" else 1e-3)
    agree = symbolic.predict(model, ids) == models.predict(model.backbone, px.astype(np.uint8))
    assert agree.mean() >= 0.98


def test_ids_read_back_are_the_encoders(cifar_images):
    cb = registry.get("cifar10-ycc420-k256-ppm")
    enc = encoder_for(cb, 32, 32, "RGB")
    want = symbolic.symbols(cifar_images[:20], cb)
    for compact in (False, True):
        files = enc.encode_batch(cifar_images[:20], compact=compact)
        got = np.stack([decode_ids(f)[1] for f in files])
        np.testing.assert_array_equal(got, want)
    hdr, ids = decode_ids(files[0])
    assert (hdr.width, hdr.height, ids.shape) == (32, 32, (384,))


def test_transform_files_and_bad_ids_are_refused(photo, cifar_images):
    with pytest.raises(FormatError, match="transform-mode"):
        decode_ids(encode(photo[:64, :64], "photo-dct", quality=50))
    model = symbolic.build("cifar10-ycc420-k256-ppm", "cifar10-airnet3-ft-symc", 32, 32)
    ids = symbolic.symbols(cifar_images[:2], "cifar10-ycc420-k256-ppm")
    with pytest.raises(SymcodecError, match="from 0 to 255"):
        symbolic.predict(model, np.where(ids == ids[0, 0], 256, ids))
    with pytest.raises(SymcodecError, match="384 symbols"):
        symbolic.predict(model, ids[:, :100])
    with pytest.raises(SymcodecError, match="not a symbol classifier"):
        symbolic.load(models.weights_dir() / "mnist-clean.pt")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two short MNIST fine-tunes (tables learned, tables frozen) from mnist-clean on mnist-2x2-k64 ids."""
    d = tmp_path_factory.mktemp("sym")
    kw = {"codebook": "mnist-2x2-k64", "init": "mnist-clean", "test": need_shared("datasets/mnist/t10k-images.idx3-ubyte.gz"),
          "epochs": 1, "limit": 1280, "threads": 1, "progress": False, "table_lr": 3e-3}
    train = need_shared("datasets/mnist/train-images.idx3-ubyte.gz")
    return {"learned": (d / "learned.pt", train_symbolic(train, d / "learned.pt", **kw)),
            "frozen": (d / "frozen.pt", train_symbolic(train, d / "frozen.pt", freeze_tables=True, **kw)),
            "tables": (d / "tables.pt", train_symbolic(train, d / "tables.pt", freeze_backbone=True, **kw))}


def test_training_moves_the_tables_only_when_asked(trained):
    cb = registry.get("mnist-2x2-k64")
    start = torch.from_numpy(cb.table_u8 / np.float32(255))
    learned, frozen = (symbolic.load(trained[k][0]) for k in ("learned", "frozen"))
    assert torch.equal(frozen.front.tables[0].weight, start)
    moved = (learned.front.tables[0].weight - start).abs()
    assert moved.max() > 1 / 255 and 0 <= learned.front.tables[0].weight.min() and learned.front.tables[0].weight.max() <= 1
    meta = trained["learned"][1]
    assert meta["codebook"] == "mnist-2x2-k64" and meta["n_test"] == 10000 and meta["test_accuracy"]["symbols"] > 90
    card = trained["learned"][0].with_suffix(".md").read_text()
    assert "learned (Adam" in card and "never trained on" in card


def test_tables_alone_leave_the_backbone_as_it_was(trained, tmp_path):
    start, tables = models.load("mnist-clean").state_dict(), symbolic.load(trained["tables"][0])
    after = tables.backbone.state_dict()
    assert start.keys() == after.keys() and all(torch.equal(start[k], after[k]) for k in start)  # batch-norm statistics too
    assert (tables.front.tables[0].weight - torch.from_numpy(registry.get("mnist-2x2-k64").table_u8 / np.float32(255))).abs().max() > 1 / 255
    assert "unchanged (only the tables trained)" in trained["tables"][0].with_suffix(".md").read_text()
    with pytest.raises(OptionError, match="nothing to train"):
        train_symbolic(need_shared("datasets/mnist/train-images.idx3-ubyte.gz"), tmp_path / "x.pt", codebook="mnist-2x2-k64",
                       init="mnist-clean", test=need_shared("datasets/mnist/t10k-images.idx3-ubyte.gz"), freeze_tables=True,
                       freeze_backbone=True, limit=200, threads=1, progress=False)


def test_save_load_keeps_predictions(trained, mnist_images):
    path = trained["learned"][0]
    model = symbolic.load(path)
    ids = symbolic.symbols(mnist_images[0][:100], "mnist-2x2-k64")
    a = symbolic.predict(model, ids)
    symbolic.save(model, path.with_name("again.pt"), model.meta)
    np.testing.assert_array_equal(symbolic.predict(symbolic.load(path.with_name("again.pt")), ids), a)


def test_bench_reads_files_both_ways(trained, tmp_path):
    test = need_shared("datasets/mnist/t10k-images.idx3-ubyte.gz")
    res = bench.run(str(test), [("mnist-2x2-k64", str(trained["frozen"][0]))], "mnist-clean", limit=400, threads=1, chunk=100)
    r = res["results"]
    assert r["codec"] == ["symc"] and r["setting"] == ["mnist-2x2-k64"] and 0.5 < r["bpp"][0] < 3
    # the frozen tables are the decoder's pixels: the two paths differ by the fine-tune's backbone only
    assert r["top1"][0] > 90 and r["top1@symbols"][0] > 90 and r["images_per_s@symbols"][0] > 0
    assert r["top1_lo@symbols"][0] <= r["top1@symbols"][0] <= r["top1_hi@symbols"][0]
    cur = atrate.curves(json.loads(json.dumps(res)), "symbols")["symc"]
    assert cur["correct"].shape == (1, 400) and cur["correct"].mean() * 100 == pytest.approx(r["top1@symbols"][0])
    with pytest.raises(SymcodecError, match="reads mnist-2x2-k64"):
        bench.run(str(test), [("mnist-2x2-k256", str(trained["frozen"][0]))], "mnist-clean", limit=50, threads=1)
    assert "symbols" in bench.summary(res)
