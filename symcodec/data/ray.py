"""Ray Data over `.sym` shards: `read_sym(paths)`, the Ray counterpart of `symcodec.data.torch.SymDataset`.

Each path is a tar of `.sym` members (as `symcodec convert` writes, shard patterns included), a folder of
`.sym` files, or a glob of either. One read task per path decodes its images on a Ray worker and streams
rows `{"key", "image", "label"}`: the member name, the decoded uint8 pixels ((H, W) or (H, W, C)), and the
label from a `.cls` member or the parent folder (None without one). The paths must be readable at the same
place on every node.
"""
from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa
import ray.data
from ray.data.block import BlockMetadata
from ray.data.datasource import ReadTask

from ..codec.decoder import decode
from ..errors import DatasetError, SymcodecError
from .sources import iter_samples, kind

ROWS_PER_BLOCK = 256


def _expand(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[str] = []
    for p in map(str, items):
        hits = sorted(glob.glob(p)) if glob.has_magic(p) else [p]
        if not hits:
            msg = f"no file matches {p}"
            raise DatasetError(msg)
        for h in hits:
            if kind(h) not in ("tar", "folder"):
                msg = f"{h} is not a tar or a folder of .sym files"
                raise DatasetError(msg)
            if kind(h) == "folder" and next(Path(h).rglob("*.sym"), None) is None:
                msg = f"{h} holds no .sym files"
                raise DatasetError(msg)
            out.append(h)
    return out


def _rows(path: str) -> Iterator[pa.Table]:
    keys: list[str] = []
    images: list[np.ndarray] = []
    labels: list[str | None] = []
    for s in iter_samples(path):
        if not s.key.endswith(".sym"):
            continue
        try:
            img = decode(s.bytes() or b"")
        except SymcodecError as exc:
            msg = f"{path}: {s.key}: {type(exc).__name__}: {exc}"
            raise DatasetError(msg) from None
        keys.append(s.key)
        images.append(img)
        labels.append(None if s.label is None else str(s.label))
        if len(keys) == ROWS_PER_BLOCK:
            yield _table(keys, images, labels)
            keys, images, labels = [], [], []
    if keys:
        yield _table(keys, images, labels)


def _table(keys: list[str], images: list[np.ndarray], labels: list[str | None]) -> pa.Table:
    from ray.data.extensions import ArrowTensorArray  # ragged shapes too (ArrowVariableShapedTensorArray)

    arr = np.empty(len(images), dtype=object)
    arr[:] = images
    same = len({(i.shape, i.dtype) for i in images}) == 1
    col = ArrowTensorArray.from_numpy(np.stack(images) if same else arr)
    return pa.table({"key": pa.array(keys, pa.string()), "image": col, "label": pa.array(labels, pa.string())})


class _SymShards(ray.data.Datasource):
    """One read task per tar shard or folder."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None) -> list[ReadTask]:
        def task(path: str) -> ReadTask:
            size = os.path.getsize(path) if os.path.isfile(path) else None
            return ReadTask(lambda: _rows(path), BlockMetadata(num_rows=None, size_bytes=size, input_files=[path], exec_stats=None))

        return [task(p) for p in self.paths]


def read_sym(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> ray.data.Dataset:
    """A Ray Dataset of the decoded images of .sym shards: rows {"key": str, "image": uint8 array, "label": str | None}."""
    files = _expand(paths)
    return ray.data.read_datasource(_SymShards(files), override_num_blocks=len(files))
