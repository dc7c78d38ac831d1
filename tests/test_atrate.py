"""Accuracy at a fixed rate (symcodec.bench.atrate): the envelope rule, paired bootstrap intervals, and the
per-image verdicts `symcodec eval` stores, checked against a real run on real test images."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from symcodec.bench import atrate
from symcodec.cli import main
from symcodec.errors import SymcodecError


def test_envelope_rule() -> None:
    bpp, acc = np.array([1.0, 2.0, 3.0]), np.array([80.0, 78.0, 90.0])
    assert atrate.envelope_at(bpp, acc, 0.9) is None  # below the codec's smallest files
    assert atrate.envelope_at(bpp, acc, 1.0) == 80.0
    assert atrate.envelope_at(bpp, acc, 2.0) == 80.0  # running max: 2 bpp can buy the 1 bpp setting
    assert atrate.envelope_at(bpp, acc, 2.5) == pytest.approx(85.0)
    assert atrate.envelope_at(bpp, acc, 7.0) == 90.0  # above its largest: its best holds
    assert atrate.envelope_at(bpp[::-1], acc[::-1], 2.5) == pytest.approx(85.0)  # order of settings does not matter


def _curve(bpp: list[float], p: list[float], n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"settings": [str(b) for b in bpp], "bpp": np.asarray(bpp), "correct": np.stack([rng.random(n) < q for q in p])}


def test_paired_bootstrap() -> None:
    n = 4000
    a = _curve([1.5, 2.5], [0.80, 0.90], n, 1)
    same = {"settings": a["settings"], "bpp": a["bpp"].copy(), "correct": a["correct"].copy()}
    b = _curve([1.0, 1.8, 3.0], [0.70, 0.75, 0.95], n, 2)
    res = atrate.at_rate({"a": a, "same": same, "b": b}, 2.0, reference="a", n_boot=500)
    ra = res["codecs"]["a"]
    want = np.interp(2.0, a["bpp"], a["correct"].mean(1) * 100)
    assert ra["top1"] == pytest.approx(want) and ra["ci95"][0] < want < ra["ci95"][1]
    assert 0.5 < ra["ci95"][1] - ra["ci95"][0] < 4  # about +-1 point at n=4000
    d = res["differences"]
    assert d["same"]["delta"] == 0 and d["same"]["ci95"] == [0.0, 0.0]  # paired: identical verdicts, no spread
    assert d["b"]["delta"] == pytest.approx(want - res["codecs"]["b"]["top1"])
    assert d["b"]["ci95"][0] < d["b"]["delta"] < d["b"]["ci95"][1]
    low = atrate.at_rate({"a": a, "b": b}, 1.2, reference="a", n_boot=50)
    assert low["codecs"]["a"]["top1"] is None and low["differences"]["b"]["delta"] is None
    with pytest.raises(SymcodecError):
        atrate.at_rate({"a": a, "c": _curve([1.0], [0.5], n + 1, 3)}, 2.0)
    assert "top-1 at 2 bpp" in atrate.text(res)


def test_pack_roundtrip() -> None:
    ok = np.random.default_rng(0).random(1001) < 0.3
    assert np.array_equal(atrate.unpack_correct(atrate.pack_correct(ok), 1001), ok)


def test_eval_stores_verdicts_and_reads_at_rate(cifar_test_tar, tmp_path) -> None:
    out = tmp_path / "r.json"
    res = CliRunner().invoke(main, ["eval", str(cifar_test_tar), "-m", "cifar10-clean", "-m", "cifar10-airnet2", "--codec",
                                    "symc:cifar10-ycc420-k256-ppm,cifar10-ycc420-k512-ppm", "--codec", "sym:cifar10-ycc420-k512-ppm",
                                    "--codec", "webp:30,50", "--limit", "150", "--threads", "2", "--at-bpp", "2.0", "--at-bpp", "2.6",
                                    "--json", str(out)])
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())
    rr, n = r["results"], 150
    assert rr["codec"] == ["source", "symc", "symc", "sym", "webp", "webp"]
    verdicts = r["per_image"]["correct"]["cifar10-clean"]
    for i in range(len(rr["codec"])):  # the stored verdicts are the reported accuracy, inside its interval
        ok = atrate.unpack_correct(verdicts[i], n)
        assert ok.mean() * 100 == pytest.approx(rr["top1"][i])
        assert rr["top1_lo"][i] <= rr["top1"][i] <= rr["top1_hi"][i]
    # same payloads: 84 bytes less framing (compact version 2 at 32x32, K=512), and 2 more where a final 0x0000 word goes
    assert 84 <= rr["bytes"][3] - rr["bytes"][2] <= 86
    assert rr["top1"][2] == rr["top1"][3]  # and the same pixels
    a2, a26 = r["at_bpp"]
    assert a2["reference"] == "symc" and set(a2["codecs"]) == {"symc", "sym", "webp"}
    cur = atrate.curves(r)
    assert a2["codecs"]["webp"]["top1"] == pytest.approx(
        atrate.envelope_at(cur["webp"]["bpp"], cur["webp"]["correct"].mean(1) * 100, 2.0))
    assert a26["bpp"] == 2.6
    assert "top-1 at 2 bpp" in res.output
    # protocol (b): each codec read with its own classifier's verdicts (tools/eval_at_rate.py)
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import eval_at_rate

    both = eval_at_rate.main([str(out), "--bpp", "2.0", "--curve", "symc@cifar10-clean", "--curve", "webp@cifar10-airnet2",
                              "--curve", "webp@cifar10-clean", "--json", str(tmp_path / "b.json"), "--plot", str(tmp_path / "b.png")])
    assert both["curves"] == {"symc@cifar10-clean": "cifar10-clean", "webp@cifar10-airnet2": "cifar10-airnet2",
                              "webp@cifar10-clean": "cifar10-clean"}
    w = atrate.curves(r, "cifar10-airnet2", ["webp"])["webp"]
    assert both["at_bpp"][0]["codecs"]["webp@cifar10-airnet2"]["top1"] == pytest.approx(
        atrate.envelope_at(w["bpp"], w["correct"].mean(1) * 100, 2.0))
    assert json.loads((tmp_path / "b.json").read_text())["at_bpp"][0]["reference"] == "symc@cifar10-clean"
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
    # a curve extended by a later run: rows of one codec spread over two results read as one curve
    def keep(rows):
        part = json.loads(json.dumps(r))
        rows = [0, *rows]
        for k, v in part["results"].items():
            if isinstance(v, list) and len(v) == len(rr["codec"]):
                part["results"][k] = [v[i] for i in rows]
        for m, v in part["per_image"]["correct"].items():
            part["per_image"]["correct"][m] = [v[i] for i in rows]
        return part

    (tmp_path / "p1.json").write_text(json.dumps(keep([1, 2, 4])))
    (tmp_path / "p2.json").write_text(json.dumps(keep([5])))
    one = eval_at_rate.main([str(out), "--bpp", "2.0", "--curve", "symc@cifar10-clean", "--curve", "webp@cifar10-clean"])
    two = eval_at_rate.main([str(tmp_path / "p1.json"), str(tmp_path / "p2.json"), "--bpp", "2.0",
                             "--curve", "symc@cifar10-clean", "--curve", "webp@cifar10-clean"])
    assert one["at_bpp"] == two["at_bpp"]
    with pytest.raises(SystemExit, match="appear in more than one result"):  # the same setting twice: refused
        eval_at_rate.main([str(tmp_path / "p1.json"), str(tmp_path / "p1.json"), "--bpp", "2.0"])
    # ... unless asked: --remeasured takes the later file's row (here: webp q50's row moved up by 1 bpp)
    later = keep([5])
    later["results"]["bpp"] = [later["results"]["bpp"][0], later["results"]["bpp"][1] + 1.0]
    (tmp_path / "p3.json").write_text(json.dumps(later))
    re = eval_at_rate.main([str(out), str(tmp_path / "p3.json"), "--bpp", "2.0", "--curve", "webp@cifar10-clean", "--remeasured"])
    assert re["at_bpp"][0]["codecs"]["webp@cifar10-clean"]["bpp_range"][1] == pytest.approx(rr["bpp"][5] + 1.0)
