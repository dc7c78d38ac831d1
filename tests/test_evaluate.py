"""`symcodec eval`: real encodes of real test images, a well-formed bench JSON and a plot."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from symcodec.cli import main
from symcodec.bench.evaluate import METRICS, PSNR_CAP, psnr, psnr_pooled


def test_eval_cli_small(cifar_test_tar, tmp_path) -> None:
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    res = CliRunner().invoke(main, ["eval", str(cifar_test_tar), "-m", "cifar10-clean", "--codec", "sym:cifar10-2x2-k256",
                                    "--codec", "jpeg:90,10", "--codec", "webp:50", "--codec", "avif:50", "--codec", "jxl:50", "--limit", "200", "--threads", "2",
                                    "--json", str(out), "--plot", str(png)])
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())
    for key in ("name", "description", "results", "settings", "aggregation", "versions", "git_commit", "seed"):
        assert key in r
    rr = r["results"]
    assert set(METRICS) <= set(rr)
    assert all(len(v) == 7 for v in rr.values())
    assert rr["codec"] == ["source", "sym", "jpeg", "jpeg", "webp", "avif", "jxl"]
    assert rr["setting"][2:4] == ["10", "90"]  # qualities sorted
    assert r["settings"]["n_images"] == 200
    # real files: JPEG q90 is bigger and closer to the source than q10; bpp follows bytes
    assert rr["bytes"][3] > rr["bytes"][2] and rr["psnr"][3] > rr["psnr"][2]
    assert np.allclose(np.asarray(rr["bpp"]), np.asarray(rr["bytes"]) * 8 / 1024, rtol=0, atol=1e-9)
    assert rr["top1_delta"][0] == 0 and abs(rr["top1"][3] - rr["top1"][0] - rr["top1_delta"][3]) < 1e-9
    assert rr["top1"][0] >= 80  # the shipped model on source images
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "sym" in res.output and "webp" in res.output and "avif" in res.output and "jxl" in res.output
    assert all(rr["top1"][i] >= 60 and 0 < rr["bytes"][i] < rr["bytes"][3] for i in (5, 6))  # AVIF, JPEG XL at 50: real, smaller files


def test_eval_bad_codec_is_one_line_error(cifar_test_tar) -> None:
    res = CliRunner().invoke(main, ["eval", str(cifar_test_tar), "-m", "cifar10-clean", "--codec", "gif:3"])
    assert res.exit_code != 0
    assert "unknown codec 'gif'" in res.output and "Traceback" not in res.output


def test_psnr_aggregation() -> None:
    a = np.zeros((2, 4, 4, 1), np.uint8)
    b = a.copy()
    b[1] = 1  # MSE 1 -> 48.13 dB; identical -> floored MSE
    p = psnr(a, b)
    assert p[1] == pytest.approx(10 * np.log10(255**2), abs=1e-9)
    assert p[0] == pytest.approx(10 * np.log10(255**2 / 1e-10))
    assert psnr_pooled(a, b) == pytest.approx(10 * np.log10(255**2 / 0.5))  # pooled MSE (0 + 1) / 2
    assert psnr_pooled(a, a) == PSNR_CAP


def test_seed_chain_matches_plain_model(cifar_test_tar) -> None:
    from symcodec.classify import models
    from symcodec.bench.evaluate import load_dataset, seed_chain
    from tests.conftest import need_shared

    model = need_shared("reference/symdnn/cifar10/cifar10_resnet_gradinit_sc_232.pt")
    cb = need_shared("reference/symdnn/cifar10/kmeans_img_k2_s0_c128_v1_softclamp.index")
    r = seed_chain(cifar_test_tar, str(model), [str(cb)], limit=100)
    x, y, _ = load_dataset(cifar_test_tar, limit=100)
    plain = (models.predict(models.load(model), x) == y).mean() * 100
    assert r["results"]["top1"][0] == pytest.approx(plain)
    assert r["results"]["k"] == [None, 128]
    assert r["results"]["top1"][1] < r["results"]["top1"][0]  # K=128 loses accuracy, as in the seed's table


def test_eval_table_and_plot_labels_tell_codebooks_apart() -> None:
    """Settings are never cut; codebooks of different data, geometry or entropy model get their own curve (issue 19 item 5)."""
    from symcodec.bench.evaluate import summary
    from symcodec.bench.plots import _family, _label, wilson

    fams = {s: _family("sym", s) for s in ("cifar10-ycc420-k512-ppm", "cifar10-ycc420-k512", "cifar10-2x2-k256",
                                           "cifar10-2x2-k2048-ppm", "mnist-2x2-k256", "q70", "photo-dct@50")}
    assert len(set(fams.values())) == len(fams), fams
    assert fams["cifar10-2x2-k2048-ppm"] == "sym cifar10 2x2, model 3" and fams["cifar10-ycc420-k512"].endswith("model 2")
    assert _label("sym", "mnist-2x2-k256") == "K=256" and _label("sym", "photo-dct@50") == "photo-dct q50"
    lo, hi = wilson(0.9, 1000)
    assert 0.875 < lo < 0.9 < hi < 0.92
    r = {k: [None, None] for k in METRICS}
    r.update(codec=["source", "sym"], setting=["test.tar", "cifar10-ycc420-k512-ppm"], bytes=[921.0, 348.0], bpp=[7.2, 2.7],
             ratio_source=[1.0, 2.6], ratio_raw=[3.3, 8.8], top1=[90.0, 89.0], top1_delta=[0.0, -1.0])
    r["top1@some-other-model"], r["top1_delta@some-other-model"] = [88.0, 87.0], [0.0, -1.0]
    text = summary({"results": r})
    assert "cifar10-ycc420-k512-ppm " in text and "top1@some-other-model" in text.splitlines()[0]
