"""The command line: happy paths, and bad input as a one-line error with a non-zero exit."""
from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

import symcodec
from symcodec.cli import main


def test_encode_decode_info_codebooks(tmp_path, photo):
    src = tmp_path / "in.png"
    Image.fromarray(photo[:50, :61]).save(src)
    r = CliRunner()
    out = tmp_path / "x.sym"
    res = r.invoke(main, ["encode", str(src), "-o", str(out), "-c", "cifar10-2x2-k1024"])
    assert res.exit_code == 0, res.output
    res = r.invoke(main, ["decode", str(out), "-o", str(tmp_path / "y.png")])
    assert res.exit_code == 0, res.output
    y = np.asarray(Image.open(tmp_path / "y.png"))
    assert np.array_equal(y, symcodec.purify(photo[:50, :61], "cifar10-2x2-k1024"))
    res = r.invoke(main, ["info", str(out), "--json"])
    d = json.loads(res.output)
    assert d["width"] == 61 and d["height"] == 50 and d["codebook"] == "cifar10-2x2-k1024"
    res = r.invoke(main, ["codebooks"])
    assert res.exit_code == 0 and "cifar10-2x2-k2048" in res.output
    assert r.invoke(main, ["--help"]).exit_code == 0


def test_bad_inputs_give_one_line_errors(tmp_path, photo):
    r = CliRunner()
    junk = tmp_path / "junk.sym"
    junk.write_bytes(b"not an image at all")
    for args in (["decode", str(junk), "-o", str(tmp_path / "o.png")], ["info", str(junk)], ["encode", str(junk), "-o", str(tmp_path / "o.sym")]):
        res = r.invoke(main, args)
        assert res.exit_code != 0
        assert "Traceback" not in res.output and res.output.strip().count("\n") == 0, res.output
        assert res.output.startswith("Error:")
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "o.sym").exists()
    good = tmp_path / "good.png"
    Image.fromarray(photo[:8, :8]).save(good)
    res = r.invoke(main, ["encode", str(good), "-o", str(tmp_path / "o.sym"), "-c", "no-such-codebook"])
    assert res.exit_code != 0 and "no-such-codebook" in res.output


def test_outputs_follow_the_umask(tmp_path):
    """encode, decode and convert write files as open() would (0666 less the umask), not mkstemp's 0600."""
    import stat

    src = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src)
    ref = tmp_path / "ref"
    ref.write_bytes(b"")
    want = stat.S_IMODE(ref.stat().st_mode)
    r = CliRunner().invoke(main, ["encode", str(src), "-o", str(tmp_path / "a.sym")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["decode", str(tmp_path / "a.sym"), "-o", str(tmp_path / "b.png")])
    assert r.exit_code == 0, r.output
    for name in ("a.sym", "b.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == want


def test_codebooks_listing_stays_aligned_with_long_names(tmp_path, monkeypatch):
    from symcodec.codebook import registry

    cb = registry.get("mnist-2x2-k32")
    long = symcodec.Codebook(cb.centroids, 2, cb.counts, name="a-codebook-with-a-rather-long-name-k32")
    long.save(tmp_path / "long.symcb")
    monkeypatch.setenv("SYMCODEC_CODEBOOKS", str(tmp_path))
    r = CliRunner().invoke(main, ["codebooks"])
    rows = [x for x in r.stdout.splitlines() if x.strip()]
    starts = {x.index(e.id[:12]) for x, e in zip(rows[1:], registry.entries())}
    assert r.exit_code == 0 and len(starts) == 1 and rows[0].index("id") == starts.pop()


def test_codebooks_install_and_remove(tmp_path, monkeypatch):
    """A codebook trained or received elsewhere, installed once, decodes files that name it by id (issue 19 item 2)."""
    from symcodec.codebook import registry

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cb = registry.get("mnist-2x2-k32")
    mine = symcodec.Codebook(cb.centroids[::-1].copy(), 2, cb.counts[::-1].copy(), name="my-k32")
    mine.save(tmp_path / "my.symcb")
    data = symcodec.encode(np.zeros((8, 8), np.uint8), tmp_path / "my.symcb")
    (tmp_path / "x.sym").write_bytes(data)
    r = CliRunner().invoke(main, ["decode", str(tmp_path / "x.sym"), "-o", str(tmp_path / "x.png")])
    assert r.exit_code != 0 and "CodebookNotFoundError" in r.output
    r = CliRunner().invoke(main, ["codebooks", "install", str(tmp_path / "my.symcb")])
    assert r.exit_code == 0 and (tmp_path / "cache" / "symcodec" / "codebooks" / "my-k32.symcb").exists(), r.output
    r = CliRunner().invoke(main, ["decode", str(tmp_path / "x.sym"), "-o", str(tmp_path / "x.png")])
    assert r.exit_code == 0, r.output
    assert "my-k32" in CliRunner().invoke(main, ["codebooks"]).stdout
    r = CliRunner().invoke(main, ["codebooks", "remove", "mnist-2x2-k32"])
    assert r.exit_code != 0 and "not removed" in r.output  # a shipped codebook stays
    r = CliRunner().invoke(main, ["codebooks", "remove", "my-k32"])
    assert r.exit_code == 0 and "my-k32" not in CliRunner().invoke(main, ["codebooks"]).stdout
    bad = tmp_path / "bad.symcb"
    bad.write_bytes(b"junk")
    r = CliRunner().invoke(main, ["codebooks", "install", str(bad)])
    assert r.exit_code != 0 and "Traceback" not in r.output


def test_first_use_is_announced_and_training_is_quiet(tmp_path, mnist_test_images):
    """A cold numba cache is detected (the CLI then says it compiles); train-codebook shows a bar with a total and
    no faiss iteration lines (issue 19 items 6 and 9)."""
    import os
    import subprocess
    import sys

    probe = "from symcodec.jit import cache_is_warm; print(cache_is_warm())"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "nb")}
    assert subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True).stdout.strip() == "False"
    r = subprocess.run([sys.executable, "-m", "symcodec.cli", "train-codebook", str(mnist_test_images), "-k", "16",
                        "--limit", "300", "-o", str(tmp_path / "k16.symcb")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "/300" in r.stderr and "Iteration" not in r.stderr and "k-means: done" in r.stderr
