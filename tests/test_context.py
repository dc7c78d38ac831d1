"""Entropy model 2 (context model): round trips, versions, corrupt input, and the bits target on real images."""
from __future__ import annotations

import struct

import numpy as np
import pytest

import symcodec
from symcodec import codec, container, registry
from symcodec.codebook import Codebook
from symcodec.context import ContextModel, Expert, mean_bits, static_freqs, train_context
from symcodec.errors import DecodeError, FormatError, SymcodecError, UnknownChunkError, UnsupportedVersionError

CTX = "cifar10-2x2-k2048-ctx"


@pytest.fixture(scope="module")
def small(cifar_images: np.ndarray) -> tuple[Codebook, np.ndarray]:
    """A K=128 codebook with a context model fitted on the first 48 images (the last 16 are held out)."""
    base = registry.get("cifar10-2x2-k128")
    sym = codec.quantize(cifar_images, base)
    model = train_context([sym[:48, c] for c in range(3)], base.counts, m=16, progress=False)
    cb = Codebook(base.centroids, patch=2, counts=base.counts, name="t", context=model.to_bytes())
    return cb, sym


def test_round_trip_and_length(small: tuple[Codebook, np.ndarray]) -> None:
    cb, sym = small
    m = cb.context_model
    for i in range(48, 64):
        planes = [sym[i, c] for c in range(3)]
        data = m.encode(planes)
        out = m.decode(data, [(16, 16)] * 3)
        assert all((a == b).all() for a, b in zip(out, planes))
        bits = m.code_length(planes)
        assert bits / 8 <= len(data) <= bits / 8 + 8  # rANS adds the 32-bit state and padding only


def test_beats_static_on_held_out(small: tuple[Codebook, np.ndarray]) -> None:
    cb, sym = small
    held = [sym[48:, c] for c in range(3)]
    static = cb.model.cross_entropy(sym[48:]) / sym[48:].size
    assert mean_bits(cb.context_model, held) < static - 0.5


def test_odd_shapes_and_single_plane(small: tuple[Codebook, np.ndarray], photo: np.ndarray) -> None:
    cb, _ = small
    for img in (photo[:37, :23], photo[:1, :1], photo[:9, :40, 0]):
        data = symcodec.encode(img, cb)
        assert data[8] == 2  # container major version 2
        ref = codec.reconstruct(codec.quantize(img, cb), cb, shape=img.shape)
        assert np.array_equal(symcodec.decode(data, cb), ref)


def test_versions(small: tuple[Codebook, np.ndarray], cifar_images: np.ndarray) -> None:
    cb, _ = small
    base = registry.get("cifar10-2x2-k128")
    v1 = symcodec.encode(cifar_images[0], base)
    v2 = symcodec.encode(cifar_images[0], cb)
    assert v1[8] == 1 and v2[8] == 2
    assert np.array_equal(symcodec.decode(v1), symcodec.decode(v2, cb))
    # model id 2 under a version-1 preamble, and model 1 under version 2, are both invalid
    f = container.read(v2)
    h = f.header
    bad = container.SymFile(container.Header(h.width, h.height, h.mode, h.patch, h.colour, 1, h.k, h.codebook_id, h.symbols), payload=f.payload).to_bytes()
    bad = bad[:8] + b"\x02" + bad[9:]
    with pytest.raises(FormatError):
        container.read(bad)
    with pytest.raises(FormatError):
        container.read(v2[:8] + b"\x01" + v2[9:])
    with pytest.raises(UnsupportedVersionError):
        container.read(v2[:8] + b"\x04" + v2[9:])
    # a file that needs the context model does not decode with the plain codebook
    with pytest.raises(SymcodecError):
        symcodec.decode(v2, base)


def test_codebook_format(small: tuple[Codebook, np.ndarray]) -> None:
    cb, _ = small
    raw = cb.to_bytes()
    assert raw[8] == 2
    back = Codebook.from_bytes(raw)
    assert back.id == cb.id and back.context == cb.context
    assert cb.id != registry.get("cifar10-2x2-k128").id
    with pytest.raises(UnknownChunkError):  # CTXM is critical and unknown to version 1
        Codebook.from_bytes(raw[:8] + b"\x01" + raw[9:])


def test_corrupt_model_and_stream(small: tuple[Codebook, np.ndarray]) -> None:
    cb, sym = small
    m = cb.context_model
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


def test_static_freqs() -> None:
    f = static_freqs(np.array([1, 5, 1000, 3]))
    assert f.sum() == 1 << 16 and f.min() >= 1


def test_shipped_ctx_codebook_bits(cifar_test_tar) -> None:
    """The shipped context codebook: <= 6.5 bits/symbol on 64 evenly spaced CIFAR-10 test images (bytes written)."""
    from symcodec.sources import iter_samples

    cb = registry.get(CTX)
    assert cb.context_model is not None and cb.k == 2048
    x = [s.array() for i, s in enumerate(iter_samples(cifar_test_tar)) if i % 156 == 0][:64]  # all ten classes
    sizes = []
    for img in x:
        f = container.read(symcodec.encode(img, cb))
        sizes.append(len(f.payload))
        assert np.array_equal(codec.decode_symbols(f, cb), codec.quantize(img, cb))
    assert 8 * np.mean(sizes) / 768 <= 6.5


def test_cli_trains_context_models(cifar_test_tar, tmp_path) -> None:
    from click.testing import CliRunner

    from symcodec.cli import main

    out = tmp_path / "c.symcb"
    r = CliRunner().invoke(main, ["train-codebook", str(cifar_test_tar), "-k", "16", "--limit", "40", "--max-patches", "4000",
                                  "--niter", "2", "--context-model", "-o", str(out)])
    assert r.exit_code == 0, r.output
    cb = Codebook.load(out)
    assert cb.context_model is not None and cb.to_bytes()[8] == 2
    out2 = tmp_path / "d.symcb"
    r = CliRunner().invoke(main, ["train-context", "cifar10-2x2-k128", str(cifar_test_tar), "--limit", "30", "-o", str(out2)])
    assert r.exit_code == 0, r.output
    cb2 = Codebook.load(out2)
    assert cb2.context_model is not None and np.array_equal(cb2.centroids, registry.get("cifar10-2x2-k128").centroids)
    r = CliRunner().invoke(main, ["train-context", "no-such-codebook", str(cifar_test_tar), "-o", str(out2)])
    assert r.exit_code != 0 and "Traceback" not in r.output
