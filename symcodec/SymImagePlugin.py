"""Pillow plugin for `.sym` images: open/load/verify/draft (1/p preview) and save.

Importing this module (as `import symcodec` does) registers the format, as Pillow has no plugin
discovery; `symcodec.register()` registers it again, e.g. after another plugin claimed `.sym`. `Image.open` reads only the header chunks, so Pillow's decompression-bomb
check runs before any pixel is decoded. A file that is not `.sym` raises `SyntaxError` (Pillow then
tries other formats); a real `.sym` with a problem (unknown codebook, newer version, corrupt chunk)
raises the specific `symcodec.errors` class (a `ValueError`), so its message reaches the user.

Save options (`im.save("x.sym", ...)`): `codebook` (name, id prefix, path or codebook; default: by the
image's size, `symcodec.codec.choice`), `quality` (1..100: a rung of that ladder, or a transform codebook's
steps; default: 92 for photos, or a JPEG source's own tables), `embed_codebook` (bool, make the file
self-contained), `threads` (centroid search, or a photo's strips), `compact` (bool, the compact form of
formats/sym.md section 9 for plain L/RGB files: 16 bytes of framing at 32x32 instead of 100), `icc_profile`, `exif`, `xmp` (bytes;
default: the image's own `info`). Module globals: `DECODE_THREADS` (threads `load()` uses), `MAX_PIXELS`
(None: `load()` refuses images over `Image.MAX_IMAGE_PIXELS`, where Pillow only warns) and `MAX_EXPANSION`
(decoded bytes per coded byte, `symcodec.codec.decoder.check_budget`). `Image.open` needs no codebook: an
uninstalled one makes `info["codebook"]` None and `load()` raise `CodebookNotFoundError`.
"""
from __future__ import annotations

from typing import IO, Any

import numpy as np
from PIL import Image, ImageFile

from .codec.decoder import MAX_EXPANSION as _MAX_EXPANSION
from .codec.decoder import check_budget, codebook_for, coded_bytes, decoder_for
from .codec.encoder import encode
from .errors import CodebookNotFoundError, NotSymFileError
from .format import sym
from .vq import patches

DECODE_THREADS = 1  # threads for decoding a transform-mode file's strips (Pillow has no per-open options)
MAX_PIXELS: int | None = None  # decode budget of load(): None follows Image.MAX_IMAGE_PIXELS (refused above it, not warned)
MAX_EXPANSION: int | None = _MAX_EXPANSION  # decoded bytes per coded byte load() accepts (None: unchecked)
FORMAT = "SYM"
MIME = "image/x-sym"
EXTENSION = ".sym"
_EXIF_PREFIX = b"Exif\x00\x00"


def _accept(prefix: bytes) -> bool:
    return sym.is_sym(prefix)


class SymImageFile(ImageFile.ImageFile):
    """A `.sym` image opened lazily: header in `_open`, pixels in `load()`."""

    format = FORMAT
    format_description = "symcodec symbolic image"

    def _open(self) -> None:
        assert self.fp is not None
        try:
            f = sym.read(self.fp, header_only=True)
        except NotSymFileError as exc:
            raise SyntaxError(str(exc)) from None
        hdr = f.header
        cid = hdr.codebook_id.hex()
        try:
            cb = codebook_for(f)
            name: str | None = cb.name
            cid = cb.hexid  # a compact file's header holds the first 4 (version 1: 8) bytes of it
        except CodebookNotFoundError:  # the header is still readable; load() raises, naming the id it needs
            name = None
        self._sym_header = hdr
        self._size = (hdr.width, hdr.height)
        self._mode = hdr.mode
        self.info.update(f.text)  # reserved keys never reach here (the reader drops them)
        self.info["codebook"] = name
        self.info["codebook_id"] = cid
        self.info["codebook_embedded"] = f.codebook is not None
        self.info["patch"] = hdr.patch
        self.info["k"] = hdr.k
        for key in ("icc_profile", "xmp"):
            if getattr(f, key):
                self.info[key] = getattr(f, key)
        if f.exif:
            self.info["exif"] = _EXIF_PREFIX + f.exif  # Pillow's convention (as PNG's eXIf)
        self.tile = [ImageFile._Tile("sym", (0, 0, *self._size), 0, ("full",))]

    @property
    def n_frames(self) -> int:
        """Always 1: `.sym` v1 holds one image."""
        return 1

    @property
    def is_animated(self) -> bool:
        """Always False."""
        return False

    def draft(self, mode: str | None, size: tuple[int, int] | None) -> tuple[str, tuple[int, int, float, float]] | None:
        """Offer the 1/p-scale preview (each patch's centroid mean) when it is still >= `size`."""
        if size is None or len(self.tile) != 1 or self.tile[0].args != ("full",):
            return None
        p = self._sym_header.patch
        w, h = self._sym_header.width, self._sym_header.height
        if w // max(size[0], 1) < p or h // max(size[1], 1) < p:
            return None
        self._size = (-(-w // p), -(-h // p))
        self.tile = [ImageFile._Tile("sym", (0, 0, *self._size), 0, ("preview",))]
        return self.mode, (0, 0, w / p, h / p)

    def verify(self) -> None:
        """Check every chunk CRC, the codebook, and that the payload decodes; closes the file."""
        if self.fp is None:
            msg = "verify must be called directly after open"
            raise RuntimeError(msg)
        self.fp.seek(0)
        f = sym.read(self.fp)
        check_budget(f.header, coded_bytes(f), MAX_PIXELS, MAX_EXPANSION)
        decoder_for(codebook_for(f), f.header).symbols(f.payload or b"")
        if f.alpha is not None:
            f.alpha_plane()
        super().verify()


class SymDecoder(ImageFile.PyDecoder):
    """Decodes a whole `.sym` file from the fd: full size, or the 1/p preview after `draft`."""

    _pulls_fd = True

    def decode(self, buffer: bytes | Image.SupportsArrayInterface) -> tuple[int, int]:
        """Read, entropy-decode and reconstruct; hand the pixels to Pillow as raw bytes."""
        assert self.fd is not None
        f = sym.read(self.fd)
        check_budget(f.header, coded_bytes(f), MAX_PIXELS, MAX_EXPANSION)
        dec = decoder_for(codebook_for(f), f.header)
        preview = self.args[:1] == ("preview",)
        px = dec.preview_image(f.payload or b"") if preview else dec.image(f.payload or b"", DECODE_THREADS)
        if f.alpha is not None:
            alpha = f.alpha_plane()
            if preview:
                alpha = patches.block_mean(alpha, f.header.patch)
            px = np.concatenate([px, alpha[:, :, None]], axis=2)
        self.set_as_raw(np.ascontiguousarray(px).tobytes(), self.mode)
        return -1, 0


def _meta(value: Any) -> bytes | None:
    if value is None or value == b"" or value == "":
        return None
    if isinstance(value, Image.Exif):
        value = value.tobytes()
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    info = im.encoderinfo
    exif = _meta(info.get("exif", im.info.get("exif")))
    if exif is not None and exif.startswith(_EXIF_PREFIX):
        exif = exif[len(_EXIF_PREFIX) :]
    data = encode(
        im,
        info.get("codebook"),
        quality=info.get("quality"),
        embed_codebook=bool(info.get("embed_codebook", False)),
        icc_profile=_meta(info.get("icc_profile", im.info.get("icc_profile"))) or b"",
        exif=exif or b"",
        xmp=_meta(info.get("xmp", im.info.get("xmp"))) or b"",
        threads=int(info.get("threads", 1)),
        compact=bool(info.get("compact", False)),
    )
    fp.write(data)


def register() -> None:
    """Register the `.sym` format with Pillow: open, save, extension, MIME type and decoder."""
    Image.register_open(FORMAT, SymImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME)
    Image.register_decoder("sym", SymDecoder)


register()
