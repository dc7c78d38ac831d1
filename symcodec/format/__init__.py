"""Byte formats: PNG-style chunk framing and the `.sym` container (formats/sym.md, formats/symcb.md)."""
