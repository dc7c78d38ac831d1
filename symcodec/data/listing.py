"""What `symcodec convert` has left to do: SRC's samples in source order, past the journaled prefix, in chunks.

Both engines list through `Work.chunks`: the local one in the parent, the Ray one in a read task.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any, Iterator

from ..errors import DatasetError
from .sources import Sample, iter_refs


def iter_source(src: str | os.PathLike[str]) -> Iterator[Sample]:
    """The samples of SRC, as `Ref`s to their bytes where it can (plain tars, folders: the workers read them)."""
    return iter_refs(src)


def _chunks(samples: Iterator[Sample], n: int) -> Iterator[list[tuple[str, Any, bytes | None, Any]]]:
    while True:
        batch = [(s.key, s.label, s.data if s.data is not None else s.ref, s.pixels) for s in itertools.islice(samples, n)]
        if not batch:
            return
        yield batch


def _skip_done(samples: Iterator[Sample], done: int, last_key: str | None, journal: str) -> Iterator[Sample]:
    """Drop the prefix a previous run finished, checking the source still lines up with the manifest."""
    last = None
    for _ in range(done):
        try:
            last = next(samples)
        except StopIteration:
            msg = f"the source has fewer images than {journal} records; was it changed?"
            raise DatasetError(msg) from None
    if last is not None and last.key != last_key:
        msg = f"the source no longer matches {journal} (image {done} is {last.key}, manifest says {last_key})"
        raise DatasetError(msg)
    return samples


@dataclass(frozen=True)
class Work:
    """What is left to convert: SRC's samples after the journaled prefix, up to the limit, in chunks.

    Picklable, so the Ray engine lists SRC on a worker while the encoders start.
    """

    src: str
    chunk: int
    limit: int | None
    done: int
    last_key: str | None
    journal: str

    def chunks(self, samples: Iterator[Sample] | None = None) -> Iterator[list[tuple[str, Any, Any, Any]]]:
        """Chunks of (key, label, bytes or a `Ref`, pixels), in source order (`samples`: SRC's, if already open)."""
        samples = iter_source(self.src) if samples is None else samples
        if self.limit is not None:
            if self.done >= self.limit:
                return iter(())
            samples = itertools.islice(samples, self.limit)
        return _chunks(_skip_done(samples, self.done, self.last_key, self.journal), self.chunk)
