"""Vector quantisation: patches, colour modes and the exact nearest-centroid search (formats/sym.md section 4)."""
