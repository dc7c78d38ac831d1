"""Classifier weights shipped with symcodec (data only; see the *.md cards)."""
