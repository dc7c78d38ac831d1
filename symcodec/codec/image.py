"""What an encoder takes: a PIL image or a uint8 array, as (H, W, C) uint8 samples, a `.sym` mode and metadata."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ModeConversionWarning, UnsupportedModeError
from ..format.sym import MODE_IDS

_CONVERT = {"P": None, "1": "L", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB", "PA": "RGBA"}
_REFUSE = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_ARRAY_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def samples(image: Any) -> tuple[np.ndarray, str, dict[str, bytes]]:
    """(H, W, C) uint8 array, mode (L, LA, RGB, RGBA), and the ICC/EXIF/XMP of a PIL image or a uint8 array.

    Other PIL modes are converted (with a ModeConversionWarning); more than 8 bits per sample is refused.
    """
    meta: dict[str, bytes] = {}
    if isinstance(image, np.ndarray):
        a = image
        if a.dtype != np.uint8:
            msg = f"encode needs uint8 samples, got {a.dtype}; scale floats with (x * 255).round().astype(np.uint8)"
            raise UnsupportedModeError(msg)
        if a.ndim == 2:
            a = a[:, :, None]
        if a.ndim != 3 or a.shape[2] not in _ARRAY_MODES:
            msg = f"array of shape {image.shape} is not an L, LA, RGB or RGBA image"
            raise UnsupportedModeError(msg)
        return np.ascontiguousarray(a), _ARRAY_MODES[a.shape[2]], meta
    if not isinstance(image, Image.Image):
        msg = f"cannot encode a {type(image).__name__}: pass a PIL image or a uint8 numpy array"
        raise UnsupportedModeError(msg)
    im = image
    if im.mode in _REFUSE:
        msg = f"mode {im.mode} (more than 8 bits per sample) is not supported: .sym stores 8-bit samples; convert first, e.g. im.convert('L')"
        raise UnsupportedModeError(msg)
    if im.mode not in MODE_IDS:
        target = _CONVERT.get(im.mode, "RGB")
        if target is None:  # palette: keep transparency if there is any
            target = "RGBA" if ("transparency" in im.info or im.palette and im.palette.mode == "RGBA") else "RGB"
        warnings.warn(f"converting mode {im.mode} to {target} for .sym", ModeConversionWarning, stacklevel=3)
        im = im.convert(target)
    a = np.asarray(im)
    if a.ndim == 2:
        a = a[:, :, None]
    for key in ("icc_profile", "exif", "xmp"):
        if im.info.get(key):
            val = im.info[key]
            meta[key] = val.encode("utf-8") if isinstance(val, str) else bytes(val)
    if meta.get("exif", b"").startswith(b"Exif\x00\x00"):  # JPEG's APP1 prefix; the spec stores the TIFF data
        meta["exif"] = meta["exif"][6:]
    return np.ascontiguousarray(a), im.mode, meta
