"""The spec's test vectors (formats/vectors): encoder output and decoder output byte for byte."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import symcodec
from symcodec import errors
from symcodec.codebook.codebook import Codebook
from symcodec.format import sym

VEC = Path(__file__).resolve().parents[1] / "formats" / "vectors"
MANIFEST = json.loads((VEC / "vectors.json").read_text())


@pytest.mark.parametrize("v", MANIFEST["valid"], ids=lambda v: v["name"])
def test_valid_vector_decodes_and_reencodes_exactly(v):
    data = (VEC / f"{v['name']}.sym").read_bytes()
    assert hashlib.sha256(data).hexdigest() == v["sym_sha256"]
    expected = np.asarray(Image.open(VEC / f"{v['name']}.expected.png"))
    assert np.array_equal(symcodec.decode(data), expected)
    src = np.asarray(Image.open(VEC / f"{v['name']}.src.png"))
    f = symcodec.read(data)
    cb = Codebook.from_bytes(f.codebook) if v["embedded"] else symcodec.get_codebook(v["codebook"])
    assert cb.hexid == v["codebook_id"]
    if v.get("form") == "compact":  # section 9: plain files, no text chunk; version 1 is read, no longer written
        assert f.compact and data[:4] == b"\x89sym" and f.compact_version == v["compact_version"]
        again = symcodec.encode(src, cb, compact=True)
        if v["compact_version"] == 1:  # from the chunked file, whose header holds the whole codebook id
            plain = symcodec.read(symcodec.encode(src, cb))
            again = sym.pack_compact(plain.header, plain.payload, version=1)
    else:
        again = symcodec.encode(src, cb, embed_codebook=v["embedded"], text={"vector": v["name"]}, icc_profile=f.icc_profile,
                                exif=f.exif, xmp=f.xmp, quality=v.get("quality"))
    assert again == data


def test_vectors_cover_every_model_and_colour_a_reader_must_accept():
    valid = MANIFEST["valid"]
    assert {(v["entropy_model"], v["colour"]) for v in valid} == {(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (4, 0), (4, 1)}
    assert {v["mode"] for v in valid} == {"L", "LA", "RGB", "RGBA"} and {v["patch"] for v in valid} == {2, 4, 8}
    assert any(v["metadata"] for v in valid) and any(not v["embedded"] for v in valid)
    compact = [v for v in valid if v.get("form") == "compact"]
    for version in (1, 2):
        assert {(v["entropy_model"], v["colour"], v["mode"]) for v in compact if v["compact_version"] == version} >= {
            (1, 0, "L"), (1, 0, "RGB"), (3, 1, "RGB")}


@pytest.mark.parametrize("v", MANIFEST["invalid"], ids=lambda v: v["name"])
def test_invalid_vector_raises_its_error(v):
    data = (VEC / f"{v['name']}.sym").read_bytes()
    with pytest.raises(getattr(errors, v["error"])):
        symcodec.decode(data)
