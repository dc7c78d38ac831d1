"""Dataset sources: folders of images, tar archives (class folders or WebDataset `.cls`), MNIST idx files."""
from __future__ import annotations

import gzip
import io
import os
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

import numpy as np
from PIL import Image

from ..codec.decoder import decode
from ..errors import DatasetError
from ..format.sym import is_sym
from . import tario

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".sym")


@dataclass(frozen=True)
class Ref:
    """Where a sample's bytes lie: a file, an offset and a length (read later, by whoever converts it)."""

    path: str
    offset: int
    size: int

    def read(self) -> bytes:
        """The bytes, read with one pread (DatasetError if the file changed under us)."""
        try:
            with open(self.path, "rb") as f:
                data = os.pread(f.fileno(), self.size, self.offset)
        except OSError as exc:
            msg = f"cannot read {self.path}: {exc}"
            raise DatasetError(msg) from None
        if len(data) != self.size:
            msg = f"{self.path} is shorter than when it was listed"
            raise DatasetError(msg)
        return data


@dataclass
class Sample:
    """One image of a dataset: a stable key (relative path), a label, and encoded bytes, pixels, or a `Ref` to the bytes."""

    key: str
    label: str | int | None
    data: bytes | None = None
    pixels: np.ndarray | None = None
    ref: Ref | None = None

    def bytes(self) -> bytes | None:
        """The encoded bytes (read through the `Ref` if that is all there is)."""
        return self.data if self.data is not None or self.ref is None else self.ref.read()

    def array(self) -> np.ndarray:
        """Decoded pixels, (H,W) for grey or (H,W,C)."""
        if self.pixels is not None:
            return self.pixels
        data = self.bytes() or b""
        if is_sym(data):
            return decode(data)
        with Image.open(io.BytesIO(data)) as im:
            if im.mode not in ("L", "RGB", "RGBA", "LA"):
                im = im.convert("RGB")
            return np.asarray(im)


def kind(src: str | os.PathLike[str]) -> str:
    """'folder', 'tar' or 'mnist' for a source path."""
    p = Path(src)
    name = p.name
    if p.is_dir():
        return "folder"
    if "idx3-ubyte" in name or "idx1-ubyte" in name:
        return "mnist"
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "tar"
    if not p.exists():
        msg = f"dataset source {src} does not exist"
        raise DatasetError(msg)
    msg = f"cannot tell what {src} is: expected a folder, a .tar archive or an MNIST idx file"
    raise DatasetError(msg)


def iter_samples(src: str | os.PathLike[str]) -> Iterator[Sample]:
    """Stream the samples of a source in a stable order, one at a time (memory stays flat)."""
    k = kind(src)
    if k == "folder":
        return _iter_folder(Path(src))
    if k == "tar":
        return _iter_tar(Path(src))
    return _iter_mnist(Path(src))


def count_samples(src: str | os.PathLike[str]) -> int | None:
    """How many images a source holds, from names and headers only (None where that would mean decompressing it)."""
    try:
        k = kind(src)
        p = Path(src)
        if k == "folder":
            return sum(fn.lower().endswith(IMAGE_EXT) for _, _, fns in os.walk(p) for fn in fns)
        if k == "tar":
            if not tario.is_plain_tar(p):
                return None
            with open(p, "rb") as fp:
                return sum(os.path.splitext(m.name)[1].lower().endswith(IMAGE_EXT) for m, _ in tario.iter_members(fp, str(p), False))
        with _open_maybe_gz(p) as f:
            head = f.read(8)
            return struct.unpack(">I", head[4:8])[0] if len(head) == 8 and head[:3] == b"\0\0\x08" and head[3] >= 1 else None
    except (DatasetError, OSError, EOFError, gzip.BadGzipFile):
        return None  # the conversion itself reports what is wrong


def iter_refs(src: str | os.PathLike[str]) -> Iterator[Sample]:
    """`iter_samples` without reading the images: the same keys, labels and order, each with a `Ref` to its bytes.

    For plain tars and folders (a converter's workers then read the bytes themselves); other sources (MNIST idx,
    compressed tars) come as `iter_samples` gives them.
    """
    p = Path(src)
    k = kind(p)
    if k == "tar" and tario.is_plain_tar(p):

        def members() -> Iterator[tuple[str, bytes | Ref]]:
            with open(p, "rb") as fp:
                for m, _ in tario.iter_members(fp, str(p), with_data=False):
                    if m.name.endswith(".cls"):
                        yield m.name, os.pread(fp.fileno(), min(m.size, 256), m.offset)
                    else:
                        yield m.name, Ref(str(p), m.offset, m.size)

        return _pair_cls(members())
    if k == "folder":
        return _iter_folder(p, lazy=True)
    return iter_samples(p)


def _label_from_path(rel: PurePosixPath | str) -> str | None:
    """The parent folder's name, as PurePosixPath(rel).parent.name gives it (None at the top), without building one."""
    parts = [x for x in str(rel).split("/") if x and x != "."]  # PurePosixPath drops empty and '.' parts, keeps '..'
    return parts[-2] if len(parts) >= 2 else None


def _iter_folder(root: Path, lazy: bool = False) -> Iterator[Sample]:
    """Images in sorted order; the label is a sibling `NAME.cls` file's text (as `convert` writes), else the folder name."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        names = set(filenames)
        for fn in sorted(filenames):
            if fn.lower().endswith(IMAGE_EXT):
                full = Path(dirpath) / fn
                rel = PurePosixPath(full.relative_to(root).as_posix())
                cls = os.path.splitext(fn)[0] + ".cls"
                label = (Path(dirpath) / cls).read_bytes()[:256].decode("utf-8", "replace").strip() if cls in names else None
                label = label if label is not None else _label_from_path(rel)
                if lazy:
                    yield Sample(str(rel), label, ref=Ref(str(full), 0, full.stat().st_size))
                else:
                    yield Sample(str(rel), label, full.read_bytes())


def _iter_tar(path: Path) -> Iterator[Sample]:
    """Tar members paired into samples: a fast reader for plain tars, tarfile for compressed ones."""
    if tario.is_plain_tar(path):

        def plain() -> Iterator[tuple[str, bytes]]:
            with open(path, "rb") as fp:
                for m, data in tario.iter_members(fp, str(path)):
                    yield m.name, data or b""

        return _pair_cls(plain())
    return _pair_cls(_tarfile_members(path))


def _tarfile_members(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        tf = tarfile.open(path, mode="r|*")
    except (tarfile.TarError, OSError) as exc:
        msg = f"cannot read tar archive {path}: {exc}"
        raise DatasetError(msg) from None
    with tf:
        try:
            for m in tf:
                f = tf.extractfile(m) if m.isfile() else None
                if f is not None:
                    yield m.name, f.read()
        except (tarfile.TarError, OSError, EOFError) as exc:
            msg = f"tar archive {path} is corrupt or truncated: {exc}"
            raise DatasetError(msg) from None


def _pair_cls(members: Iterator[tuple[str, bytes | Ref]]) -> Iterator[Sample]:
    """Image members as samples (bytes, or a `Ref` to them); labels from the parent folder or a WebDataset `key.cls` member."""
    pending: dict[str, Sample] = {}
    cls: dict[str, str] = {}
    for name, data in members:
        stem, ext = os.path.splitext(name)
        if ext == ".cls":
            cls[stem] = bytes(data).decode("utf-8", "replace").strip()  # type: ignore[arg-type]
            if stem in pending:
                s = pending.pop(stem)
                s.label = cls.pop(stem)
                yield s
            continue
        if not ext.lower().endswith(IMAGE_EXT):
            continue
        s = Sample(name, _label_from_path(name), ref=data) if isinstance(data, Ref) else Sample(name, _label_from_path(name), data)
        if stem in cls:
            s.label = cls.pop(stem)
            yield s
        elif s.label is None:
            # WebDataset style: the .cls member may follow; flush older keys to keep memory flat
            for old in [k for k in pending if k != stem]:
                yield pending.pop(old)
            pending[stem] = s
        else:
            yield s
    yield from pending.values()


def _open_maybe_gz(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a uint8 array."""
    path = Path(path)
    try:
        with _open_maybe_gz(path) as f:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] != 8:
                msg = f"{path} is not a uint8 IDX file"
                raise DatasetError(msg)
            nd = head[3]
            dims = struct.unpack(f">{nd}I", f.read(4 * nd))
            n = int(np.prod(dims))
            raw = f.read(n)
    except (OSError, EOFError, gzip.BadGzipFile, struct.error) as exc:
        msg = f"cannot read IDX file {path}: {exc}"
        raise DatasetError(msg) from None
    if len(raw) != n:
        msg = f"IDX file {path} is truncated"
        raise DatasetError(msg)
    return np.frombuffer(raw, np.uint8).reshape(dims)


def mnist_labels_path(images: Path) -> Path | None:
    """The labels file beside an MNIST images file, if present."""
    name = images.name
    for a, b in (("images-idx3", "labels-idx1"), ("images.idx3", "labels.idx1")):
        cand = images.with_name(name.replace(a, b))
        if cand != images and cand.exists():
            return cand
    return None


def _iter_mnist(path: Path) -> Iterator[Sample]:
    imgs = read_idx(path)
    if imgs.ndim != 3:
        msg = f"{path} is not an idx3 image file"
        raise DatasetError(msg)
    lp = mnist_labels_path(path)
    labels = read_idx(lp) if lp else None
    stem = path.name.split("-")[0]
    for i in range(len(imgs)):
        lab = int(labels[i]) if labels is not None else None
        yield Sample(f"{stem}/{i:05d}", lab, pixels=imgs[i])


def load_arrays(src: str | os.PathLike[str], limit: int | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode a dataset of equal-sized images: (N,H,W,C) uint8, int64 labels, class names."""
    imgs, labs = [], []
    for i, s in enumerate(iter_samples(src)):
        if limit is not None and i >= limit:
            break
        a = s.array()
        imgs.append(a if a.ndim == 3 else a[:, :, None])
        labs.append(s.label)
    if not imgs:
        msg = f"no images in {src}"
        raise DatasetError(msg)
    if any(lab is None for lab in labs):
        msg = f"{src}: some images have no label (class folders, WebDataset .cls members or an idx labels file give them)"
        raise DatasetError(msg)
    if all(isinstance(lab, (int, np.integer)) or str(lab).isdigit() for lab in labs):
        y = np.asarray([int(lab) for lab in labs], np.int64)  # numbers are class indices
        classes = [str(c) for c in range(int(y.max()) + 1)]
    else:
        classes = sorted({str(lab) for lab in labs})
        idx = {c: i for i, c in enumerate(classes)}
        y = np.asarray([idx[str(lab)] for lab in labs], np.int64)
    if len({a.shape for a in imgs}) != 1:
        msg = f"{src}: images differ in size ({', '.join(sorted({'x'.join(map(str, a.shape[:2])) for a in imgs})[:4])}); resize them first"
        raise DatasetError(msg)
    return np.stack(imgs), y, classes
