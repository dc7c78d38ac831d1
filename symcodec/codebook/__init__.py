"""Codebooks: the `.symcb` file and `Codebook` object (formats/symcb.md), the registry, SymDNN import."""
