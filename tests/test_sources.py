"""Dataset sources: labels from class folders, WebDataset .cls members and MNIST label files."""
from __future__ import annotations

import io
import tarfile

import numpy as np
from PIL import Image

from symcodec.data import sources


def test_mnist_images_come_with_labels(mnist_test_images):
    x, y, classes = sources.load_arrays(mnist_test_images, limit=10)
    assert x.shape == (10, 28, 28, 1) and x.dtype == np.uint8
    assert y.tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the first MNIST test labels
    assert classes == [str(i) for i in range(10)]


def test_cifar_tar_labels_from_class_folders(cifar_test_tar):
    keys = [(s.key, s.label) for _, s in zip(range(3), sources.iter_samples(cifar_test_tar))]
    assert keys[0] == ("test/airplane/0000.jpg", "airplane")


def test_webdataset_cls_members_and_folders(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(buf, "PNG")
    with tarfile.open(tmp_path / "wds.tar", "w") as tf:
        for key, lab in (("a", "3"), ("b", "7")):
            for name, data in ((f"{key}.png", buf.getvalue()), (f"{key}.cls", lab.encode())):
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    got = [(s.key, s.label) for s in sources.iter_samples(tmp_path / "wds.tar")]
    assert got == [("a.png", "3"), ("b.png", "7")]
    (tmp_path / "f" / "cat").mkdir(parents=True)
    Image.new("L", (3, 5)).save(tmp_path / "f" / "cat" / "x.png")
    s = next(sources.iter_samples(tmp_path / "f"))
    assert (s.key, s.label, s.array().shape) == ("cat/x.png", "cat", (5, 3))


def test_count_samples_from_headers_only(cifar_test_tar, mnist_test_images, tmp_path):
    """The convert progress bar's total: what iter_samples yields, without decoding; None for compressed tars."""
    assert sources.count_samples(cifar_test_tar) == 10000
    assert sources.count_samples(mnist_test_images) == 10000
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "PNG")
    (tmp_path / "f" / "cat").mkdir(parents=True)
    for name in ("f/a.png", "f/cat/b.PNG", "f/notes.txt"):
        (tmp_path / name).write_bytes(buf.getvalue())
    assert sources.count_samples(tmp_path / "f") == len(list(sources.iter_samples(tmp_path / "f"))) == 2
    with tarfile.open(tmp_path / "w.tar.gz", "w:gz") as tf:
        tf.add(tmp_path / "f" / "a.png", "a.png")
    assert sources.count_samples(tmp_path / "w.tar.gz") is None
    (tmp_path / "bad.tar").write_bytes(b"x" * 1024)
    assert sources.count_samples(tmp_path / "bad.tar") is None


def test_folder_labels_from_cls_sidecars(tmp_path):
    """A folder `convert` wrote from an idx or WebDataset source keeps its labels in NAME.cls files."""
    buf = io.BytesIO()
    Image.new("L", (4, 4)).save(buf, "PNG")
    (tmp_path / "t10k").mkdir()
    for i, lab in enumerate(["7", "2", "12"]):
        (tmp_path / "t10k" / f"{i:05d}.png").write_bytes(buf.getvalue())
        (tmp_path / "t10k" / f"{i:05d}.cls").write_text(lab + "\n")
    (tmp_path / "t10k" / "00009.png").write_bytes(buf.getvalue())  # no sidecar: the folder name
    assert [s.label for s in sources.iter_samples(tmp_path)] == ["7", "2", "12", "t10k"]
    (tmp_path / "t10k" / "00009.png").unlink()
    x, y, classes = sources.load_arrays(tmp_path)
    assert y.tolist() == [7, 2, 12] and classes == [str(c) for c in range(13)]  # numbers are class indices, not sorted strings
