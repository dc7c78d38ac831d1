"""`symcodec convert`: correctness against the library, failures, resume after interrupt and kill -9."""
from __future__ import annotations

import io
import itertools
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import symcodec
from symcodec.cli import main
from symcodec.codec.image import samples
from symcodec.data import convert as cv
from symcodec.data import tario
from symcodec.data.sources import iter_samples, read_idx
from symcodec.data.workers import encode_many
from symcodec.errors import DatasetError, UnsupportedModeError

CB = "cifar10-2x2-k2048"


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf if m.isfile()}


def _manifest(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _shard_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.tar"))}


def test_tar_to_sym_shards_match_the_library(tmp_path, cifar_test_tar):
    s = cv.convert(cifar_test_tar, tmp_path / "o-%03d.tar", workers=0, shard_size=100, limit=250, chunk=64, progress=False)
    assert (s.images, s.failures, s.skipped) == (250, 0, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o-000.tar", "o-001.tar", "o-002.tar", "o.manifest.jsonl"]
    src = list(itertools.islice(iter_samples(cifar_test_tar), 250))
    got: dict[str, bytes] = {}
    for shard in ("o-000.tar", "o-001.tar", "o-002.tar"):
        got.update(_members(tmp_path / shard))
    assert list(got) == [x.key[:-4] + ".sym" for x in src]  # source order, class folders kept
    for x in src[::25]:
        with Image.open(io.BytesIO(x.data)) as im:
            assert got[x.key[:-4] + ".sym"] == symcodec.encode(im)  # the same default choice (cifar10-ycc420-k512-ppm)
    recs = [r for r in _manifest(tmp_path / "o.manifest.jsonl")[1:] if "key" in r]
    assert [r["label"] for r in recs] == [x.label for x in src]
    assert sum(r["src_bytes"] for r in recs) == sum(len(x.data) for x in src) == s.total_src_bytes
    assert sum(r["out_bytes"] for r in recs) == sum(len(b) for b in got.values()) == s.total_out_bytes


def test_encode_many_equals_encode(cifar_images, photo):
    cb = symcodec.get_codebook(CB)
    imgs = [cifar_images[0], cifar_images[1], photo[:31, :45], photo[:31, :45, 0]]
    rgba = Image.fromarray(photo[:20, :22]).convert("RGBA")
    rgba.putalpha(77)
    imgs.append(rgba)
    packed = [(*samples(x), None) for x in imgs]
    packed[2][2]["icc_profile"] = b"fake icc"
    ref = [symcodec.encode(x, cb, icc_profile=b"fake icc" if i == 2 else None) for i, x in enumerate(imgs)]
    assert encode_many(packed, cb) == ref
    assert encode_many(packed[:1], cb, embed_codebook=True) == [symcodec.encode(imgs[0], cb, embed_codebook=True)]
    ycc = symcodec.get_codebook("cifar10-ycc420-k512-ppm")  # colour 1 in batches too; an L image is refused, alone
    got = encode_many(packed[:4], ycc)
    assert got[:3] == [symcodec.encode(x, ycc, icc_profile=b"fake icc" if i == 2 else None) for i, x in enumerate(imgs[:3])]
    assert isinstance(got[3], UnsupportedModeError)


def test_fast_tar_reader_matches_tarfile(tmp_path, cifar_test_tar):
    fast = [(s.key, s.label, s.bytes()) for s in itertools.islice(cv.iter_source(cifar_test_tar), 300)]  # Refs, read
    slow = [(s.key, s.label, s.data) for s in itertools.islice(iter_samples(cifar_test_tar), 300)]
    assert fast == slow
    wds = tmp_path / "wds.tar"  # WebDataset layout and a long (PAX) name
    with tarfile.open(wds, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in [("a.jpg", fast[0][2]), ("a.cls", b"3"), ("x" * 120 + ".jpg", fast[1][2]), ("x" * 120 + ".cls", b"7")]:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    assert [(s.key, s.label) for s in cv.iter_source(wds)] == [(s.key, s.label) for s in iter_samples(wds)] == [("a.jpg", "3"), ("x" * 120 + ".jpg", "7")]
    member = tario.member("y" * 150 + ".sym", b"abc")
    with tarfile.open(fileobj=io.BytesIO(member + tario.end(len(member)))) as tf:
        assert tf.getnames() == ["y" * 150 + ".sym"]
    (tmp_path / "cut.tar").write_bytes(wds.read_bytes()[:1500])
    with pytest.raises(DatasetError, match="truncated"):
        list(cv.iter_source(tmp_path / "cut.tar"))


def test_webdataset_labels_and_reverse_to_png(tmp_path, cifar_test_tar):
    src = list(itertools.islice(iter_samples(cifar_test_tar), 6))
    wds = tmp_path / "wds.tar"
    with tarfile.open(wds, "w") as tf:
        for i, x in enumerate(src):
            for name, data in ((f"{i:04d}.jpg", x.data), (f"{i:04d}.cls", str(i % 3).encode())):
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    cv.convert(wds, tmp_path / "s.tar", workers=0, progress=False)
    m = _members(tmp_path / "s.tar")
    assert list(m) == [f"{i:04d}.{e}" for i in range(6) for e in ("sym", "cls")]
    assert m["0004.cls"] == b"1"
    s = cv.convert(tmp_path / "s.tar", tmp_path / "png", workers=0, progress=False)  # direction inferred
    assert s.images == 6
    for i in range(6):
        px = np.asarray(Image.open(tmp_path / "png" / f"{i:04d}.png"))
        assert np.array_equal(px, symcodec.decode(m[f"{i:04d}.sym"]))
        assert (tmp_path / "png" / f"{i:04d}.cls").read_text() == str(i % 3)
    cv.convert(tmp_path / "s.tar", tmp_path / "j.tar", to="jpeg", quality=90, workers=0, progress=False)
    j = _members(tmp_path / "j.tar")
    assert list(j) == [n.replace(".sym", ".jpg") for n in m]
    back = np.asarray(Image.open(io.BytesIO(j["0002.jpg"])), np.float64)
    assert Image.open(io.BytesIO(j["0002.jpg"])).format == "JPEG"
    assert np.abs(back - symcodec.decode(m["0002.sym"])).mean() < 4


def test_corrupt_image_is_reported_skipped_and_exit_code_says_so(tmp_path, cifar_images):
    src = tmp_path / "src"
    for i, cls in enumerate(["cat", "dog"]):
        (src / cls).mkdir(parents=True)
        Image.fromarray(cifar_images[i]).save(src / cls / "a.png")
    (src / "dog" / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    r = CliRunner()
    res = r.invoke(main, ["convert", str(src), str(tmp_path / "out"), "-j", "0", "-c", CB])
    assert res.exit_code == 1, res.output
    assert "skipped dog/b.jpg" in res.output and "1 failed" in res.output
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.sym")) == ["cat/a.sym", "dog/a.sym"]
    assert np.array_equal(symcodec.decode(tmp_path / "out/cat/a.sym"), symcodec.purify(cifar_images[0], CB))
    res = r.invoke(main, ["convert", str(src), str(tmp_path / "out"), "-j", "0", "-c", CB])  # rerun: nothing to do, still failing
    assert res.exit_code == 1 and "0 images" in res.output and "3 done before" in res.output
    res = r.invoke(main, ["convert", str(src), str(tmp_path / "out"), "-j", "0", "-c", CB, "--limit", "2"])  # a shorter prefix is done too
    assert res.exit_code == 1 and "0 images" in res.output and "Traceback" not in res.output
    res = r.invoke(main, ["convert", str(src), str(tmp_path / "out"), "-j", "0", "-c", "cifar10-2x2-k128"])
    assert res.exit_code == 1 and "other settings" in res.output and "Traceback" not in res.output


def test_resume_after_interrupt_gives_identical_output(tmp_path, cifar_test_tar, monkeypatch):
    kw = {"workers": 0, "shard_size": 100, "limit": 300, "chunk": 32, "progress": False}
    cv.convert(cifar_test_tar, tmp_path / "clean" / "o-%03d.tar", **kw)
    real, calls = cv._collect, []

    def crash_after_five(*a):
        if len(calls) == 5:
            raise KeyboardInterrupt
        calls.append(1)
        real(*a)

    monkeypatch.setattr(cv, "_collect", crash_after_five)
    dst = tmp_path / "crash" / "o-%03d.tar"
    with pytest.raises(KeyboardInterrupt):
        cv.convert(cifar_test_tar, dst, **kw)
    monkeypatch.setattr(cv, "_collect", real)
    part = tmp_path / "crash" / "o-001.tar.partial"
    assert part.exists() and (tmp_path / "crash" / "o-000.tar").exists()
    with open(part, "ab") as f:  # bytes the crash wrote after the last journaled member
        f.write(b"half a member")
    with open(tmp_path / "crash" / "o.manifest.jsonl", "a") as f:
        f.write('{"key":"half a line')
    s = cv.convert(cifar_test_tar, dst, **kw)
    assert s.skipped == 160 and s.images == 140 and s.total_images == 300
    assert _shard_bytes(tmp_path / "crash") == _shard_bytes(tmp_path / "clean")
    assert not list((tmp_path / "crash").glob("*.partial"))


def test_folder_output_resumes_after_interrupt(tmp_path, cifar_test_tar, monkeypatch):
    kw = {"workers": 0, "limit": 120, "chunk": 16, "progress": False}
    real, calls = cv._collect, []

    def crash_after_three(*a):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(1)
        real(*a)

    monkeypatch.setattr(cv, "_collect", crash_after_three)
    with pytest.raises(KeyboardInterrupt):
        cv.convert(cifar_test_tar, tmp_path / "out", **kw)
    monkeypatch.setattr(cv, "_collect", real)
    # the 4th chunk's files were written (rename: complete) but never journaled; the rerun redoes them
    assert len(list((tmp_path / "out").rglob("*.sym"))) == 64
    assert sum("key" in r for r in _manifest(tmp_path / "out" / "manifest.jsonl")) == 48
    s = cv.convert(cifar_test_tar, tmp_path / "out", **kw)
    assert (s.skipped, s.images, s.total_images) == (48, 72, 120)
    files = sorted((tmp_path / "out").rglob("*.sym"))
    assert len(files) == 120 and not list((tmp_path / "out").rglob("*.tmp"))
    recs = [r for r in _manifest(tmp_path / "out" / "manifest.jsonl") if "key" in r]
    assert [r["path"] for r in recs] == [x.key[:-4] + ".sym" for x in itertools.islice(iter_samples(cifar_test_tar), 120)]
    assert all(symcodec.decode(f).shape == (32, 32, 3) for f in files)


def test_kill9_mid_run_then_rerun_completes(tmp_path, cifar_test_tar):
    """A real crash: SIGKILL the whole process group (parent and spawn workers) mid-way, rerun, check everything."""
    dst = tmp_path / "o-%03d.tar"
    cmd = [sys.executable, "-m", "symcodec.cli", "convert", str(cifar_test_tar), str(dst), "--shard-size", "500",
           "--limit", "3000", "-j", "2", "--chunk", "64"]
    man = tmp_path / "o.manifest.jsonl"
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    killed_at = None
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None:
        n = man.read_bytes().count(b"\n") if man.exists() else 0
        if n > 700:  # at least one finished shard and a partial one
            os.killpg(p.pid, signal.SIGKILL)
            killed_at = n
            break
        time.sleep(0.005)
    p.wait()
    assert killed_at is not None, "the conversion finished before it could be killed"
    assert len(list(tmp_path.glob("*.partial"))) == 1
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "3000 images" in res.stdout and "done before" in res.stdout
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".*tmp"))
    shards = sorted(tmp_path.glob("o-*.tar"))
    assert [s.name for s in shards] == [f"o-{i:03d}.tar" for i in range(6)]
    src = list(itertools.islice(iter_samples(cifar_test_tar), 3000))
    names = []
    for shard in shards:
        m = _members(shard)
        assert len(m) == 500
        for name, data in m.items():
            assert symcodec.decode(data).shape == (32, 32, 3)
        names += list(m)
    assert names == [x.key[:-4] + ".sym" for x in src]  # none missing, none twice, in order
    recs = [r for r in _manifest(man) if "key" in r]
    assert len(recs) == 3000 and not any("error" in r for r in recs)
    for x in src[::300]:  # and they are the right bytes
        with Image.open(io.BytesIO(x.data)) as im:
            assert _members(tmp_path / f"o-{src.index(x) // 500:03d}.tar")[x.key[:-4] + ".sym"] == symcodec.encode(im)


def test_mnist_source(tmp_path, mnist_test_images):
    s = cv.convert(mnist_test_images, tmp_path / "m.tar", codebook=CB, workers=0, limit=50, progress=False)
    assert s.images == 50 and s.total_src_bytes == 50 * 784
    m = _members(tmp_path / "m.tar")
    assert m["t10k/00000.cls"] == b"7" and m["t10k/00001.cls"] == b"2"  # labels from the idx1 file beside it
    px = symcodec.decode(m["t10k/00003.sym"])
    assert px.shape == (28, 28)
    raw = read_idx(mnist_test_images)[3]
    assert np.array_equal(px, symcodec.purify(raw, CB))


def test_fast_jpeg_path_gives_pillows_pixels(cifar_test_tar, tmp_path):
    """data.fastjpeg decodes every CIFAR-10 test JPEG exactly as Image.open does, and leaves other files to it."""
    from PIL import Image

    from symcodec.data import fastjpeg

    n = 0
    for s in iter_samples(cifar_test_tar):
        a = fastjpeg.decode(s.data)
        with Image.open(io.BytesIO(s.data)) as im:
            assert a is not None and np.array_equal(a, np.asarray(im))
        n += 1
    assert n == 10000
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 50, 3), np.uint8)
    cases = {}
    for name, kw, arr in (("progressive", {"progressive": True}, x), ("grey", {}, x[:, :, 0]),
                          ("icc", {"icc_profile": b"\0" * 128}, x), ("big", {}, np.zeros((70, 20, 3), np.uint8)), ("cmyk", None, x)):
        b = io.BytesIO()
        im = Image.fromarray(arr)
        if kw is None:
            im.convert("CMYK").save(b, "JPEG")
        else:
            im.save(b, "JPEG", **kw)
        cases[name] = b.getvalue()
    assert np.array_equal(fastjpeg.decode(cases["progressive"]), np.asarray(Image.open(io.BytesIO(cases["progressive"]))))
    assert np.array_equal(fastjpeg.decode(cases["grey"]), np.asarray(Image.open(io.BytesIO(cases["grey"]))))
    for name in ("icc", "big", "cmyk"):  # metadata, size, colour transforms: the general path
        assert fastjpeg.decode(cases[name]) is None, name
    assert fastjpeg.decode(b"\xff\xd8\xff") is None and fastjpeg.decode(b"") is None and fastjpeg.decode(cases["grey"][:300]) is None
    # what Pillow refuses, the fast path refuses (found by tools/fuzz.py's jpeg target): truncated data, a marker Pillow
    # does not know (TEM), a JFIF segment too short for its fields, a quantisation table cut short
    g = cases["grey"]
    sos = g.index(b"\xff\xda")
    refused = {"truncated": g[:-2], "tem": g[:sos] + b"\xff\x01\x00\x04ab" + g[sos:],
               "short jfif": g[:4] + b"\x00\x07JFIF\x00" + g[4 + (g[4] << 8 | g[5]):],
               "short dqt": g[:sos] + b"\xff\xdb\x00\x05\x00\x01\x02" + g[sos:]}
    for name, data in refused.items():
        with pytest.raises((OSError, SyntaxError)):  # UnidentifiedImageError is an OSError
            with Image.open(io.BytesIO(data)) as im:
                im.load()
        assert fastjpeg.decode(data) is None, name
