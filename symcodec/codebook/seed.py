"""SymDNN's own codebooks: faiss `IndexFlatL2` files (`.index`) imported as symcodec codebooks."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import CodebookError
from .codebook import Codebook


def import_faiss_index(path: str | os.PathLike[str], name: str = "", patch: int | None = None) -> Codebook:
    """Import a SymDNN faiss `IndexFlatL2` codebook (uniform symbol table, since none is stored)."""
    import faiss  # the [train] extra: only importing seed codebooks needs it

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
