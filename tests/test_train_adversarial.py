"""Adversarial training in `train-classifier` (issue 20): exact resume, the PGD check, catastrophic overfitting, specs."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from symcodec.classify import models
from symcodec.codec.symbols import purify
from symcodec.errors import OptionError
from symcodec.train import adversarial as adv
from symcodec.train.classifier import train_classifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mnist_train():
    from tests.conftest import need_shared

    return need_shared("datasets/mnist/train-images.idx3-ubyte.gz")


KW = {"arch": "mnistnet", "limit": 1200, "adversarial": "fgsm-rs", "eps": "0.2", "check_images": 100, "threads": 1, "progress": False}


def _weights(path) -> dict[str, torch.Tensor]:
    return models.load(path).state_dict()


def test_a_stopped_run_resumes_exactly(mnist_train, tmp_path):
    full = train_classifier(mnist_train, tmp_path / "full.pt", epochs=2, checkpoint=tmp_path / "full.ckpt", **KW)
    first = train_classifier(mnist_train, tmp_path / "res.pt", epochs=2, checkpoint=tmp_path / "res.ckpt", stop_after=1, **KW)
    assert first["stopped"] == 1 and (tmp_path / "res.ckpt").exists() and not (tmp_path / "res.pt").exists()
    done = train_classifier(mnist_train, tmp_path / "res.pt", epochs=2, checkpoint=tmp_path / "res.ckpt", **KW)
    a, b = _weights(tmp_path / "full.pt"), _weights(tmp_path / "res.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(full["history"]) == strip(done["history"]) and len(done["history"]) == 2
    assert all("check_pgd10_acc" in r for r in done["history"])
    assert not (tmp_path / "res.ckpt").exists()  # a finished run leaves its weights, not its checkpoint
    train_classifier(mnist_train, tmp_path / "x.pt", epochs=2, checkpoint=tmp_path / "x.ckpt", stop_after=1, **KW)
    with pytest.raises(OptionError, match="other settings"):
        train_classifier(mnist_train, tmp_path / "x.pt", epochs=3, checkpoint=tmp_path / "x.ckpt", **KW)
    # tools/train_curve.py reads the curve of a run in progress (checkpoint) and of a finished one (weights)
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import train_curve

    assert train_curve.main([str(tmp_path / "x.ckpt"), "--out", str(tmp_path / "curve-x")]) == 0
    run = json.loads((tmp_path / "curve-x.json").read_text())
    assert run["source"] == "checkpoint" and run["epochs_done"] == 1 and len(run["history"]) == 1
    assert (tmp_path / "curve-x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert train_curve.main([str(tmp_path / "res.pt"), "--out", str(tmp_path / "curve-res")]) == 0
    run = json.loads((tmp_path / "curve-res.json").read_text())
    assert run["source"] == "weights" and strip(run["history"]) == strip(done["history"])
    lo, hi = train_curve.wilson(0.9, 500)
    assert 0.86 < lo < 0.9 < hi < 0.93


def test_adversarial_training_raises_pgd_accuracy(mnist_train, mnist_test_images, tmp_path):
    from symcodec.data.sources import load_arrays

    x, y, _ = load_arrays(mnist_test_images)
    xt = torch.from_numpy(x[:400]).permute(0, 3, 1, 2).float() / 255
    yt = torch.from_numpy(y[:400])
    kw = {**KW, "limit": 4000, "eps": "0.15"}
    clean = train_classifier(mnist_train, tmp_path / "c.pt", epochs=2, **{**kw, "adversarial": None, "eps": "0"})
    robust = train_classifier(mnist_train, tmp_path / "r.pt", epochs=2, **kw)
    trades = train_classifier(mnist_train, tmp_path / "t.pt", epochs=2, **{**kw, "adversarial": "trades-2", "trades_beta": 3.0})
    assert trades["adversarial"]["trades_beta"] == 3.0 and "`trades-2` (beta 3)" in (tmp_path / "t.md").read_text()
    accs = []
    for p in (tmp_path / "c.pt", tmp_path / "r.pt", tmp_path / "t.pt"):
        m = models.load(p).eval()
        accs.append(adv.check(m, xt, yt, 0.15, torch.Generator().manual_seed(0)))
    assert clean["test_accuracy"]["clean"] > 90 and robust["test_accuracy"]["clean"] > 85 and trades["test_accuracy"]["clean"] > 85
    assert accs[1] > accs[0] + 0.2 and accs[2] > accs[0] + 0.2, accs  # PGD-10 at 0.15 on held-out test images


@pytest.mark.parametrize(("checks", "epochs", "kept_epoch", "collapse"), [
    ([0.5, 0.6, 0.2, 0.9], 4, 2, True),  # the check collapses at epoch 3: stop, keep epoch 2
    ([0.5, 0.7, 0.6], 3, 2, False),  # no collapse: the most robust epoch's weights are kept (robust overfitting)
])
def test_training_ends_on_the_most_robust_epoch(mnist_train, tmp_path, monkeypatch, checks, epochs, kept_epoch, collapse):
    seq = iter(checks)
    monkeypatch.setattr(adv, "check", lambda *a, **k: next(seq))
    kept = {}
    real = train_classifier.__globals__["_save_checkpoint"]

    def spy(path, settings, epoch, step, model, *a):  # noqa: ANN001
        if epoch == kept_epoch:
            kept.update({k: v.clone() for k, v in model.state_dict().items()})
        return real(path, settings, epoch, step, model, *a)

    monkeypatch.setitem(train_classifier.__globals__, "_save_checkpoint", spy)
    meta = train_classifier(mnist_train, tmp_path / "o.pt", epochs=epochs, checkpoint=tmp_path / "o.ckpt", **KW)
    assert len(meta["history"]) == (3 if collapse else epochs)
    assert ("catastrophic_overfitting" in meta["history"][-1]) == collapse
    assert meta["adversarial"]["best_check_epoch"] == kept_epoch
    w = _weights(tmp_path / "o.pt")
    assert all(torch.equal(w[k], kept[k]) for k in kept)


def test_specs_and_eps():
    assert adv.parse_adversarial("PGD-7") == adv.AdvSpec("pgd", 7) and adv.parse_adversarial("n-fgsm").name == "n-fgsm"
    assert adv.parse_adversarial("trades-10") == adv.AdvSpec("trades", 10) and adv.AdvSpec("trades", 10).name == "trades-10"
    for bad in ("pgd-0", "pgd-101", "fgsm", "", "trades", "trades-0"):
        with pytest.raises(OptionError):
            adv.parse_adversarial(bad)
    assert adv.parse_eps("8/255") == pytest.approx(8 / 255) and adv.parse_eps("0.3") == 0.3
    for bad in ("-1", "2", "x", "1/0"):
        with pytest.raises(OptionError):
            adv.parse_eps(bad)


@pytest.mark.parametrize("kind", ["fgsm-rs", "n-fgsm", "pgd-3", "trades-3"])
def test_perturbations_stay_in_range_and_raise_the_loss(kind):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    x, y = torch.rand(32, 1, 4, 4), torch.randint(0, 3, (32,))
    eps = 0.1
    xa = adv.perturb(net, x, y, eps, adv.parse_adversarial(kind), torch.Generator().manual_seed(1))
    assert xa.min() >= 0 and xa.max() <= 1
    bound = 3 * eps if kind == "n-fgsm" else eps  # N-FGSM: noise 2 eps + a step of eps, unprojected
    assert (xa - x).abs().max() <= bound + 1e-6
    if kind.startswith("trades"):  # TRADES moves the prediction away from the clean one, whatever the label
        assert adv.kl(net(x), net(xa)) > 10 * adv.kl(net(x), net(x + 0.001 * torch.randn_like(x)))
        return
    loss = torch.nn.functional.cross_entropy
    assert loss(net(xa), y) > loss(net(x), y)


def test_trades_loss_is_clean_cross_entropy_plus_beta_kl():
    torch.manual_seed(0)
    a, b, y = torch.randn(8, 5), torch.randn(8, 5), torch.randint(0, 5, (8,))
    pa, pb = a.softmax(1), b.softmax(1)
    want_kl = (pa * (pa.log() - pb.log())).sum(1)
    ce = torch.nn.functional.cross_entropy(a, y, reduction="none")
    torch.testing.assert_close(adv.trades_loss(a, b, y, 6.0), ce.mean() + 6 * want_kl.mean())
    torch.testing.assert_close(adv.trades_loss(a, b, y, 2.0, reduction="sum"), ce.sum() + 2 * want_kl.sum())
    assert float(adv.kl(a, a)) == pytest.approx(0, abs=1e-6)


def test_straight_through_purifier_forward_is_the_codec_and_backward_the_identity(cifar_images):
    x = torch.from_numpy(cifar_images[:4]).permute(0, 3, 1, 2).float().div(255).requires_grad_(True)
    st = adv.StraightThrough("cifar10-2x2-k2048")
    out = st(x)
    want = torch.from_numpy(purify(cifar_images[:4], "cifar10-2x2-k2048")).permute(0, 3, 1, 2).float() / 255
    torch.testing.assert_close(out, want, rtol=0, atol=1e-6)
    (out * 3).sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, 3.0))


def test_cli_adversarial_stop_and_errors(mnist_train, tmp_path):
    from symcodec.cli import main

    out = tmp_path / "m.pt"
    args = ["train-classifier", str(mnist_train), "-o", str(out), "--limit", "600", "--epochs", "2", "--threads", "1",
            "--adversarial", "pgd-2", "--eps", "0.1"]
    r = CliRunner().invoke(main, [*args, "--stop-after", "1"])
    assert r.exit_code == 0 and "stopped after epoch 1" in r.output and "PGD-10 check" in r.output
    assert (tmp_path / "m.ckpt").exists()
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0 and out.exists() and not (tmp_path / "m.ckpt").exists()
    assert "pgd-2" in out.with_suffix(".md").read_text()  # the card states the recipe
    r = CliRunner().invoke(main, [*args[:-2], "--eps", "2"])
    assert r.exit_code != 0 and "eps must be" in r.output and "Traceback" not in r.output


def test_mixed_precision_trains_resumes_exactly_and_is_a_setting(mnist_train, tmp_path):
    kw = {**KW, "amp": True, "epochs": 2}
    full = train_classifier(mnist_train, tmp_path / "full.pt", checkpoint=tmp_path / "full.ckpt", **kw)
    assert full["amp"] == "bfloat16 autocast" and full["device"] == "cpu (1 threads)"
    assert "bfloat16 autocast" in (tmp_path / "full.md").read_text()
    plain = train_classifier(mnist_train, tmp_path / "plain.pt", **{**kw, "amp": False})
    assert plain["amp"] is None and "autocast" not in (tmp_path / "plain.md").read_text()
    acc, ref = full["test_accuracy"]["clean"], plain["test_accuracy"]["clean"]
    assert acc > 40 and abs(acc - ref) < 10  # it learns under autocast about as float32 does (chance: 10%)
    assert train_classifier(mnist_train, tmp_path / "res.pt", checkpoint=tmp_path / "res.ckpt", stop_after=1, **kw)["stopped"] == 1
    with pytest.raises(OptionError, match="other settings.*amp"):  # precision changes the run: not resumable without it
        train_classifier(mnist_train, tmp_path / "res.pt", checkpoint=tmp_path / "res.ckpt", **{**kw, "amp": False})
    train_classifier(mnist_train, tmp_path / "res.pt", checkpoint=tmp_path / "res.ckpt", **kw)
    a, b = _weights(tmp_path / "full.pt"), _weights(tmp_path / "res.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    p = _weights(tmp_path / "plain.pt")
    assert any(not torch.equal(a[k], p[k]) for k in a)  # autocast really ran


@pytest.mark.parametrize(("device", "message"), [("tpu9", "unknown device"), ("cuda:99", "CUDA"), ("meta", "unsupported device")])
def test_unusable_devices_are_refused_in_one_line(mnist_train, tmp_path, device, message):
    from symcodec.cli import main

    r = CliRunner().invoke(main, ["train-classifier", str(mnist_train), "-o", str(tmp_path / "m.pt"), "--limit", "600",
                                  "--epochs", "1", "--threads", "1", "--device", device])
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output and not (tmp_path / "m.pt").exists()


def test_training_through_the_randomized_purifier_resumes_exactly(mnist_train, tmp_path):
    kw = {**KW, "limit": 600, "check_images": 50, "epochs": 2, "purify_in_loop": "sym:mnist-2x2-k256,random=2"}
    full = train_classifier(mnist_train, tmp_path / "full.pt", checkpoint=tmp_path / "full.ckpt", **kw)
    assert "through the `sym:mnist-2x2-k256,random=2` purifier (straight-through)" in (tmp_path / "full.md").read_text()
    train_classifier(mnist_train, tmp_path / "res.pt", checkpoint=tmp_path / "res.ckpt", stop_after=1, **kw)
    done = train_classifier(mnist_train, tmp_path / "res.pt", checkpoint=tmp_path / "res.ckpt", **kw)
    a, b = _weights(tmp_path / "full.pt"), _weights(tmp_path / "res.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)  # the purifier's draws resume where they stopped
    assert [h["check_pgd10_acc"] for h in full["history"]] == [h["check_pgd10_acc"] for h in done["history"]]
    with pytest.raises(OptionError, match="--purify-in-loop"):
        train_classifier(mnist_train, tmp_path / "x.pt", **{**kw, "purify_in_loop": "sym:mnist-2x2-k256,colour=3"})


def test_in_loop_purifiers():
    assert isinstance(adv.in_loop("mnist-2x2-k256"), adv.StraightThrough)
    r = adv.in_loop("sym:mnist-2x2-k256,random=2", seed=3)
    x = torch.rand(4, 1, 28, 28)
    assert r.randomized and not torch.equal(r(x), r(x))  # fresh draws on every pass
    r2 = adv.in_loop("sym:mnist-2x2-k256,random=2", seed=3)
    torch.testing.assert_close(adv.in_loop("sym:mnist-2x2-k256,random=2", seed=3)(x), r2(x))  # seeded
