"""All exceptions and warnings raised by symcodec, in one place."""
from __future__ import annotations


class SymcodecError(Exception):
    """Root of every symcodec error."""


class FormatError(SymcodecError, ValueError):
    """A file or stream is not in the expected format, or is corrupt."""


class NotSymFileError(FormatError):
    """The bytes do not start with a known symcodec signature."""


class TruncatedError(FormatError):
    """The data ends before the format says it should."""


class ChecksumError(FormatError):
    """A chunk's CRC-32 does not match its contents."""


class UnsupportedVersionError(FormatError):
    """The file's major version is newer than this reader."""


class UnknownChunkError(FormatError):
    """A critical chunk type is unknown to this reader."""


class DecodeError(FormatError):
    """The entropy-coded payload could not be decoded."""


class ImageTooLargeError(SymcodecError, ValueError):
    """Image dimensions exceed the configured pixel cap."""


class EmptyImageError(SymcodecError, ValueError):
    """An image has zero width or height."""


class UnsupportedModeError(SymcodecError, ValueError):
    """An image mode (or array shape/dtype) that symcodec cannot encode."""


class CodebookError(SymcodecError, ValueError):
    """A codebook is invalid or does not fit the data."""


class CodebookNotFoundError(CodebookError, LookupError):
    """A codebook name or id could not be resolved."""


class OptionError(SymcodecError, ValueError):
    """An option outside its range, or one that does not apply (e.g. a quality for a patch codebook)."""


class DatasetError(SymcodecError, ValueError):
    """A dataset source cannot be read."""


class SymcodecWarning(UserWarning):
    """Root of symcodec warnings."""


class ModeConversionWarning(SymcodecWarning):
    """An image was converted to a supported mode before encoding."""
