"""Streaming .sym images over small-packet, lossy links (formats/stream.md)."""
