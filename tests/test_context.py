"""Entropy model 2 (frozen: shipped CTXM codebooks still read and write): round trips, versions, corrupt input, bits."""
from __future__ import annotations

import struct

import numpy as np
import pytest

import symcodec
from symcodec.codebook import registry
from symcodec.codebook.codebook import Codebook
from symcodec.codec.decoder import decode_symbols
from symcodec.entropy.context import ContextModel, Expert
from symcodec.errors import DecodeError, FormatError, SymcodecError, UnknownChunkError, UnsupportedVersionError
from symcodec.format import sym as symfmt

CTX = "cifar10-2x2-k2048-ctx"


@pytest.fixture(scope="module")
def shipped(cifar_images: np.ndarray) -> tuple[Codebook, np.ndarray]:
    """The shipped K=2048 codebook with entropy model 2, and the symbols of 64 real images."""
    cb = registry.get(CTX)
    return cb, symcodec.quantize(cifar_images, cb)


def test_round_trip_and_length(shipped: tuple[Codebook, np.ndarray]) -> None:
    cb, sym = shipped
    m = cb.context
    assert isinstance(m, ContextModel) and m.model_id == 2 and cb.entropy is m
    for i in range(16):
        planes = [sym[i, c] for c in range(3)]
        data = m.encode(planes)
        out = m.decode(data, [(16, 16)] * 3)
        assert all((a == b).all() for a, b in zip(out, planes))
        bits = m.code_length(planes)
        assert bits / 8 <= len(data) <= bits / 8 + 8  # rANS adds the 32-bit state and padding only


def test_beats_static(shipped: tuple[Codebook, np.ndarray]) -> None:
    cb, sym = shipped
    ctx = sum(cb.context.code_length(list(s)) for s in sym)
    static = sum(cb.static.code_length(list(s)) for s in sym)
    assert ctx < 0.75 * static


def test_odd_shapes_and_single_plane(shipped: tuple[Codebook, np.ndarray], photo: np.ndarray) -> None:
    cb, _ = shipped
    for img in (photo[:37, :23], photo[:1, :1], photo[:9, :40, 0]):
        data = symcodec.encode(img, cb)
        assert data[8] == 2  # container major version 2
        ref = symcodec.reconstruct(symcodec.quantize(img, cb), cb, shape=img.shape)
        assert np.array_equal(symcodec.decode(data, cb), ref)


def test_versions(cifar_images: np.ndarray) -> None:
    cb, base = registry.get(CTX), registry.get("cifar10-2x2-k2048")
    v1 = symcodec.encode(cifar_images[0], base)
    v2 = symcodec.encode(cifar_images[0], cb)
    assert v1[8] == 1 and v2[8] == 2
    assert np.array_equal(symcodec.decode(v1), symcodec.decode(v2, cb))
    # model id 2 under a version-1 preamble, and model 1 under version 2, are both invalid
    f = symfmt.read(v2)
    h = f.header
    bad = symfmt.SymFile(symfmt.Header(h.width, h.height, h.mode, h.patch, h.colour, 1, h.k, h.codebook_id, h.symbols),
                         payload=f.payload).to_bytes()
    bad = bad[:8] + b"\x02" + bad[9:]
    with pytest.raises(FormatError):
        symfmt.read(bad)
    with pytest.raises(FormatError):
        symfmt.read(v2[:8] + b"\x01" + v2[9:])
    with pytest.raises(UnsupportedVersionError):
        symfmt.read(v2[:8] + b"\x05" + v2[9:])
    # a file that needs the context model does not decode with the plain codebook
    with pytest.raises(SymcodecError):
        symcodec.decode(v2, base)


def test_codebook_format() -> None:
    cb = registry.get(CTX)
    raw = cb.to_bytes()
    assert raw[8] == 2
    back = Codebook.from_bytes(raw)
    assert back.id == cb.id and back.context_chunk == cb.context_chunk
    assert cb.id != registry.get("cifar10-2x2-k2048").id
    with pytest.raises(UnknownChunkError):  # CTXM is critical and unknown to version 1
        Codebook.from_bytes(raw[:8] + b"\x01" + raw[9:])
    assert Codebook(cb.centroids, 2, cb.counts, context=cb.context).id == cb.id  # from the model object: same chunk


def test_corrupt_model_and_stream(shipped: tuple[Codebook, np.ndarray]) -> None:
    cb, sym = shipped
    m = cb.context
    cand = m.cand.copy()
    cand[0, 0, 0] = m.k
    with pytest.raises(FormatError):
        ContextModel(m.f0, cand, m.score, m.dflt, m.slots)
    with pytest.raises(FormatError):  # a same-plane expert that looks ahead
        ContextModel(m.f0, m.cand, m.score, m.dflt, [[Expert(0, 0, 0, 1, 8)]])
    with pytest.raises(FormatError):
        ContextModel.from_bytes(m.to_bytes()[:-10], m.k)
    with pytest.raises(FormatError):
        ContextModel.from_bytes(struct.pack("<I", 5) + b"junk!", m.k)
    planes = [sym[50, c] for c in range(3)]
    data = m.encode(planes)
    for cut in (data[:4], data[:-4], data + b"\0\0\0\0", b""):
        with pytest.raises(DecodeError):
            m.decode(cut, [(16, 16)] * 3)


def test_shipped_ctx_codebook_bits(cifar_test_tar) -> None:
    """The shipped context codebook: <= 6.5 bits/symbol on 64 evenly spaced CIFAR-10 test images (bytes written)."""
    from symcodec.data.sources import iter_samples

    cb = registry.get(CTX)
    x = [s.array() for i, s in enumerate(iter_samples(cifar_test_tar)) if i % 156 == 0][:64]  # all ten classes
    sizes = []
    for img in x:
        f = symfmt.read(symcodec.encode(img, cb))
        sizes.append(len(f.payload))
        assert np.array_equal(np.stack(decode_symbols(f, cb)), symcodec.quantize(img, cb))
    assert 8 * np.mean(sizes) / 768 <= 6.5
