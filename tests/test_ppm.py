"""Entropy model 3 (escape-chain context tables): round trips, versions, corrupt input, and the targets on real images."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symcodec
from symcodec.codebook import registry
from symcodec.codebook.codebook import Codebook
from symcodec.codec.decoder import decode_symbols
from symcodec.entropy import ppm as ppm_mod
from symcodec.entropy.ppm import Level, PPMModel, Table
from symcodec.entropy.rans import encode_events
from symcodec.errors import CodebookError, DecodeError, FormatError, SymcodecError, UnknownChunkError
from symcodec.format import sym as symfmt
from symcodec.train.ppm import mean_bits, train_ppm
from symcodec.vq.colour import rgb_to_planes

RGB3 = "cifar10-2x2-k2048-ppm"
YCC3 = "cifar10-ycc420-k512-ppm"


@pytest.fixture(scope="module")
def small(cifar_images: np.ndarray) -> tuple[Codebook, np.ndarray]:
    """A K=128 codebook with a model-3 table fitted on the first 48 images (the last 16 are held out)."""
    base = registry.get("cifar10-2x2-k128")
    sym = symcodec.quantize(cifar_images, base)
    model = train_ppm([sym[:48, c] for c in range(3)], base.k, tmin=2, progress=False)
    cb = Codebook(base.centroids, patch=2, counts=base.counts, name="t3", context=model)
    return cb, sym


def test_round_trip_and_length(small: tuple[Codebook, np.ndarray]) -> None:
    cb, sym = small
    m = cb.context
    assert isinstance(m, PPMModel) and m.model_id == 3
    for i in range(40, 64):
        planes = [sym[i, c] for c in range(3)]
        data = m.encode(planes)
        flat = np.concatenate([p.ravel() for p in planes])
        assert data == encode_events(*m.events(flat, m.layout([(16, 16)] * 3)))  # one kernel: the events' rANS stream
        out = m.decode(data, [(16, 16)] * 3)
        assert all((a == b).all() for a, b in zip(out, planes))
        bits = m.code_length(planes)
        assert bits / 8 <= len(data) <= bits / 8 + 8


def test_encoder_bitmaps_match_the_row_search(small: tuple[Codebook, np.ndarray], cifar_images: np.ndarray, monkeypatch) -> None:
    """The encoder's single-reference bitmaps (K <= 4096) give the bytes of the binary search they replace."""
    cases = [(small[0].context, [[small[1][i, c] for c in range(3)] for i in range(40, 64)])]
    rgb = registry.get(RGB3)
    sym = symcodec.quantize(cifar_images[:16], rgb)
    cases.append((rgb.context, [[sym[i, c] for c in range(3)] for i in range(16)]))
    for m, images in cases:
        with_bitmaps = [m.encode(planes) for planes in images]
        assert m._bitmaps is not None and (m._bitmaps[0] >= 0).any()
        monkeypatch.setattr(ppm_mod, "_BITMAP_MAX_K", 0)
        plain = PPMModel.from_bytes(m.to_bytes(), m.k)
        plain.encoder_tables()  # built lazily: build them while bitmaps are off
        monkeypatch.undo()
        assert [plain.encode(planes) for planes in images] == with_bitmaps
        assert plain._bitmaps is not None and (plain._bitmaps[0] < 0).all()


def test_per_symbol_and_per_row_layouts_agree(small: tuple[Codebook, np.ndarray], photo: np.ndarray, monkeypatch) -> None:
    """Small images read context references from a per-symbol table, large ones from row and column maps: same bytes."""
    m = small[0].context
    rng = np.random.default_rng(5)
    shapes = [[(16, 16)] * 3, [(9, 13)] * 3, [(1, 7), (1, 7)], [(20, 11), (10, 6), (10, 6)]]
    cases = [(sh, [rng.integers(0, m.k, s) for s in sh]) for sh in shapes]
    cases.append(([(16, 16)] * 3, [small[1][50, c] for c in range(3)]))
    for sh, planes in cases:
        assert m.layout(sh)[3].ndim == 3
        data = m.encode(planes)
        monkeypatch.setattr(ppm_mod, "_NB_MAX", 0)
        m2 = PPMModel.from_bytes(m.to_bytes(), m.k)
        assert m2.layout(sh)[3].ndim == 2
        assert m2.encode(planes) == data
        assert all((a == b).all() for a, b in zip(m2.decode(data, sh), planes))
        monkeypatch.undo()


def test_beats_static_on_held_out(small: tuple[Codebook, np.ndarray]) -> None:
    cb, sym = small
    static = sum(cb.static.code_length(list(s)) for s in sym[48:]) / sym[48:].size
    assert mean_bits(cb.context, [sym[48:, c] for c in range(3)]) < static - 0.3


def test_odd_shapes_single_plane_and_ycc420(small: tuple[Codebook, np.ndarray], photo: np.ndarray, cifar_images: np.ndarray) -> None:
    cb, _ = small
    for img in (photo[:37, :23], photo[:1, :1], photo[:9, :40, 0], np.dstack([photo[:6, :7], photo[:6, :7, :1]])):
        data = symcodec.encode(img, cb)
        assert data[8] == 3  # container major version 3
        ref = symcodec.reconstruct(symcodec.quantize(img[..., :3] if img.ndim == 3 else img, cb), cb, shape=img[..., :3].shape if img.ndim == 3 else img.shape)
        out = symcodec.decode(data, cb)
        assert np.array_equal(out[..., :3] if img.ndim == 3 else out, ref)
    ycc = registry.get("cifar10-ycc420-k512")
    pl = [np.stack(p) for p in zip(*(rgb_to_planes(x) for x in cifar_images[:32]))]
    sym = [symcodec.quantize(p[..., None], ycc)[:, 0] for p in pl]
    m = train_ppm(sym, ycc.k, "ycc420", tmin=2, progress=False)
    cb3 = Codebook(ycc.centroids, patch=2, counts=ycc.counts, colour=1, name="y3", context=m)
    for img in (cifar_images[40], photo[:13, :29]):
        data = symcodec.encode(img, cb3)
        assert data[8] == 3 and np.array_equal(symcodec.decode(data, cb3), symcodec.decode(symcodec.encode(img, ycc), ycc))


def test_versions(small: tuple[Codebook, np.ndarray], cifar_images: np.ndarray) -> None:
    cb, _ = small
    base = registry.get("cifar10-2x2-k128")
    v3 = symcodec.encode(cifar_images[0], cb)
    assert np.array_equal(symcodec.decode(v3, cb), symcodec.decode(symcodec.encode(cifar_images[0], base)))
    f = symfmt.read(v3)
    assert f.header.model_id == 3
    with pytest.raises(FormatError):  # model 3 under a version-2 preamble
        symfmt.read(v3[:8] + b"\x02" + v3[9:])
    h = f.header
    bad = symfmt.SymFile(symfmt.Header(h.width, h.height, h.mode, h.patch, h.colour, 2, h.k, h.codebook_id, h.symbols), payload=f.payload).to_bytes()
    with pytest.raises(FormatError):  # model 2 under version 3
        symfmt.read(bad[:8] + b"\x03" + bad[9:])
    with pytest.raises(SymcodecError):
        symcodec.decode(v3, base)


def test_codebook_format(small: tuple[Codebook, np.ndarray]) -> None:
    cb, _ = small
    raw = cb.to_bytes()
    assert raw[8] == 3
    back = Codebook.from_bytes(raw)
    assert back.id == cb.id and back.context_chunk == cb.context_chunk and back.context_chunk[0] == b"PPMT"
    assert cb.id != registry.get("cifar10-2x2-k128").id
    with pytest.raises(UnknownChunkError):  # PPMT is critical and unknown to version 2
        Codebook.from_bytes(raw[:8] + b"\x02" + raw[9:])
    with pytest.raises(CodebookError):  # one context-model slot, of a known kind and the codebook's K
        Codebook(cb.centroids, counts=cb.counts, context=(b"XXXX", b""))
    with pytest.raises(CodebookError):
        Codebook(cb.centroids, counts=cb.counts, context=registry.get("cifar10-2x2-k2048-ctx").context)


def _table(m: PPMModel) -> Table:
    return m.tables[0][1]


def test_corrupt_model_and_stream(small: tuple[Codebook, np.ndarray]) -> None:
    cb, sym = small
    m = cb.context
    t = _table(m)

    def with_table(**kw) -> None:
        tabs = [list(x) for x in m.tables]
        tabs[0][1] = Table(**{"keys": t.keys, "lens": t.lens, "syms": t.syms, "freqs": t.freqs, **kw})
        PPMModel(m.k, m.slots, m.static, tabs)

    bad_syms = t.syms.copy()
    bad_syms[0] = m.k
    dup = t.syms.copy()
    dup[1] = dup[0]
    big = t.freqs.copy()
    big[0] = 65535
    for kw in ({"syms": bad_syms}, {"syms": dup}, {"freqs": big}, {"keys": t.keys[::-1].copy()}, {"lens": t.lens[:-1]}):
        with pytest.raises(FormatError):
            with_table(**kw)
    with pytest.raises(FormatError):  # a same-plane reference that looks ahead
        PPMModel(m.k, [[Level(((0, 0, 1),))]], m.static[:1], [[t]])
    raw = m.to_bytes()
    for cut in (raw[:-10], struct.pack("<I", 5) + b"junk!", raw[:3]):
        with pytest.raises(FormatError):
            PPMModel.from_bytes(cut, m.k)
    planes = [sym[50, c] for c in range(3)]
    data = m.encode(planes)
    for cut in (data[:4], data[:-4], data + b"\0\0\0\0", b""):
        with pytest.raises(DecodeError):
            m.decode(cut, [(16, 16)] * 3)


_RAW = {}


def _raw(small) -> tuple[PPMModel, bytes]:
    if not _RAW:
        m = small[0].context
        payload = m.to_bytes()
        _RAW["m"], _RAW["raw"] = m, zlib.decompress(payload[4:])
    return _RAW["m"], _RAW["raw"]


edits = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(edits, st.integers(0, 1 << 20), st.booleans())
def test_fuzz_tables_and_streams(small, ed, cut, truncate) -> None:
    """Mutated tables and streams raise symcodec errors (or decode), never crash or hang."""
    m, raw = _raw(small)
    b = bytearray(raw)
    for pos, val in ed[:3]:
        b[pos % len(b)] = val
    if truncate:
        b = b[: cut % (len(b) + 1)]
    try:
        PPMModel.from_bytes(struct.pack("<I", len(b)) + zlib.compress(bytes(b), 1), m.k)
    except FormatError:
        pass
    data = bytearray(m.encode([small[1][60, c] for c in range(3)]))
    for pos, val in ed:
        data[pos % len(data)] = val
    if truncate:
        data = data[: 4 * ((cut % (len(data) + 1)) // 4)]
    try:
        m.decode(bytes(data), [(16, 16)] * 3)
    except DecodeError:
        pass


def test_cli_trains_model_3(cifar_test_tar, tmp_path) -> None:
    from click.testing import CliRunner

    from symcodec.cli import main

    out = tmp_path / "p.symcb"
    r = CliRunner().invoke(main, ["train-context", "cifar10-2x2-k128", str(cifar_test_tar), "--limit", "30", "-o", str(out)])
    assert r.exit_code == 0, r.output
    cb = Codebook.load(out)
    assert isinstance(cb.context, PPMModel) and cb.to_bytes()[8] == 3
    assert np.array_equal(cb.centroids, registry.get("cifar10-2x2-k128").centroids)
    out2 = tmp_path / "c.symcb"
    r = CliRunner().invoke(main, ["train-codebook", str(cifar_test_tar), "-k", "16", "--limit", "40", "--max-patches", "4000",
                                  "--niter", "2", "--context-model", "-o", str(out2)])
    assert r.exit_code == 0, r.output
    cb2 = Codebook.load(out2)
    assert isinstance(cb2.context, PPMModel) and cb2.to_bytes()[8] == 3
    r = CliRunner().invoke(main, ["train-context", "no-such-codebook", str(cifar_test_tar), "-o", str(out2)])
    assert r.exit_code != 0 and "Traceback" not in r.output


def test_shipped_model_3_codebooks_meet_the_targets(cifar_test_tar) -> None:
    """k2048 RGB: <= 6.5 bits/symbol coded; ycc420: <= 0.4x the source JPEG bytes (64 evenly spaced test images)."""
    from symcodec.data.sources import iter_samples

    smp = [s for i, s in enumerate(iter_samples(cifar_test_tar)) if i % 156 == 0][:64]
    cb = registry.get(RGB3)
    assert isinstance(cb.context, PPMModel) and cb.k == 2048
    payload = 0
    for s in smp:
        img = s.array()
        f = symfmt.read(symcodec.encode(img, cb))
        payload += len(f.payload)
        assert np.array_equal(np.stack(decode_symbols(f, cb)), symcodec.quantize(img, cb))
    assert 8 * payload / (768 * len(smp)) <= 6.5
    ycc = registry.get(YCC3)
    assert isinstance(ycc.context, PPMModel) and ycc.colour == 1
    sym_bytes = sum(len(symcodec.encode(s.array(), ycc)) for s in smp)
    assert sym_bytes <= 0.4 * sum(len(s.data) for s in smp)
