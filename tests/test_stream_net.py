"""Streaming over 127.0.0.1: UDP through a lossy relay, TCP with garbage and a sender that disconnects, the CLI."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import symcodec
from symcodec.cli import main
from symcodec.data.sources import iter_samples
from symcodec.stream import link, net
from symcodec.stream import packets as pk

CB = "cifar10-2x2-k256"


def _start_receiver(tmp: Path, **kw):
    """Run net.receive in a thread; return (address, thread, result holder)."""
    ready = threading.Event()
    box: dict = {}

    def on_ready(addr):
        box["addr"] = addr
        ready.set()

    def run():
        try:
            box["report"] = net.receive("127.0.0.1:0", tmp, ready=on_ready, status=False, **kw)
        except BaseException as exc:  # surfaced in the test thread
            box["error"] = exc
            ready.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(20) and "error" not in box
    return box["addr"], t, box


def _join(t, box):
    t.join(30)
    assert not t.is_alive(), "receiver did not stop in time"
    if "error" in box:
        raise box["error"]
    return box["report"]


@pytest.fixture(scope="module")
def jpegs(cifar_test_tar, tmp_path_factory):
    """A folder of 8 real CIFAR-10 test JPEGs (written from the tar)."""
    d = tmp_path_factory.mktemp("jpegs")
    for i, s in zip(range(8), iter_samples(cifar_test_tar)):
        (d / f"{i:02d}.jpg").write_bytes(s.data)
    return d


def test_udp_through_lossy_relay(jpegs, tmp_path):
    cb = symcodec.get_codebook(CB)
    net.item_packets(None, np.asarray(Image.open(jpegs / "00.jpg")), cb, 0, 0)  # warm-up: no stall mid-stream
    addr, t, box = _start_receiver(tmp_path / "out", timeout=10.0, image_timeout=0.5, expect=8)
    lk = link.Link(loss=0.2, corrupt=0.2, duplicate=0.2, reorder=0.1, seed=4)
    with link.UdpRelay(addr, lk) as relay:  # kept open until the receiver is done (the relay may lag)
        st = net.send(jpegs, f"127.0.0.1:{relay.address[1]}", codebook=CB, rate=200_000, progress=False)
        rep = _join(t, box)
    assert st["images"] == 8 and rep["accepted"] <= st["packets"]
    assert rep["invalid"] > 0 and lk.stats["corrupted"] > 0  # corrupted datagrams were refused (images below exact)
    assert rep["images"] == 8 and rep["packets_missing"] > 0
    truth = {f"{i:05d}": symcodec.purify(np.asarray(Image.open(jpegs / f"{i:02d}.jpg")), cb) for i in range(8)}
    for item in rep["items"]:
        got = np.asarray(Image.open(item["path"]))
        ref = truth[item["name"][-5:]]
        if item["received"] == item["packets"]:
            np.testing.assert_array_equal(got, ref)
        else:  # concealed, but still the right picture
            assert np.abs(got.astype(int) - ref).mean() < 25
        assert symcodec.decode(item["path"][:-4] + ".sym").shape == (32, 32, 3)
    assert json.loads((tmp_path / "out" / "report.json").read_text())["images"] == rep["images"]


def test_tcp_garbage_and_disconnect_mid_image(cifar_images, tmp_path):
    cb = symcodec.get_codebook(CB)
    imgs = [net.item_packets(None, a, cb, 0x0777, i) for i, a in enumerate(cifar_images[:2])]
    addr, t, box = _start_receiver(tmp_path / "out", tcp=True, timeout=2.0, image_timeout=0.3)
    rng = np.random.default_rng(1)
    with socket.create_connection(addr, timeout=5) as s:  # garbage, two whole packets, half a packet, hang up
        s.sendall(rng.bytes(300) + b"SY\x01\x01\xff\x00" + imgs[0][0] + rng.bytes(7) + imgs[0][1] + imgs[0][2][:50])
    with socket.create_connection(addr, timeout=5) as s:  # a second sender: whole image 1, then replays
        s.sendall(b"".join(imgs[1]) + b"".join(imgs[1]) + imgs[0][0][:-1])
    rep = _join(t, box)
    items = {it["name"]: it for it in rep["items"]}
    assert set(items) == {"0777-00000", "0777-00001"} and rep["connections"] == 2
    assert items["0777-00000"]["received"] == 2 and items["0777-00000"]["ok"]
    assert items["0777-00001"]["received"] == items["0777-00001"]["packets"]
    np.testing.assert_array_equal(np.asarray(Image.open(items["0777-00001"]["path"])),
                                  symcodec.purify(cifar_images[1], cb))
    assert rep["stream_bytes_skipped"] > 300


def test_cli_send_receive(jpegs, tmp_path):
    out = tmp_path / "rx"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "symcodec.cli", "receive", str(out), "--listen", "127.0.0.1:0", "--expect", "3",
         "--timeout", "20", "-c", CB], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stderr.readline()
        assert line.startswith("listening on 127.0.0.1:"), line
        port = int(line.strip().rsplit(":", 1)[1])
        r = CliRunner().invoke(main, ["send", str(jpegs), "--to", f"127.0.0.1:{port}", "--limit", "3", "-c", CB,
                                      "--packet-size", "128", "--fec", "2"])
        assert r.exit_code == 0, r.output
        sent = json.loads(r.stdout.strip().splitlines()[-1])
        stdout, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    rep = json.loads(stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and sent["images"] == rep["images"] == rep["images_complete"] == 3
    # parity packets that arrive after their image is complete are counted late, not used (the receiver
    # stops at the third image, maybe before the last parity packets)
    assert rep["accepted"] + rep["late"] <= sent["packets"] and rep["late"] > 0 and len(list(out.glob("*.png"))) == 3


def test_cli_errors_are_one_line(tmp_path):
    r = CliRunner().invoke(main, ["send", str(tmp_path), "--to", "nowhere"])
    assert r.exit_code != 0 and "HOST:PORT" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["receive", str(tmp_path / "o"), "--listen", "127.0.0.1:0", "--classify", "no-such-model"])
    assert r.exit_code != 0 and "no-such-model" in r.output and "Traceback" not in r.output


def test_relay_is_loopback_only():
    with pytest.raises(ValueError):
        link.UdpRelay(("10.0.0.1", 9), link.Link())
    assert pk.DEFAULT_SIZE == 255


def test_classify_on_arrival_with_manifest_labels(jpegs, tmp_path):
    """Predictions on arrival are scored against the sender's manifest; the count is checked independently."""
    import torch

    from symcodec.classify import models

    torch.manual_seed(0)
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    net_path = tmp_path / "tiny.pt"
    models.save(models.Classifier("airnet"), net_path, {"classes": classes})
    src = jpegs.parent / "labelled"
    for i, f in enumerate(sorted(jpegs.glob("*.jpg"))):
        d = src / classes[i % 10]
        d.mkdir(parents=True, exist_ok=True)
        (d / f.name).write_bytes(f.read_bytes())
    manifest = tmp_path / "manifest.json"
    addr, t, box = _start_receiver(tmp_path / "out", timeout=10.0, expect=8, classify=str(net_path),
                                   labels=manifest, codebook=CB)
    net.send(src, f"127.0.0.1:{addr[1]}", codebook=CB, progress=False, manifest=manifest)
    rep = _join(t, box)
    model = models.load(net_path)
    truth = {f"{it['image']:05d}": classes.index(it["label"]) for it in net.read_manifest(manifest)["items"]}
    correct = 0
    for item in rep["items"]:
        x = torch.from_numpy(np.array(Image.open(item["path"]))).permute(2, 0, 1)[None].float() / 255
        pred = int(model(x).argmax(1))
        assert pred == item["pred"] and item["pred_class"] == classes[pred] and item["label"] in classes
        correct += pred == truth[item["name"][-5:]]
    acc = rep["accuracy"]
    assert acc["labelled"] == acc["classified"] == 8 and acc["correct"] == correct
    assert acc["accuracy_all"] == pytest.approx(correct / 8)


def test_send_paces_to_rate(jpegs, tmp_path):
    """--rate paces the sender in real time: bytes * 8 / rate seconds at least."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    try:
        st = net.send(jpegs, f"127.0.0.1:{sink.getsockname()[1]}", codebook=CB, rate=40_000, limit=3, progress=False)
    finally:
        sink.close()
    assert st["seconds"] >= st["bytes"] * 8 / 40_000 * 0.95 > 0.3


def test_cli_receive_ctrl_c_writes_report(tmp_path):
    import signal

    out = tmp_path / "rx"
    # as at a terminal: a job started in the background of a non-interactive shell (CI runners, `cmd &`)
    # inherits SIGINT ignored, and Python then never raises KeyboardInterrupt
    proc = subprocess.Popen([sys.executable, "-m", "symcodec.cli", "receive", str(out), "--listen", "127.0.0.1:0",
                             "--timeout", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stderr.readline().startswith("listening on")
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0 and json.loads(stdout.strip().splitlines()[-1])["images"] == 0
    assert (out / "report.json").exists()


def test_missing_labels_file_keeps_the_report(tmp_path):
    rep = net.receive("127.0.0.1:0", tmp_path / "o", timeout=0.3, status=False, labels=tmp_path / "none.jsonl")
    assert "labels_error" in rep and (tmp_path / "o" / "report.json").exists()
    (tmp_path / "m.jsonl").write_text('{"stream": "00ab"}\n{"image": 0, "key": "a", "label": "cat"}\n{"ima')
    assert net.read_manifest(tmp_path / "m.jsonl") == {"stream": "00ab", "items": [{"image": 0, "key": "a", "label": "cat"}]}


def test_tcp_send_receive(jpegs, tmp_path):
    addr, t, box = _start_receiver(tmp_path / "out", tcp=True, timeout=10.0, expect=3)
    st = net.send(jpegs, f"127.0.0.1:{addr[1]}", codebook=CB, tcp=True, limit=3, fec=2, progress=False)
    rep = _join(t, box)
    assert st["images"] == rep["images"] == rep["images_complete"] == 3 and rep["invalid"] == 0
    cb = symcodec.get_codebook(CB)
    for item in rep["items"]:
        ref = symcodec.purify(np.asarray(Image.open(jpegs / f"{int(item['name'][-5:]):02d}.jpg")), cb)
        np.testing.assert_array_equal(np.asarray(Image.open(item["path"])), ref)


def test_tcp_receiver_stops_when_senders_hang_up_and_reports_names(jpegs, tmp_path, capfd):
    """Issue 19 item 8: no waiting out --timeout after the last TCP sender closed; the report has the sender's
    names and labels, packet times, and one stderr line per image when stderr is not a terminal."""
    import time

    man = tmp_path / "m.jsonl"
    ready = threading.Event()
    box: dict = {}

    def run():
        box["t0"] = time.monotonic()
        box["rep"] = net.receive("127.0.0.1:0", tmp_path / "out", tcp=True, timeout=60.0, image_timeout=0.5, status=True,
                                 ready=lambda a: (box.__setitem__("addr", a), ready.set()), labels=man)
        box["t1"] = time.monotonic()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(20)
    st = net.send(jpegs, f"127.0.0.1:{box['addr'][1]}", tcp=True, codebook=CB, limit=3, progress=False, manifest=man)
    t.join(40)
    assert not t.is_alive() and box["t1"] - box["t0"] < 20  # not the 60 s timeout
    rep = box["rep"]
    assert st["images"] == rep["images"] == 3
    for it in rep["items"]:
        assert it["key"].endswith(".jpg") and "label" in it and it["last_packet_s"] >= it["first_packet_s"] > 0
    assert rep["seconds"] > 0
    err = capfd.readouterr().err
    assert sum(": " in line and "packets, ok" in line for line in err.splitlines()) == 3
