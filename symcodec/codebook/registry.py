"""Codebook registry (formats/symcb.md section 5): names, ids and paths resolve to codebooks from shipped and user folders."""
from __future__ import annotations

import functools
import os
import re
import stat
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import CodebookError, CodebookNotFoundError, SymcodecError, SymcodecWarning
from ..atomic import atomic_write
from .codebook import Codebook, TransformCodebook, read_regular
from .seed import import_faiss_index

DEFAULT = "cifar10-2x2-k2048"
ENV = "SYMCODEC_CODEBOOKS"
_cache: dict[tuple, Codebook] = {}
_entries: dict[tuple, list] = {}
_by_name: dict[str, tuple[list, Codebook]] = {}
_by_id: dict[str, Entry] = {}  # id -> entry of the current scan (cleared with it)
_paths: dict[tuple, tuple[list[Path], list[str]]] = {}


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


@functools.lru_cache(maxsize=1)
def shipped_dir() -> Path:
    """The codebooks that ship with the package."""
    return Path(str(resources.files("symcodec.codebooks")))


def search_path() -> list[Path]:
    """Folders searched, in order: $SYMCODEC_CODEBOOKS entries, the user folder, the shipped folder."""
    return list(_search_path()[0])


def _search_path() -> tuple[list[Path], list[str]]:
    env = os.environ
    key = (env.get(ENV, ""), env.get("XDG_CACHE_HOME"), env.get("HOME"))  # what the folders depend on
    found = _paths.get(key)
    if found is None:
        folders = [*(Path(p) for p in key[0].split(os.pathsep) if p), user_dir(), shipped_dir()]
        found = _paths[key] = (folders, [str(f) for f in folders])
    return found


def load_file(path: str | os.PathLike[str]) -> Codebook | TransformCodebook:
    """Load a `.symcb` file (cached by path, file identity and modification time) or import a faiss `.index`."""
    p = os.path.abspath(os.fspath(path))
    st = os.stat(p)  # a missing file raises here, as before
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block the open below forever
        msg = f"codebook file {p} is not a regular file"
        raise CodebookError(msg)
    key = (p, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    cb = _cache.get(key)
    if cb is None:
        cb = _cache[key] = import_faiss_index(p) if p.endswith(".index") else Codebook.load(p)
    return cb


def _folder_mtime(folder: str) -> float | None:
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return st.st_mtime if stat.S_ISDIR(st.st_mode) else None


def entries() -> list[Entry]:
    """Every readable codebook in the search path (earlier folders shadow later ones by name).

    Rescanned whenever a folder's modification time changes (a codebook added, removed or renamed);
    a codebook file changed in place is reloaded by `load_file`, which checks its own stat.
    """
    folders, names = _search_path()
    key = tuple([(f, _folder_mtime(f)) for f in names])
    found = _entries.get(key)
    if found is None:
        _entries.clear()
        _by_id.clear()
        found = _entries[key] = _scan(list(folders))
    return found


def _scan(folders: list[Path]) -> list[Entry]:
    seen: set[str] = set()
    out = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for f in sorted(folder.glob("*.symcb")):
            try:
                cb = load_file(f)
            except (OSError, SymcodecError) as exc:  # one bad file never hides the others
                msg = f"skipped codebook {f}: {exc}"
                warnings.warn(msg, SymcodecWarning, stacklevel=2)
                continue
            name = cb.name or f.stem
            if name in seen:
                continue
            seen.add(name)
            trained = str(cb.provenance.get("trained_on", ""))
            out.append(Entry(name, cb.hexid, cb.k, cb.patch, trained, f))
    return out


def install(path: str | os.PathLike[str], name: str | None = None, folder: str | os.PathLike[str] | None = None) -> Path:
    """Copy a `.symcb` file into the user folder (or `folder`) as NAME.symcb, after checking that it parses; returns the new path.

    NAME is `name`, else the codebook's own name, else the file's stem. An installed codebook of that
    name is replaced; a shipped one is shadowed (earlier folders win, formats/symcb.md section 5).
    """
    data = read_regular(path)
    cb = Codebook.from_bytes(data)
    stem = name or cb.name or Path(path).stem
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}", stem):
        msg = f"codebook name {stem!r} is not a plain file name (letters, digits, '.', '_', '+', '-')"
        raise CodebookError(msg)
    dest = Path(folder) if folder is not None else user_dir()
    out = dest / f"{stem}.symcb"
    atomic_write(out, data)
    return out


def remove(name: str, folder: str | os.PathLike[str] | None = None) -> Path:
    """Delete an installed codebook (by name or id prefix) from the user folder (or `folder`); shipped ones stay."""
    dest = Path(folder) if folder is not None else user_dir()
    hits = [e for e in entries() if (e.name == name or (len(name) >= 8 and e.id.startswith(name.lower())))
            and e.path.parent.resolve() == dest.resolve()]
    if not hits:
        where = [str(e.path) for e in entries() if e.name == name]
        msg = (f"no codebook {name!r} installed in {dest}" + (f" (found {', '.join(where)}; shipped and $SYMCODEC_CODEBOOKS "
                                                              "codebooks are not removed)" if where else ""))
        raise CodebookNotFoundError(msg)
    for e in hits:
        e.path.unlink()
    return hits[0].path


def _not_found(what: str) -> CodebookNotFoundError:
    folders = ", ".join(str(p) for p in search_path())
    names = ", ".join(e.name for e in entries()) or "none"
    msg = (
        f"codebook {what} is not installed; searched {folders} (known names: {names}); "
        f"install it by copying its .symcb file into {user_dir()} or a folder listed in ${ENV}"
    )
    return CodebookNotFoundError(msg)


def by_id(cid: bytes) -> Codebook | TransformCodebook:
    """The installed codebook whose id is `cid`, or starts with it (a compact file's 8 bytes; two matches: CodebookError)."""
    found = entries()  # a rescan clears _by_id
    h = cid.hex()
    e = _by_id.get(h)
    if e is None:
        hits = [e for e in found if e.id.startswith(h)] if h else []
        if not hits:
            raise _not_found(f"with id {h}")
        if len({e.id for e in hits}) > 1:
            msg = f"codebook id {h} is ambiguous: {', '.join(sorted({e.id for e in hits}))} are installed"
            raise CodebookError(msg)
        e = hits[0]
        _by_id[h] = e
    return load_file(e.path)


def get(spec: str | os.PathLike[str] | Codebook | TransformCodebook | None = None) -> Codebook | TransformCodebook:
    """Resolve a codebook, a file path, a name, or an id (hex, 8+ digits prefix); None means the default."""
    if isinstance(spec, (Codebook, TransformCodebook)):
        return spec
    spec = DEFAULT if spec is None else spec
    s = str(spec)
    if os.sep in s or s.endswith((".symcb", ".index")) or os.path.isfile(s):
        if not os.path.exists(s):
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
