"""Stream packets (formats/stream.md): layout, band coding, loss concealment, corruption, garbage, replay."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

import symcodec
from symcodec.errors import ChecksumError, FormatError, SymcodecError, TruncatedError
from symcodec.stream import bands, link, receiver
from symcodec.stream import packets as pk
from symcodec.stream.net import item_packets

CB = "cifar10-2x2-k256"


@pytest.fixture(scope="module")
def cb():
    return symcodec.get_codebook(CB)


@pytest.fixture(scope="module")
def cifar_packets(cifar_images, cb):
    """Per image: (symbols, packets) for 16 real CIFAR-10 test images."""
    out = []
    for i, a in enumerate(cifar_images[:16]):
        sym = symcodec.quantize(a, cb)
        out.append((sym, bands.encode_bands(sym, cb, 32, 32, stream=0x1234, image=i)))
    return out


def _receive(pkts, **kw):
    rx = receiver.Receiver(None, keep_pixels=True, **kw)
    for i, p in enumerate(pkts):
        rx.feed(p, float(i))
    return rx, rx.close()


def test_layout_matches_spec(cifar_packets, cb):
    sym, pkts = cifar_packets[0]
    p = pkts[1]
    assert p[:2] == b"SY" and p[2] == 1 and p[3] == pk.BAND
    length, stream, image, index, count = struct.unpack_from("<HHHHH", p, 4)
    assert (length, stream, image, index, count) == (len(p), 0x1234, 0, 1, len(pkts))
    assert p[14:22] == cb.id[:8]
    w, h, mode, patch, km1, seg = struct.unpack_from("<HHBBHH", p, 22)
    assert (w, h, mode, patch, km1 + 1) == (32, 32, 3, 2, cb.k) and 1 <= seg <= 16
    assert struct.unpack("<I", p[-4:])[0] == zlib.crc32(p[:-4])
    assert (len(p) - 36) % 4 == 0
    # the band's symbols are exactly the segments i, i+n, ... of the spec
    geo = pk.parse(p).geometry()
    order, starts = geo.band_order(count)
    band = cb.static.decode_flat(p[32:-4], starts[2] - starts[1])
    np.testing.assert_array_equal(band, sym.ravel()[order[starts[1]:starts[2]]])


@pytest.mark.parametrize("size", [64, 128, 255, 1400])
def test_packets_fit_and_roundtrip(cifar_packets, cb, cifar_images, size):
    for i, a in enumerate(cifar_images[:4]):
        sym = symcodec.quantize(a, cb)
        pkts = bands.encode_bands(sym, cb, 32, 32, stream=1, image=i, size=size)
        assert all(len(p) <= size for p in pkts)
        n = len(pkts)
        assert n == 1 or (3 * pk.parse(pkts[0]).geometry().nseg) % n != 0
        rx, done = _receive(pkts)
        assert len(done) == 1 and done[0].ok and done[0].received == n
        np.testing.assert_array_equal(done[0].symbols_array, sym)
        np.testing.assert_array_equal(done[0].pixels, symcodec.reconstruct(sym, cb, shape=a.shape))


def test_large_photo_uses_segments(photo, cb):
    sym = symcodec.quantize(photo, cb)
    pkts = bands.encode_bands(sym, cb, photo.shape[1], photo.shape[0], stream=2, image=0)
    geo = pk.parse(pkts[0]).geometry()
    assert geo.seg < geo.grid[1] and all(len(p) <= 255 for p in pkts)
    # a lost packet costs only its own symbols: drop every 7th packet
    kept = [p for i, p in enumerate(pkts) if i % 7 != 3]
    _, done = _receive(kept)
    r = done[0]
    assert r.received == len(kept) and r.symbols - r.symbols_received > 0
    mask = np.zeros(sym.size, bool)
    order, starts = geo.band_order(len(pkts))
    for i in range(len(pkts)):
        if i % 7 != 3:
            mask[order[starts[i]:starts[i + 1]]] = True
    assert r.symbols_received == mask.sum()
    np.testing.assert_array_equal(r.symbols_array.ravel()[mask], sym.ravel()[mask])


def test_concealment_beats_flat_fill(cifar_packets, cb, cifar_images):
    """Filling a lost band from neighbours must be closer to the truth than filling with the commonest symbol."""
    err_conceal = err_flat = err_vertical = 0.0
    for (sym, pkts), a in zip(cifar_packets, cifar_images):
        geo = pk.parse(pkts[0]).geometry()
        parts = {q.index: q.payload for q in map(pk.parse, pkts[1:])}
        got, mask, bad = bands.decode_bands(geo, len(pkts), parts, cb)
        assert bad == 0 and 0 < mask.sum() < mask.size
        flat = np.where(mask, got, int(np.argmax(cb.counts)))
        ref = symcodec.reconstruct(sym, cb, shape=a.shape).astype(float)
        err_conceal += ((symcodec.reconstruct(bands.conceal(got, mask, cb), cb, shape=a.shape) - ref) ** 2).mean()
        err_flat += ((symcodec.reconstruct(flat, cb, shape=a.shape) - ref) ** 2).mean()
        vert = bands._conceal_vertical(got, mask, cb)
        err_vertical += ((symcodec.reconstruct(vert, cb, shape=a.shape) - ref) ** 2).mean()
    assert err_conceal < err_vertical < 0.5 * err_flat  # the other planes' detail helps


def test_first_packet_is_a_preview(cifar_packets):
    """Band 0 alone spreads over every plane and most rows (interleaved order)."""
    sym, pkts = cifar_packets[0]
    _, done = _receive(pkts[:1])
    geo = pk.parse(pkts[0]).geometry()
    order, starts = geo.band_order(len(pkts))
    idx = order[starts[0]:starts[1]]
    planes, rows = idx // 256, (idx % 256) // 16
    assert set(planes.tolist()) == {0, 1, 2} and len(set(rows.tolist())) >= 16 // len(pkts) * 2
    assert done[0].ok and done[0].pixels.shape == (32, 32, 3)


def test_no_corrupted_packet_is_ever_accepted(cifar_packets):
    """Flip 1..16 random bits in every packet many times: parsing must refuse all, no image may appear."""
    rng = np.random.default_rng(7)
    bad = []
    for _, pkts in cifar_packets:
        for p in pkts:
            for _ in range(40):
                b = bytearray(p)
                for bit in rng.choice(8 * len(b), size=int(rng.integers(1, 17)), replace=False):
                    b[bit // 8] ^= 1 << (bit % 8)
                bad.append(bytes(b))
    for b in bad:
        with pytest.raises(SymcodecError):
            pk.parse(b)
    rx, done = _receive(bad)
    assert done == [] and rx.counts["invalid"] == len(bad) and rx.counts["accepted"] == 0
    # corrupt copies first, then the clean packets: the images decode exactly
    clean = [p for _, pkts in cifar_packets for p in pkts]
    rx, done = _receive(bad[:: 7] + clean)
    assert len(done) == len(cifar_packets)
    for (sym, _), r in zip(cifar_packets, sorted(done, key=lambda r: r.name)):
        np.testing.assert_array_equal(r.symbols_array, sym)


def test_garbage_truncated_and_replayed(cifar_packets):
    rng = np.random.default_rng(3)
    pkts = [p for _, pk_ in cifar_packets[:4] for p in pk_]
    junk = [rng.bytes(int(n)) for n in rng.integers(0, 300, 50)]
    junk += [p[:k] for p in pkts for k in (0, 1, 5, 14, len(p) - 1)]
    junk += [b"SY" + rng.bytes(200), b"SY\x01\x01\xff\xff" + rng.bytes(40)]
    for j in junk:
        with pytest.raises(SymcodecError):
            pk.parse(j)
    with pytest.raises(TruncatedError):
        pk.parse(pkts[0][:-1])
    with pytest.raises(ChecksumError):
        pk.parse(pkts[0][:-1] + bytes([pkts[0][-1] ^ 1]))
    stream = junk[:20] + pkts + junk[20:] + pkts + pkts[:3]  # replays after completion
    rx, done = _receive(stream)
    assert len(done) == 4 and all(r.received == r.packets for r in done)
    assert rx.counts["late"] == len(pkts) + 3 and rx.counts["invalid"] == len(junk)
    for (sym, _), r in zip(cifar_packets, sorted(done, key=lambda r: r.name)):
        np.testing.assert_array_equal(r.symbols_array, sym)


def test_duplicates_reorder_and_conflicts(cifar_packets, cb, cifar_images):
    sym, pkts = cifar_packets[0]
    rx, done = _receive(list(reversed(pkts)) + pkts[:1])
    np.testing.assert_array_equal(done[0].symbols_array, sym)
    # a packet claiming the same image with another geometry is refused, not mixed in
    other = bands.encode_bands(symcodec.quantize(cifar_images[1, :16], cb), cb, 32, 16, stream=0x1234, image=0)
    rx, done = _receive(pkts[:1] + other[:1] + pkts[1:])
    assert rx.counts["conflicting"] == 1
    np.testing.assert_array_equal(done[0].symbols_array, sym)


def test_deframer_resyncs(cifar_packets):
    rng = np.random.default_rng(5)
    pkts = [p for _, pk_ in cifar_packets[:3] for p in pk_]
    blob = b"".join(rng.bytes(int(rng.integers(0, 30))) + b"SY" + p for p in pkts) + b"S"
    d = pk.Deframer()
    got = []
    cuts = np.sort(rng.integers(0, len(blob), 40))
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(blob)]):
        got += d.feed(blob[a:b])
    assert len(got) < len(pkts)  # the last packet sits behind a false magic until the stream ends
    got += d.feed(b"", final=True)
    assert [g.key + (g.index,) for g in got] == [pk.parse(p).key + (pk.parse(p).index,) for p in pkts]


def test_file_packets_roundtrip_and_loss(cifar_test_tar, cb):
    from symcodec.data.sources import iter_samples

    data = next(iter(iter_samples(cifar_test_tar))).data
    pkts = pk.file_packets(data, 9, 1, 128)
    assert len(pkts) > 2 and all(len(p) <= 128 for p in pkts)
    _, done = _receive(pkts[::-1])
    assert done[0].ok and done[0].pixels.shape == (32, 32, 3)
    _, done = _receive(pkts[1:])
    assert not done[0].ok and done[0].pixels is None
    with pytest.raises(FormatError):
        pk.file_packets(b"", 1, 1)


def test_link_emulator(cifar_packets):
    pkts = [p for _, pk_ in cifar_packets for p in pk_]
    a = link.Link(rate=9600, loss=0.2, corrupt=0.1, duplicate=0.1, reorder=0.1, seed=11)
    out = a.transmit(pkts)
    b = link.Link(rate=9600, loss=0.2, corrupt=0.1, duplicate=0.1, reorder=0.1, seed=11).transmit(pkts)
    assert out == b
    assert a.clock == pytest.approx(sum(len(p) for p in pkts) * 8 / 9600)
    assert a.stats["sent"] == len(pkts) and 0 < a.stats["lost"] < len(pkts) // 2
    assert len(out) == len(pkts) - a.stats["lost"] + a.stats["duplicated"]
    with pytest.raises(ValueError):
        link.Link(loss=1.5)


def test_item_packets_from_sym_file_keeps_its_codebook(cifar_images):
    """A .sym file is streamed as its own symbols with its own codebook, without re-quantising."""
    cb2 = symcodec.get_codebook("cifar10-2x2-k512")
    data = symcodec.encode(cifar_images[0], cb2)
    pkts = item_packets(data, None, symcodec.get_codebook(CB), 3, 0)
    assert pk.parse(pkts[0]).geometry().cb_prefix == cb2.id[:8]
    _, done = _receive(pkts)
    np.testing.assert_array_equal(done[0].pixels, symcodec.decode(data))


def test_parity_restores_one_lost_band_per_group(cifar_images, cb):
    sym = symcodec.quantize(cifar_images[3], cb)
    pkts = bands.encode_bands(sym, cb, 32, 32, stream=4, image=0, fec=2)
    parsed = [pk.parse(p) for p in pkts]
    nb = parsed[0].count
    par = [p for p in parsed if p.type == pk.PARITY]
    assert all(len(p) <= 255 for p in pkts) and len(par) == -(-nb // 2) and len(pkts) == nb + len(par)
    m = par[0].parity_fields()[0]
    raw = pkts[nb]  # spec section 4 byte layout of group 0's parity packet
    members = [c for c in parsed[:nb] if c.index % m == 0]
    k = len(members)
    assert raw[3] == pk.PARITY and raw[14:32] == pkts[0][14:32] and struct.unpack_from("<H", raw, 32)[0] == m
    assert list(struct.unpack_from(f"<{k}H", raw, 34)) == [len(c.payload) // 4 for c in members]
    xor = np.zeros(max(len(c.payload) for c in members), np.uint8)
    for c in members:
        xor[: len(c.payload)] ^= np.frombuffer(c.payload, np.uint8)
    assert raw[34 + 2 * k:-4] == xor.tobytes()
    # lose band 0 and band 1 (different groups when m > 1): both come back exactly
    lost = {0, 1} if m > 1 else {0}
    rx, done = _receive([p for p, q in zip(pkts, parsed) if not (q.type == pk.BAND and q.index in lost)])
    r = done[0]
    assert r.recovered == len(lost) and r.received == nb - len(lost)
    np.testing.assert_array_equal(r.symbols_array, sym)
    assert rx.report()["images_complete"] == 1
    # lose two bands of one group: parity cannot help, the image is concealed
    same = [i for i in range(nb) if i % m == 0][:2]
    _, done = _receive([p for p, q in zip(pkts, parsed) if not (q.type == pk.BAND and q.index in same)])
    assert done[0].recovered == 0 and done[0].symbols_received < done[0].symbols
    # parity arriving first describes the image too; a corrupted parity packet is refused
    bad = bytearray(pkts[nb])  # group 0's parity
    bad[40] ^= 4
    with pytest.raises(ChecksumError):
        pk.parse(bytes(bad))
    rx, done = _receive([pkts[nb], bytes(bad)] + pkts[1:nb])
    np.testing.assert_array_equal(done[0].symbols_array, sym)
    assert rx.counts["invalid"] == 1


def test_greyscale_mnist_stream(mnist_test_images):
    """L images (one plane) stream and conceal too: vertical neighbours only."""
    from symcodec.data.sources import load_arrays

    cbm = symcodec.get_codebook("mnist-2x2-k64")
    x, _, _ = load_arrays(mnist_test_images, limit=4)
    for i, a in enumerate(x[..., 0]):
        pkts = item_packets(None, a, cbm, 6, i, size=64)
        geo = pk.parse(pkts[0]).geometry()
        assert geo.mode == 1 and len(pkts) > 1
        _, done = _receive(pkts)
        np.testing.assert_array_equal(done[0].pixels, symcodec.purify(a, cbm))
        _, done = _receive(pkts[1:])
        r = done[0]
        assert r.pixels.shape == (28, 28) and 0 < r.symbols_received < r.symbols


def test_receive_with_nothing_arriving_stops_in_time(tmp_path):
    import time

    from symcodec.stream.net import receive

    t = time.monotonic()
    rep = receive("127.0.0.1:0", tmp_path / "o", timeout=0.5, status=False)
    assert time.monotonic() - t < 5 and rep["images"] == 0 and (tmp_path / "o" / "report.json").exists()


def test_unknown_codebook_is_reported_not_fatal(cifar_packets, cb):
    sym, pkts = cifar_packets[0]
    p = pk.parse(pkts[0])
    geo = p.geometry()
    fake = pk.Geometry(b"\xee" * 8, geo.width, geo.height, geo.mode, geo.patch, geo.k, geo.seg)
    alien = pk.band_packet(fake, 0x4321, 0, 0, p.count, p.payload)
    rx, done = _receive([alien] + pkts)
    by = {r.name: r for r in done}
    assert not by["4321-00000"].ok and "eeeeeeee" in by["4321-00000"].error
    np.testing.assert_array_equal(by["1234-00000"].symbols_array, sym)


@pytest.mark.parametrize("k", [128, 2048])
def test_every_band_covers_every_plane(cifar_images, k):
    cbk = symcodec.get_codebook(f"cifar10-2x2-k{k}")
    for i, a in enumerate(cifar_images[:8]):
        pkts = bands.encode_bands(symcodec.quantize(a, cbk), cbk, 32, 32, stream=1, image=i)
        geo = pk.parse(pkts[0]).geometry()
        order, starts = geo.band_order(len(pkts))
        for b in range(len(pkts)):
            assert set((order[starts[b]:starts[b + 1]] // 256).tolist()) == {0, 1, 2}


def test_band_indices_match_the_sorted_band_order():
    """The receiver's per-band indices (no sort of the whole image) are band_order's slices, for every band."""
    from symcodec.stream.packets import Geometry

    rng = np.random.default_rng(5)
    for _ in range(40):
        w, h = rng.integers(1, 90, 2)
        mode, patch = int(rng.choice([1, 3])), int(rng.choice([2, 4]))
        g = Geometry(b"\0" * 8, int(w), int(h), mode, patch, 256, 1)
        g = Geometry(b"\0" * 8, int(w), int(h), mode, patch, 256, int(rng.integers(1, g.grid[1] + 1)))
        n = int(rng.integers(1, min(g.units, 40) + 1))
        order, starts = g.band_order(n)
        for b in range(n):
            assert np.array_equal(g.band_indices(n, b), order[starts[b]:starts[b + 1]])


def test_max_symbols_is_a_true_bound():
    """No stream the coder writes holds more symbols than StaticModel.max_symbols says its bytes can (the receiver
    refuses a band that claims more without decoding it)."""
    from symcodec.codebook import registry

    rng = np.random.default_rng(2)
    for name in ("mnist-2x2-k32", "cifar10-2x2-k2048"):
        m = registry.get(name).static
        best = int(np.argmax(m.freq))
        for n in (1, 10, 1000, 20000):
            for sym in (np.full(n, best), rng.integers(0, m.k, n)):
                data = m.encode_flat(sym)
                assert n <= m.max_symbols(len(data))
