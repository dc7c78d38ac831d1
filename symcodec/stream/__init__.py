"""Streaming .sym images over small-packet, lossy links (formats/stream-v1.md)."""
