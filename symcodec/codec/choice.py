"""Which codebook (and, in the transform mode, which steps) an image is coded with: the quality ladder.

With no codebook given, images whose sides are both at most `SMALL_SIDE` pixels take the small-image
patch codebooks (the Pareto-best shipped ones), larger ones the transform codebook `PHOTO`. `quality`
(1..100) picks a rung of the small-image ladders, or scales the transform mode's steps as libjpeg scales
JPEG's tables; with no quality, a JPEG source keeps its own tables (the re-encoding then loses almost
nothing), anything else gets `PHOTO_QUALITY`. README, "Quality", lists the ladder with its rates.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from ..codebook import registry
from ..codebook.codebook import Codebook, TransformCodebook
from ..errors import OptionError
from ..vq.transform import steps_for_quality

PHOTO = "photo-dct"
PHOTO_QUALITY = 92  # about JPEG q90's PSNR at 0.88-0.92x its bytes on the test photos (tools/photo_defaults.py)
SMALL_SIDE = 64
# (highest quality of the rung, codebook); None picks the rung marked default
SMALL_RGB = ((70, "cifar10-ycc420-k512-ppm"), (100, "cifar10-2x2-k2048-ppm"))
SMALL_L = ((40, "mnist-2x2-k32"), (70, "mnist-2x2-k64"), (90, "mnist-2x2-k128"), (100, "mnist-2x2-k256"))
SMALL_DEFAULT = 70


def check_quality(quality: Any) -> int | None:
    """The quality as an int in 1..100, or None (OptionError otherwise)."""
    if quality is None:
        return None
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= int(quality) <= 100:
        msg = f"quality must be an integer from 1 to 100, got {quality!r}"
        raise OptionError(msg)
    return int(quality)


def jpeg_tables(image: Any) -> np.ndarray | None:
    """The (2, 64) quantisation tables (natural order, clipped to 1..255) of a PIL image read from a JPEG file, else None."""
    q = getattr(image, "quantization", None) if isinstance(image, Image.Image) and image.format == "JPEG" else None
    if not q or 0 not in q:
        return None
    t = [np.asarray(q[0]), np.asarray(q.get(1, q[0]))]
    if any(x.size != 64 for x in t):
        return None
    return np.clip(np.stack(t), 1, 255).astype(np.uint8)


def transform_steps(quality: int | None, tables: np.ndarray | None) -> np.ndarray:
    """The steps of a transform-mode file: the quality's, else a JPEG source's own tables, else PHOTO_QUALITY's."""
    if quality is not None:
        return steps_for_quality(quality)
    return tables if tables is not None else steps_for_quality(PHOTO_QUALITY)


def choose(width: int, height: int, mode: str, quality: int | None = None,
           tables: np.ndarray | None = None) -> tuple[Codebook | TransformCodebook, np.ndarray | None]:
    """(codebook, steps or None) for an image of this size and mode when the caller names no codebook."""
    if max(width, height) <= SMALL_SIDE:
        ladder = SMALL_L if mode in ("L", "LA") else SMALL_RGB
        q = SMALL_DEFAULT if quality is None else quality
        name = next(n for top, n in ladder if q <= top)
        return registry.get(name), None
    return registry.get(PHOTO), transform_steps(quality, tables)
