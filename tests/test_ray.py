"""The Ray engine of `symcodec convert` and `read_sym`, on real Ray clusters on this machine (issue 21).

A 2-CPU cluster is shared by the module; the node-loss test builds a 2-node one. Every conversion is checked
byte for byte against the local engine's output for the same source.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from symcodec.data.convert import convert
from symcodec.data.sources import iter_samples
from symcodec.errors import DatasetError

from tests.conftest import ROOT, need_shared
from tests.test_hostile import HOSTILE, _tar

ray = pytest.importorskip("ray") if os.environ.get("CI") != "true" else __import__("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from symcodec.data.ray import read_sym  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster with 2 CPUs (one head node), as `ray start --head --num-cpus 2` makes."""
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    c.wait_for_nodes()
    yield c
    c.shutdown()


def _files(dst: Path) -> dict[str, bytes]:
    """Every output file (tar shards, manifest with its DST-dependent first line dropped) by name."""
    out = {}
    for p in sorted(dst.iterdir()):
        data = p.read_bytes()
        out[p.name] = data.split(b"\n", 1)[1] if p.name.endswith(".jsonl") else data
    return out


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "symcodec.cli", "convert", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0


def _encoder_pids() -> list[int]:
    """Processes of the Ray Data actors that encode (their title is ray::MapWorker(MapBatches(ChunkEncoder)))."""
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if b"ChunkEncoder" in Path(f"/proc/{p}/cmdline").read_bytes():
                    pids.append(int(p))
            except OSError:
                pass
    return pids


def _wait_for(cond, timeout: float, what: str) -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_same_bytes_as_the_local_engine_cifar_shards(cluster, cifar_test_tar, tmp_path):
    kw = {"limit": 2500, "chunk": 200, "shard_size": 1000, "progress": False}
    a = convert(cifar_test_tar, tmp_path / "local" / "o-%03d.tar", workers=2, **kw)
    b = convert(cifar_test_tar, tmp_path / "ray" / "o-%03d.tar", workers=2, engine="ray", address=cluster.address, **kw)
    assert a.images == b.images == 2500 and a.failures == b.failures == 0
    fa, fb = _files(tmp_path / "local"), _files(tmp_path / "ray")
    assert sorted(fa) == ["o-000.tar", "o-001.tar", "o-002.tar", "o.manifest.jsonl"]
    assert fa == fb
    assert not ray.is_initialized()  # the driver disconnected; the cluster goes on


def test_same_bytes_as_the_local_engine_photo_folder(cluster, tmp_path):
    photos = need_shared("datasets/photos")
    a = convert(photos, tmp_path / "local" / "photos.tar", workers=2, progress=False)
    b = convert(photos, tmp_path / "ray" / "photos.tar", workers=2, engine="ray", address=cluster.address, progress=False)
    assert a.images == b.images == 23 and a.failures == b.failures == 0
    assert _files(tmp_path / "local") == _files(tmp_path / "ray")


def test_folder_output_and_per_image_errors(cluster, tmp_path):
    """Hostile names are refused and recorded; nothing lands outside DST; the good images are the local engine's."""
    src = _tar(tmp_path / "src.tar", ["good/a.jpg", *HOSTILE, "x/./y/../b.jpg"])
    for engine in ("local", "ray"):
        dst = tmp_path / "work" / engine
        dst.parent.mkdir(exist_ok=True)
        s = convert(src, dst, workers=2, engine=engine, address=cluster.address if engine == "ray" else None, progress=False)
        assert s.images == 2 and s.failures == len(HOSTILE) and all("unsafe member name" in e for e in s.errors)
    assert not list(tmp_path.rglob("escape*")) and not Path("/tmp/symcodec-abs-escape3.sym").exists()
    assert _files(tmp_path / "work" / "local" / "good") == _files(tmp_path / "work" / "ray" / "good")
    assert (tmp_path / "work" / "local" / "x" / "b.sym").read_bytes() == (tmp_path / "work" / "ray" / "x" / "b.sym").read_bytes()
    p = _cli(str(src), str(tmp_path / "cli.tar"), "--engine", "ray", "--address", cluster.address)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 1 and "Traceback" not in err and err.count("unsafe member name") == len(HOSTILE)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The local engine's output for 8,000 CIFAR-10 training images (the kill tests' source)."""
    src = need_shared("datasets/cifar10-jpeg/train.tar")
    dst = tmp_path_factory.mktemp("ref") / "o-%03d.tar"
    convert(src, dst, workers=2, limit=8000, shard_size=3000, chunk=64, progress=False)  # chunk: where shard_done lines fall
    return dst.parent


KILL_ARGS = ["--limit", "8000", "--chunk", "64", "--shard-size", "3000", "-j", "2", "--engine", "ray"]


def test_a_killed_actor_is_restarted_and_the_run_finishes(cluster, reference, tmp_path):
    src = need_shared("datasets/cifar10-jpeg/train.tar")
    p = _cli(str(src), str(tmp_path / "o-%03d.tar"), *KILL_ARGS, "--address", cluster.address)
    manifest = tmp_path / "o.manifest.jsonl"
    _wait_for(lambda: _lines(manifest) > 1000 or p.poll() is not None, 300, "the first images")
    pids = _encoder_pids()
    assert pids and p.poll() is None
    os.kill(pids[0], signal.SIGKILL)
    killed_at = _lines(manifest)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-2000:]
    assert killed_at < 8000
    assert _files(tmp_path) == _files(reference)


def test_a_killed_driver_resumes_without_redoing_committed_shards(cluster, reference, tmp_path):
    src = need_shared("datasets/cifar10-jpeg/train.tar")
    args = [str(src), str(tmp_path / "o-%03d.tar"), *KILL_ARGS, "--address", cluster.address, "--json"]
    p = _cli(*args)
    _wait_for(lambda: (tmp_path / "o-000.tar").exists() or p.poll() is not None, 300, "the first shard")
    p.kill()
    p.wait()
    first = (tmp_path / "o-000.tar").stat()
    p = _cli(*args)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-2000:]
    s = json.loads(out)
    assert s["skipped"] >= 3000 and s["images"] == 8000 - s["skipped"]
    assert (tmp_path / "o-000.tar").stat().st_mtime_ns == first.st_mtime_ns  # committed shard left alone
    assert _files(tmp_path) == _files(reference)


def test_the_run_finishes_when_a_node_is_removed(reference, tmp_path):
    """Two nodes of one CPU each; the node that is not the driver's goes away mid-run."""
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        worker = c.add_node(num_cpus=1)
        c.wait_for_nodes()
        src = need_shared("datasets/cifar10-jpeg/train.tar")
        p = _cli(str(src), str(tmp_path / "o-%03d.tar"), *KILL_ARGS, "--address", c.address)
        manifest = tmp_path / "o.manifest.jsonl"
        _wait_for(lambda: len(_encoder_pids()) >= 2 and _lines(manifest) > 500 or p.poll() is not None, 300, "two encoders")
        assert p.poll() is None
        c.remove_node(worker)
        removed_at = _lines(manifest)
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        assert removed_at < 8000
        assert _files(tmp_path) == _files(reference)
    finally:
        c.shutdown()


def test_read_sym_gives_the_decoded_images_and_labels(cluster, reference):
    shards = sorted(str(p) for p in reference.glob("o-*.tar"))
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        ds = read_sym(shards[:2])
        rows = ds.take_all()
    finally:
        ray.shutdown()
    want = [s for sh in shards[:2] for s in iter_samples(sh)]
    assert len(rows) == len(want) == 6000
    got = {r["key"]: r for r in rows}
    for s in want[::500]:
        r = got[s.key]
        assert np.array_equal(r["image"], s.array()) and r["label"] == s.label
    assert sorted({r["label"] for r in rows}) == sorted({s.label for s in want})


def test_read_sym_refuses_a_path_that_holds_no_sym(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(DatasetError):
        read_sym([str(tmp_path)])


def test_unknown_engine_is_an_error(tmp_path, cifar_test_tar):
    with pytest.raises(DatasetError, match="unknown engine"):
        convert(cifar_test_tar, tmp_path / "o.tar", engine="spark", progress=False)


def test_a_truncated_source_is_one_error_line(cluster, cifar_test_tar, tmp_path):
    bad = tmp_path / "trunc.tar"
    bad.write_bytes(cifar_test_tar.read_bytes()[:3_000_000])
    p = _cli(str(bad), str(tmp_path / "o.tar"), "--engine", "ray", "--address", cluster.address)
    _, err = p.communicate(timeout=300)
    lines = [x for x in err.replace("\r", "\n").splitlines() if x.strip() and not x.startswith("convert:")]
    assert p.returncode == 1 and lines == [f"Error: DatasetError: tar archive {bad} is truncated"], lines
