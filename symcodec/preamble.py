"""File preambles that may carry one of several major versions (`.sym` 1/2, `.symcb` 1/2)."""
from __future__ import annotations

import struct
from typing import BinaryIO

from .errors import NotSymFileError, TruncatedError, UnsupportedVersionError


def read_preamble(fp: BinaryIO, signature: bytes, majors: tuple[int, ...], kind: str) -> tuple[int, int]:
    """Check the signature and that the major version is one of `majors`; return (major, minor)."""
    head = fp.read(len(signature) + 4)
    if len(head) < len(signature) or head[: len(signature)] != signature:
        if head and head == signature[: len(head)]:
            msg = f"truncated {kind} signature"
            raise TruncatedError(msg)
        msg = f"not a {kind} file"
        raise NotSymFileError(msg)
    if len(head) < len(signature) + 4:
        msg = f"truncated {kind} preamble"
        raise TruncatedError(msg)
    major, minor, _reserved = struct.unpack("<BBH", head[len(signature) :])
    if major not in majors:
        msg = f"{kind} major version {major} is not supported (this reader handles {', '.join(map(str, majors))})"
        raise UnsupportedVersionError(msg)
    return major, minor
