"""`symcodec eval FOLDER` without a model: rate against PSNR-RGB and MS-SSIM on real photos, BD-rates, the plot."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from symcodec.bench import rd
from symcodec.codec.roundtrip import parse_codec
from symcodec.cli import main
from tests.conftest import need_shared


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    """Crops (odd sizes, both above MS-SSIM's 161 pixels) of two held-out test photos, as lossless PNG."""
    src = sorted(need_shared("datasets/photos/test").glob("*.jpg"))[:2]
    d = tmp_path_factory.mktemp("photos")
    for f, (h, w) in zip(src, ((203, 261), (240, 317))):
        a = np.asarray(Image.open(f).convert("RGB"))
        Image.fromarray(a[100:100 + h, 150:150 + w]).save(d / f"{f.stem}.png")
    return d


def test_rd_cli_on_a_photo_folder(photo_dir, tmp_path) -> None:
    out, png = tmp_path / "rd.json", tmp_path / "rd.png"
    res = CliRunner().invoke(main, ["eval", str(photo_dir), "--codec", "sym:q20,q60,q90", "--codec", "jpeg:20,60,90",
                                    "--codec", "webp:30,80", "--codec", "avif:30,80", "--codec", "jxl:30,80",
                                    "--json", str(out), "--plot", str(png)])
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())
    for key in ("name", "description", "results", "per_image", "settings", "aggregation", "versions", "git_commit", "bd_rate"):
        assert key in r
    rr, per = r["results"], r["per_image"]
    assert rr["codec"] == ["sym"] * 3 + ["jpeg"] * 3 + ["webp", "webp", "avif", "avif", "jxl", "jxl"]
    assert all(len(v) == 12 for v in rr.values())
    assert len(per["names"]) == 2 and all(len(row) == 2 for row in per["bpp"])
    pixels = np.array([203 * 261, 240 * 317])
    assert np.allclose(np.array(per["bpp"]), np.array(per["bytes"]) * 8 / pixels)
    for c in ("sym", "jpeg", "webp", "avif", "jxl"):  # every codec: more bytes, more PSNR and MS-SSIM as quality rises
        ix = [i for i, cc in enumerate(rr["codec"]) if cc == c]
        for k in ("bytes", "psnr-rgb", "psnr-rgb-pooled", "ms-ssim-rgb"):
            v = [rr[k][i] for i in ix]
            assert v == sorted(v) and v[0] < v[-1], (c, k, v)
        assert rr["psnr-rgb"][ix[-1]] > 33 and 0.9 < rr["ms-ssim-rgb"][ix[-1]] <= 1
    # the pooled PSNR is the PSNR of the mean MSE, which the per-image values give back
    mse = np.array(per["mse"][0])
    w = pixels / pixels.sum()
    assert rr["psnr-rgb-pooled"][0] == pytest.approx(10 * np.log10(255**2 / float((mse * w).sum())))
    t = r["bd_rate"]["psnr-rgb"]
    assert t["anchor"] == "jpeg" and set(t["codecs"]) == {"sym", "webp", "avif", "jxl"}
    for v in t["codecs"].values():
        assert set(v["per_image"]) == set(per["names"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "BD-rate against jpeg on psnr-rgb" in res.output


def test_bd_rate_comes_from_bjontegaard_in_the_right_direction() -> None:
    rate = [0.3, 0.6, 1.1, 2.0]
    psnr = [30.0, 33.0, 35.5, 38.0]
    assert rd.bd(rate, psnr, rate, psnr) == pytest.approx(0.0, abs=1e-9)
    assert rd.bd(rate, psnr, [r / 2 for r in rate], psnr) == pytest.approx(-50.0, abs=1e-6)  # half the bytes: -50 %
    assert rd.bd(rate, psnr, [r * 1.25 for r in rate], psnr) == pytest.approx(25.0, abs=1e-6)
    assert rd.bd(rate, psnr, rate, [p + 20 for p in psnr]) is None  # no overlapping quality range


def test_ms_ssim_and_psnr() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (170, 180, 3), np.uint8)
    assert rd.ms_ssim(a, a) == pytest.approx(1.0)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    assert rd.ms_ssim(a, b) < 0.99
    assert rd.ms_ssim(a[:160], b[:160]) is None
    assert rd.psnr(a, a) == 100.0
    assert rd.psnr(a, np.clip(a.astype(int) + 1, 0, 255).astype(np.uint8)) > 48


@pytest.mark.parametrize("spec", ["avif:60", "jxl:60", "webp:60", "jpeg:60"])
def test_baselines_round_trip_real_files(spec, photo) -> None:
    cs, = parse_codec(spec)
    data = cs.encode(photo)
    magic = {"avif": b"ftypavif", "jxl": b"\xff\x0a", "webp": b"WEBP", "jpeg": b"\xff\xd8\xff"}[cs.codec]
    assert magic in data[:16]
    y = cs.decode(data, 3)
    assert y.shape == photo.shape and rd.psnr(photo, y) > 30


def test_rd_errors_are_one_line(tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, msg in ((["eval", str(empty), "--codec", "jpeg:50"], "no images"),
                      (["eval", str(empty), "--codec", "avif:0"], "quality must be an integer 1..100"),
                      (["eval", str(empty), "--codec", "sym:cifar10-2x2-k256@50"], "is a patch codebook")):
        res = CliRunner().invoke(main, args)
        assert res.exit_code != 0 and msg in res.output and "Traceback" not in res.output, res.output
