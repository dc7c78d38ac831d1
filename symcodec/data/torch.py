"""PyTorch data utilities (no torchvision): datasets over `.sym` (and source) images, and a `Purify` transform.

`SymDataset(root)` reads a folder of `.sym` files or an uncompressed tar of them (as written by
`symcodec convert`), decoding on the fly. Labels come from `.cls` files/members (WebDataset style) or
else the parent folder name; `classes` lists the names in sorted order (CIFAR-10's label order). A tar
is indexed once (member offsets); items are read with `os.pread`, so DataLoader workers can share the
dataset. `ImageDataset` does the same for JPEG/PNG/... folders and tars, and MNIST idx files.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from ..codebook import registry
from ..codebook.codebook import Codebook
from ..codec.decoder import decode
from ..codec.symbols import purify
from ..errors import DatasetError
from ..format.sym import is_sym
from . import tario
from .sources import IMAGE_EXT, kind, mnist_labels_path, read_idx

__all__ = ["ImageDataset", "Purify", "SymDataset", "to_tensor"]


def to_tensor(a: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(H,W) or (H,W,C) uint8 -> (C,H,W) tensor: float in [0,1], or uint8 with dtype=torch.uint8."""
    a = a[:, :, None] if a.ndim == 2 else a
    t = torch.from_numpy(np.array(a.transpose(2, 0, 1), order="C"))
    return t if dtype == torch.uint8 else t.to(dtype).div_(255)


def _decode_bytes(data: bytes, cb: Codebook | str | None) -> np.ndarray:
    if is_sym(data):
        return decode(data, cb)
    with Image.open(io.BytesIO(data)) as im:
        if im.mode not in ("L", "RGB", "RGBA", "LA"):
            im = im.convert("RGB")
        return np.asarray(im)


class ImageDataset(torch.utils.data.Dataset):
    """Images from a folder tree, an uncompressed tar (class folders or `.cls` members), or an MNIST idx file.

    Items are `(image, label)`: image a (C,H,W) tensor (float in [0,1] by default, or uint8), label an
    int index into `classes` (or -1 when the source has no labels).
    """

    extensions: tuple[str, ...] = IMAGE_EXT

    def __init__(
        self,
        root: str | os.PathLike[str],
        transform: Callable[[torch.Tensor], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        dtype: torch.dtype = torch.float32,
        codebook: Codebook | str | None = None,
    ) -> None:
        self.root = str(root)
        self.transform, self.target_transform, self.dtype = transform, target_transform, dtype
        self.codebook = codebook
        self._fd: int | None = None
        self._pid = -1
        self._mnist: np.ndarray | None = None
        k = kind(root)
        names: list[str] = []
        raw_labels: list[str | None] = []
        self._offsets = self._sizes = None
        if k == "mnist":
            self._mnist = read_idx(root)
            lp = mnist_labels_path(Path(root))
            raw = read_idx(lp) if lp else None
            names = [f"{i:05d}" for i in range(len(self._mnist))]
            raw_labels = [str(int(v)) for v in raw] if raw is not None else [None] * len(names)
        elif k == "folder":
            base = Path(root)
            for p in sorted(base.rglob("*")):
                if p.is_file() and p.name.lower().endswith(self.extensions) and not p.name.startswith("."):
                    names.append(p.relative_to(base).as_posix())
            raw_labels = [self._label_file(base, n) for n in names]
        else:
            if not tario.is_plain_tar(root):
                msg = f"{root}: only uncompressed .tar archives can be indexed for random access"
                raise DatasetError(msg)
            offs, sizes, cls = [], [], {}
            with open(root, "rb") as fp:
                for m, data in tario.iter_members(fp, self.root, with_data=False):
                    stem, ext = os.path.splitext(m.name)
                    if ext == ".cls":
                        cls[stem] = (m.offset, m.size)
                    elif m.name.lower().endswith(self.extensions):
                        names.append(m.name)
                        offs.append(m.offset)
                        sizes.append(m.size)
            self._offsets, self._sizes = np.asarray(offs, np.int64), np.asarray(sizes, np.int64)
            with open(root, "rb") as fp:
                for n in names:
                    c = cls.get(os.path.splitext(n)[0])
                    raw_labels.append(os.pread(fp.fileno(), c[1], c[0]).decode().strip() if c else _parent(n))
        if not names:
            msg = f"no images with extensions {self.extensions} in {root}"
            raise DatasetError(msg)
        self.names = names
        known = sorted({lab for lab in raw_labels if lab is not None}, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))
        self.classes: list[str] = known
        idx = {c: i for i, c in enumerate(known)}
        self.targets = np.asarray([idx[lab] if lab is not None else -1 for lab in raw_labels], np.int64)

    @staticmethod
    def _label_file(base: Path, name: str) -> str | None:
        cls = (base / name).with_suffix(".cls")
        if cls.exists():
            return cls.read_text().strip()
        return _parent(name)

    def __len__(self) -> int:
        return len(self.names)

    def _bytes(self, i: int) -> bytes:
        if self._offsets is None:
            return (Path(self.root) / self.names[i]).read_bytes()
        if self._fd is None or self._pid != os.getpid():  # one descriptor per (worker) process
            self._fd, self._pid = os.open(self.root, os.O_RDONLY), os.getpid()
        return os.pread(self._fd, int(self._sizes[i]), int(self._offsets[i]))

    def array(self, i: int) -> np.ndarray:
        """Decoded pixels of item i, (H,W) or (H,W,C) uint8."""
        if self._mnist is not None:
            return self._mnist[i]
        return _decode_bytes(self._bytes(i), self.codebook)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        x: Any = to_tensor(self.array(i), self.dtype)
        y: Any = int(self.targets[i])
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fd"], state["_pid"] = None, -1
        return state

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None and self._pid == os.getpid():
            try:
                os.close(self._fd)
            except OSError:
                pass


class SymDataset(ImageDataset):
    """`.sym` images from a folder or an uncompressed tar (e.g. `symcodec convert` output), decoded on the fly."""

    extensions = (".sym",)


def _parent(name: str) -> str | None:
    parts = name.rsplit("/", 2)
    return parts[-2] if len(parts) > 1 else None


class Purify(torch.nn.Module):
    """Quantize to the nearest centroids and reconstruct: (C,H,W) or (N,C,H,W), float in [0,1] or uint8.

    Returns a tensor of the input's shape, dtype and device. Not differentiable (a hard quantizer).
    """

    def __init__(self, codebook: Codebook | str | None = None, threads: int = 1) -> None:
        super().__init__()
        self.codebook = registry.get(codebook)
        self.threads = threads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Purify a tensor image or batch."""
        if x.ndim not in (3, 4):
            msg = f"expected (C,H,W) or (N,C,H,W), got shape {tuple(x.shape)}"
            raise ValueError(msg)
        a = x.detach().cpu()
        a = a.permute(1, 2, 0) if a.ndim == 3 else a.permute(0, 2, 3, 1)
        arr = a.numpy() if a.dtype == torch.uint8 else a.to(torch.float32).clamp_(0, 1).numpy()
        out = purify(np.ascontiguousarray(arr), self.codebook, threads=self.threads)
        if out.ndim == arr.ndim - 1:
            out = out[..., None]
        t = torch.from_numpy(np.ascontiguousarray(out))
        t = t.permute(2, 0, 1) if x.ndim == 3 else t.permute(0, 3, 1, 2)
        return t.to(device=x.device, dtype=x.dtype).contiguous()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["codebook"] = self.codebook.to_bytes()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if isinstance(state.get("codebook"), bytes):
            state["codebook"] = Codebook.from_bytes(state["codebook"])
        self.__dict__.update(state)

    def extra_repr(self) -> str:
        return f"codebook={self.codebook.name or self.codebook.short_id}, K={self.codebook.k}, patch={self.codebook.patch}"
