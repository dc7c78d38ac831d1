"""Crash-safe outputs for `symcodec convert`: the JSON-lines manifest (also the resume journal) and tar shards.

The manifest's first line records the run's settings; then one line per source image, in source
order: `{"key", "path", "label", "src_bytes", "out_bytes"}` (+ `"shard"`, `"end"` for tar output) or
`{"key", "error"}` for an image that failed; and `{"shard_done", "images", "bytes"}` when a shard is
complete. Tar bytes are flushed before the lines that describe them, so after a crash (or kill -9)
a rerun truncates the open shard to its last recorded member and carries on.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from . import tario
from ..errors import DatasetError

PARTIAL = ".partial"


@dataclass
class Journal:
    """The manifest: read what a previous run finished, then append this run's lines."""

    path: Path
    settings: dict[str, Any]
    done: int = 0  # source images accounted for (converted or failed), a prefix of the source order
    last_key: str | None = None
    ok: int = 0
    failed: int = 0
    src_bytes: int = 0
    out_bytes: int = 0
    shards: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> {images, end, done}
    _fp: Any = None

    @classmethod
    def open(cls, path: Path, settings: dict[str, Any]) -> Journal:
        """Load an existing manifest (checking it was made with the same settings) or start one."""
        j = cls(Path(path), settings)
        good = 0
        if j.path.exists():
            with open(j.path, "rb") as f:
                for raw in f:
                    if not raw.endswith(b"\n"):
                        break  # a line cut short by a crash: dropped below
                    try:
                        rec = json.loads(raw)
                    except ValueError:
                        break
                    if good == 0:
                        j._check(rec)
                    else:
                        j._replay(rec)
                    good += len(raw)
            if good == 0:
                j.path.unlink()
        if j.path.exists():
            with open(j.path, "r+b") as f:
                f.truncate(good)
            j._fp = open(j.path, "a", encoding="utf-8")  # noqa: SIM115
        else:
            j.path.parent.mkdir(parents=True, exist_ok=True)
            j._fp = open(j.path, "w", encoding="utf-8")  # noqa: SIM115
            j._write({"symcodec_convert": 1, **settings})
            j.flush()
        return j

    def _check(self, rec: dict[str, Any]) -> None:
        old = {k: v for k, v in rec.items() if k != "symcodec_convert"}
        if "symcodec_convert" not in rec:
            msg = f"{self.path} is not a symcodec convert manifest"
            raise DatasetError(msg)
        diff = [k for k in self.settings if old.get(k) != self.settings[k]]
        if diff:
            changes = ", ".join(f"{k}: {old.get(k)!r} -> {self.settings[k]!r}" for k in diff)
            msg = f"{self.path} was written by a run with other settings ({changes}); delete it and the outputs, or pick another destination"
            raise DatasetError(msg)

    def _replay(self, rec: dict[str, Any]) -> None:
        if "shard_done" in rec:
            self.shards.setdefault(rec["shard_done"], {"images": 0, "end": 0})["done"] = 1
            return
        self.done += 1
        self.last_key = rec["key"]
        if "error" in rec:
            self.failed += 1
            return
        self.ok += 1
        self.src_bytes += int(rec["src_bytes"])
        self.out_bytes += int(rec["out_bytes"])
        if "shard" in rec:
            s = self.shards.setdefault(rec["shard"], {"images": 0, "end": 0})
            s["images"] += 1
            s["end"] = int(rec["end"])

    def _write(self, rec: dict[str, Any]) -> None:
        self._fp.write(json.dumps(rec, separators=(",", ":")) + "\n")

    def record(self, rec: dict[str, Any]) -> None:
        """Append one image line (call `flush` after the data it describes is flushed)."""
        self._write(rec)
        self._replay(rec)

    def flush(self) -> None:
        """Push appended lines to the OS (enough to survive the process being killed)."""
        self._fp.flush()

    def close(self) -> None:
        """Flush and close."""
        if self._fp is not None:
            self._fp.flush()
            os.fsync(self._fp.fileno())
            self._fp.close()
            self._fp = None


class ShardWriter:
    """Tar shards `pattern % i` of at most `size` images, written as `<name>.partial` then renamed."""

    def __init__(self, pattern: str, size: int | None, journal: Journal) -> None:
        self.pattern = pattern
        self.size = size
        self.journal = journal
        self.index = 0
        self.fp: BinaryIO | None = None
        self.count = 0
        self.pos = 0
        self._resume()

    def name(self, i: int) -> str:
        """File name of shard i."""
        return Path(self.pattern % i if "%" in self.pattern else self.pattern).name

    def _path(self, i: int) -> Path:
        return Path(self.pattern).parent / self.name(i)

    def _resume(self) -> None:
        shards = self.journal.shards
        i = 0
        while self.name(i) in shards and shards[self.name(i)].get("done"):
            final, part = self._path(i), Path(str(self._path(i)) + PARTIAL)
            if not final.exists() and part.exists():
                os.replace(part, final)  # crashed between journaling and renaming
            if not final.exists():
                msg = f"shard {final} is recorded as complete but is missing; delete the manifest {self.journal.path} to start over"
                raise DatasetError(msg)
            i += 1
            if "%" not in self.pattern:
                break
        self.index = i
        st = shards.get(self.name(i))
        if st and not st.get("done"):
            part = Path(str(self._path(i)) + PARTIAL)
            if not part.exists() or part.stat().st_size < st["end"]:
                msg = f"partial shard {part} is missing or shorter than its manifest says; delete {self.journal.path} to start over"
                raise DatasetError(msg)
            self.fp = open(part, "r+b")  # noqa: SIM115
            self.fp.truncate(st["end"])
            self.fp.seek(st["end"])
            self.count, self.pos = st["images"], st["end"]

    def _full(self) -> bool:
        return self.size is not None and self.count >= self.size

    def add(self, member: bytes) -> tuple[str, int]:
        """Append tar member bytes; return (shard name, end offset) for the manifest."""
        if self.fp is not None and self._full():
            self._finish()
        if self.fp is None:
            if "%" not in self.pattern and self.index > 0:
                msg = f"{self.pattern} is already complete; use a shard pattern such as out-%05d.tar to add more"
                raise DatasetError(msg)
            part = Path(str(self._path(self.index)) + PARTIAL)
            part.parent.mkdir(parents=True, exist_ok=True)
            self.fp = open(part, "wb")  # noqa: SIM115
            self.count, self.pos = 0, 0
        self.fp.write(member)
        self.count += 1
        self.pos += len(member)
        return self.name(self.index), self.pos

    def flush(self) -> None:
        """Flush shard bytes (call before flushing the journal lines about them)."""
        if self.fp is not None:
            self.fp.flush()

    def _finish(self) -> None:
        assert self.fp is not None
        self.fp.write(tario.end(self.pos))
        self.fp.flush()
        os.fsync(self.fp.fileno())
        self.fp.close()
        self.fp = None
        name = self.name(self.index)
        self.journal._write({"shard_done": name, "images": self.count, "bytes": self.pos})
        self.journal._replay({"shard_done": name})
        self.journal.flush()
        final = self._path(self.index)
        os.replace(str(final) + PARTIAL, final)
        self.index += 1

    def close(self) -> None:
        """Finish the open shard, if any."""
        if self.fp is not None:
            self._finish()
