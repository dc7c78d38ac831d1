"""Symbol-domain inference: a classifier whose first layer maps a `.sym` file's symbol ids to learned patches.

`SymbolClassifier` reads the flat symbols of an image (plane after plane, as `codec.decoder.Decoder.symbols`
gives them and `codec.encoder.Encoder.symbols` makes them) instead of pixels. Its first layer is one embedding
table per plane (K rows of p x p values), initialised from the codebook's centroids as the decoder rounds them; the rows are tiled into
planes (depth-to-space), chroma is replicated 2x2 and YCbCr becomes RGB in floating point (colour 1, the float
form of formats/sym.md section 4.2). At initialisation the front end therefore gives the decoder's pixels to
within one grey level; training moves each table row to what the classifier reads best, so the classifier
learns its own decoding of the same bits (the rate does not change: the encoder's choice of ids is untouched).
The backbone is any `models.Classifier` (pixels in [0, 1] in, logits out).
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..atomic import atomic_write
from ..codebook import registry
from ..codebook.codebook import Codebook
from ..codec.encoder import encoder_for
from ..errors import SymcodecError
from ..vq.colour import chroma_size
from ..vq.patches import grid
from . import models

# formats/sym.md section 4.2 in floating point (the integer coefficients / 65536)
_KR, _KGU, _KGV, _KB = 91881 / 65536, 22554 / 65536, 46802 / 65536, 116130 / 65536


class SymbolFrontEnd(nn.Module):
    """Flat symbol ids (N, symbols) int64 -> (N, C, H, W) float pixels in [0, 1]; one learned table per plane."""

    def __init__(self, centroids: np.ndarray, patch: int, colour: int, planes: int, height: int, width: int) -> None:
        super().__init__()
        self.patch, self.colour, self.height, self.width = patch, colour, height, width
        self.nplanes = 3 if colour == 1 else planes
        # each plane's size and patch grid (formats/sym.md: colour 1 codes Cb and Cr on the half-size image)
        self.sizes = [(height, width)] + [chroma_size(height, width) if colour == 1 else (height, width)] * (self.nplanes - 1)
        self.grids = [grid(h, w, patch) for h, w in self.sizes]
        init = torch.tensor(np.asarray(centroids, np.float32))
        self.tables = nn.ModuleList(nn.Embedding.from_pretrained(init.clone(), freeze=False) for _ in range(self.nplanes))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        n, p, o, out = ids.shape[0], self.patch, 0, []
        for table, (gh, gw), (h, w) in zip(self.tables, self.grids, self.sizes):
            e = table(ids[:, o:o + gh * gw]).view(n, gh, gw, p * p).permute(0, 3, 1, 2)  # (N, p*p, gh, gw)
            out.append(F.pixel_shuffle(e, p)[:, :, :h, :w])  # the patch's rows and columns, padding cropped
            o += gh * gw
        # channels-last, as `models.to_tensor` gives decoded pixels: the CPU convolutions run about 1.5x faster on it
        if self.colour != 1:
            return torch.cat(out, 1).clamp(0, 1).contiguous(memory_format=torch.channels_last)
        y, u, v = out[0], out[1] - 128 / 255, out[2] - 128 / 255
        u = u.repeat_interleave(2, 2).repeat_interleave(2, 3)[:, :, :self.height, :self.width]
        v = v.repeat_interleave(2, 2).repeat_interleave(2, 3)[:, :, :self.height, :self.width]
        rgb = torch.cat([y + _KR * v, y - _KGU * u - _KGV * v, y + _KB * u], 1)
        return rgb.clamp(0, 1).contiguous(memory_format=torch.channels_last)


class SymbolClassifier(nn.Module):
    """Symbols in, logits out: `SymbolFrontEnd` then a pixel classifier (`models.Classifier`)."""

    def __init__(self, front: SymbolFrontEnd, backbone: models.Classifier, codebook: str, codebook_id: bytes) -> None:
        super().__init__()
        self.front, self.backbone = front, backbone
        self.codebook, self.codebook_id = codebook, codebook_id
        self.meta: dict[str, Any] = {}

    @property
    def n_symbols(self) -> int:
        """Symbols per image this model reads."""
        return sum(h * w for h, w in self.front.grids)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.front(ids))


def build(codebook: Codebook | str, backbone: models.Classifier | str, height: int, width: int, mode: str = "RGB") -> SymbolClassifier:
    """A symbol classifier for HxW images of `mode` coded with `codebook`, its tables set to the centroids."""
    cb = registry.get(codebook) if not isinstance(codebook, Codebook) else codebook
    if not isinstance(cb, Codebook):
        msg = f"codebook {cb.name}: symbol-domain inference needs a patch codebook, not a transform codebook"
        raise SymcodecError(msg)
    net = models.load(backbone) if not isinstance(backbone, nn.Module) else backbone
    planes = {"L": 1, "RGB": 3}[mode]
    front = SymbolFrontEnd(cb.table_u8 / np.float32(255), cb.patch, cb.colour, planes, height, width)
    return SymbolClassifier(front, net, cb.name or cb.short_id, cb.id)


def symbols(images: np.ndarray, codebook: Codebook | str, threads: int = 1, batch: int = 1000) -> np.ndarray:
    """(N, symbols) int32: the ids the encoder writes for (N, H, W, C) uint8 images (no entropy coding)."""
    cb = registry.get(codebook) if not isinstance(codebook, Codebook) else codebook
    mode = "L" if images.shape[3] == 1 else "RGB"
    enc = encoder_for(cb, images.shape[2], images.shape[1], mode)
    return np.concatenate([enc.symbols(images[i:i + batch], threads) for i in range(0, len(images), batch)]) if len(images) else np.zeros((0, 0), np.int32)


def save(model: SymbolClassifier, path: str | os.PathLike[str], meta: dict[str, Any] | None = None, half: bool = False) -> None:
    """One torch file (atomic): the codebook it reads, the front end's tables and the backbone; `half`: float16."""
    def cast(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.half() if half and v.is_floating_point() else v for k, v in sd.items()}

    f, b = model.front, model.backbone
    blob = {"kind": "symbolic", "codebook": model.codebook, "codebook_id": model.codebook_id.hex(),
            "front": {"patch": f.patch, "colour": f.colour, "planes": f.nplanes, "height": f.height, "width": f.width,
                      "state_dict": cast(f.state_dict())},
            "arch": b.arch, "preprocess": b.preprocess_name, "kwargs": b.kwargs, "state_dict": cast(b.net.state_dict()),
            "meta": meta or {}}
    buf = io.BytesIO()
    torch.save(blob, buf)
    atomic_write(Path(path), buf.getvalue())


def load(name: str | os.PathLike[str]) -> SymbolClassifier:
    """Load a symbol classifier by name (weights/<name>.pt) or path; eval mode."""
    p = Path(name)
    if not p.is_file():
        p = models.weights_dir() / f"{name}.pt"
    if not p.is_file():
        msg = f"symbol classifier {name!r} not found"
        raise SymcodecError(msg)
    blob = torch.load(p, map_location="cpu", weights_only=True)
    if blob.get("kind") != "symbolic":
        msg = f"{p}: not a symbol classifier (a pixel classifier? load it with symcodec.classify.models.load)"
        raise SymcodecError(msg)
    fr = blob["front"]
    k, d = fr["state_dict"]["tables.0.weight"].shape
    front = SymbolFrontEnd(np.zeros((k, d), np.float32), fr["patch"], fr["colour"], fr["planes"], fr["height"], fr["width"])
    front.load_state_dict({key: v.float() for key, v in fr["state_dict"].items()})
    backbone = models.Classifier(blob["arch"], blob.get("preprocess", "none"), **blob.get("kwargs", {}))
    backbone.net.load_state_dict(blob["state_dict"])
    model = SymbolClassifier(front, backbone, blob["codebook"], bytes.fromhex(blob["codebook_id"]))
    model.meta = blob.get("meta", {})
    return model.eval()


@torch.no_grad()
def predict(model: SymbolClassifier, ids: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Top-1 labels (int64 numpy) for (N, symbols) ids, eval mode, batched."""
    model.eval()
    if ids.ndim != 2 or ids.shape[1] != model.n_symbols:
        msg = f"this model reads {model.n_symbols} symbols an image, got an array of shape {ids.shape}"
        raise SymcodecError(msg)
    k = model.front.tables[0].num_embeddings
    if ids.size and (ids.min() < 0 or ids.max() >= k):
        msg = f"symbol ids must be from 0 to {k - 1} (this model's codebook has {k} centroids)"
        raise SymcodecError(msg)
    out = [model(torch.from_numpy(np.ascontiguousarray(ids[i:i + batch_size], np.int64))).argmax(1).numpy()
           for i in range(0, len(ids), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, np.int64)
