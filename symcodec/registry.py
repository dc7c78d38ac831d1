"""Codebook registry: names, ids and paths resolve to codebooks from shipped and user folders."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .codebook import Codebook
from .errors import CodebookError, CodebookNotFoundError, FormatError

DEFAULT = "cifar10-2x2-k2048"
ENV = "SYMCODEC_CODEBOOKS"
_cache: dict[tuple[str, float], Codebook] = {}
_entries: dict[tuple, list] = {}
_by_name: dict[str, tuple[list, Codebook]] = {}


@dataclass(frozen=True)
class Entry:
    """One installed codebook file."""

    name: str
    id: str
    k: int
    patch: int
    trained_on: str
    path: Path


def user_dir() -> Path:
    """The per-user codebook folder ($XDG_CACHE_HOME or ~/.cache, then symcodec/codebooks)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "symcodec" / "codebooks"


def shipped_dir() -> Path:
    """The codebooks that ship with the package."""
    return Path(str(resources.files("symcodec.codebooks")))


def search_path() -> list[Path]:
    """Folders searched, in order: $SYMCODEC_CODEBOOKS entries, the user folder, the shipped folder."""
    env = [Path(p) for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    return [*env, user_dir(), shipped_dir()]


def load_file(path: str | os.PathLike[str]) -> Codebook:
    """Load a `.symcb` file (cached by path and modification time) or import a faiss `.index`."""
    path = Path(path)
    key = (str(path.resolve()), path.stat().st_mtime)
    if key not in _cache:
        _cache[key] = import_faiss_index(path) if path.suffix == ".index" else Codebook.load(path)
    return _cache[key]


def entries() -> list[Entry]:
    """Every readable codebook in the search path (earlier folders shadow later ones by name)."""
    folders = search_path()
    key = tuple((str(f), f.stat().st_mtime if f.is_dir() else None) for f in folders)
    if key not in _entries:
        _entries.clear()
        _entries[key] = _scan(folders)
    return _entries[key]


def _scan(folders: list[Path]) -> list[Entry]:
    seen: set[str] = set()
    out = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for f in sorted(folder.glob("*.symcb")):
            try:
                cb = load_file(f)
            except (OSError, FormatError, CodebookError):
                continue
            name = cb.name or f.stem
            if name in seen:
                continue
            seen.add(name)
            trained = str(cb.provenance.get("trained_on", ""))
            out.append(Entry(name, cb.hexid, cb.k, cb.patch, trained, f))
    return out


def _not_found(what: str) -> CodebookNotFoundError:
    folders = ", ".join(str(p) for p in search_path())
    names = ", ".join(e.name for e in entries()) or "none"
    msg = (
        f"codebook {what} is not installed; searched {folders} (known names: {names}); "
        f"install it by copying its .symcb file into {user_dir()} or a folder listed in ${ENV}"
    )
    return CodebookNotFoundError(msg)


def by_id(cid: bytes) -> Codebook:
    """The installed codebook whose id is `cid`."""
    for e in entries():
        if e.id == cid.hex():
            return load_file(e.path)
    raise _not_found(f"with id {cid.hex()}")


def get(spec: str | os.PathLike[str] | Codebook | None = None) -> Codebook:
    """Resolve a codebook, a file path, a name, or an id (hex, 8+ digits prefix); None means the default."""
    if isinstance(spec, Codebook):
        return spec
    spec = DEFAULT if spec is None else spec
    s = str(spec)
    if os.sep in s or s.endswith((".symcb", ".index")) or Path(s).is_file():
        if not Path(s).is_file():
            msg = f"codebook file {s} does not exist"
            raise CodebookNotFoundError(msg)
        return load_file(s)
    found = entries()
    hit = _by_name.get(s)
    if hit is not None and hit[0] is found:
        return hit[1]
    for e in found:
        if e.name == s:
            cb = load_file(e.path)
            _by_name[s] = (found, cb)
            return cb
    if re.fullmatch(r"[0-9a-fA-F]{8,64}", s):
        hits = [e for e in found if e.id.startswith(s.lower())]
        if len(hits) == 1:
            return load_file(hits[0].path)
    raise _not_found(repr(s))


def import_faiss_index(path: str | os.PathLike[str], name: str = "", patch: int | None = None) -> Codebook:
    """Import a SymDNN faiss `IndexFlatL2` codebook (uniform symbol table, since none is stored)."""
    import faiss

    try:
        index = faiss.read_index(str(path))
        cent = index.reconstruct_n(0, index.ntotal)
    except RuntimeError as exc:
        msg = f"cannot read faiss index {path}: {str(exc).splitlines()[0] if str(exc) else 'unreadable'}"
        raise CodebookError(msg) from None
    d = cent.shape[1]
    patch = patch or int(round(d**0.5))
    if patch * patch != d:
        msg = f"faiss index {path} has d={d}, not a square patch"
        raise CodebookError(msg)
    if cent.min() < 0 or cent.max() > 1:
        msg = f"faiss index {path} holds values outside [0, 1] (normalised data?); only pixel-space codebooks import"
        raise CodebookError(msg)
    prov = {"imported_from": Path(path).name, "trained_on": "SymDNN reference (imported)"}
    return Codebook(cent, patch=patch, counts=np.ones(len(cent), np.uint32), name=name or Path(path).stem, provenance=prov)
