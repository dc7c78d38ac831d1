"""Train a classifier on any labelled dataset the converter reads (`symcodec train-classifier`), with a card.

The whole training set is decoded once into a uint8 tensor; augmentation (reflect-padded random
translation, alternating flips where the preset allows them) runs on batches with torch ops. With
`on_reconstructions`, each image at each step is drawn from the clean images and their reconstructions by
the named codebooks (`symcodec.purify`), so the net learns to read what a codec gives it. Accuracy is
measured on a held-out set: `test` if given, else a stratified `holdout` share of the training source
that training never sees. Needs the [torch] extra.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..atomic import atomic_write
from ..classify import models
from ..classify.device import describe, resolve
from ..codec.roundtrip import parse_codec
from ..codec.symbols import purify
from . import adversarial as adv
from ..data.sources import load_arrays
from ..errors import DatasetError, OptionError

# airbench94/93 recipe (Jordan 2024) for airnet: summed label-smoothed CE, decoupled lr, Nesterov, triangular schedule
PRESETS: dict[str, dict[str, Any]] = {
    "airnet": dict(batch=512, lr=11.5, momentum=0.85, wd=0.0153, bias_scaler=64.0, smoothing=0.2,
                   translate=2, flip=True, whiten_bias_epochs=3, airbench=True, preprocess="cifar-normalize"),
    "resnet20": dict(batch=128, lr=0.1, momentum=0.9, wd=5e-4, bias_scaler=1.0, smoothing=0.0,
                     translate=4, flip=True, whiten_bias_epochs=0, airbench=False, preprocess="cifar-normalize"),
    "mnistnet": dict(batch=128, lr=0.05, momentum=0.9, wd=5e-4, bias_scaler=1.0, smoothing=0.0,
                     translate=2, flip=False, whiten_bias_epochs=0, airbench=False, preprocess="mnist-normalize"),
    "lenet": dict(batch=128, lr=0.05, momentum=0.9, wd=5e-4, bias_scaler=1.0, smoothing=0.0,
                  translate=2, flip=False, whiten_bias_epochs=0, airbench=False, preprocess="mnist-normalize"),
}
DEFAULT_EPOCHS = {"airnet": 10.0, "resnet20": 10.0, "mnistnet": 2.0, "lenet": 4.0}


def default_arch(shape: tuple[int, ...]) -> str:
    """The architecture for images of shape (H, W, C): mnistnet for 28x28 or 32x32 grey, else airnet."""
    h, w, c = shape
    return "mnistnet" if c == 1 and (h, w) in ((28, 28), (32, 32)) else "airnet"


def augment(x: torch.Tensor, translate: int, flip_mask: torch.Tensor | None, gen: torch.Generator) -> torch.Tensor:
    """Random translation (reflect padding) and given flips on a uint8 NCHW batch; vectorised per shift."""
    if flip_mask is not None:
        x = torch.where(flip_mask.view(-1, 1, 1, 1), x.flip(-1), x)
    if translate:
        n, _, h, w = x.shape
        pad = F.pad(x.float(), (translate,) * 4, mode="reflect").to(x.dtype)
        dx = torch.randint(0, 2 * translate + 1, (n,), generator=gen)
        dy = torch.randint(0, 2 * translate + 1, (n,), generator=gen)
        out = torch.empty_like(x)
        for sy in range(2 * translate + 1):
            for sx in range(2 * translate + 1):
                m = (dy == sy) & (dx == sx)
                if m.any():
                    out[m] = pad[m, :, sy:sy + h, sx:sx + w]
        x = out
    return x


def triangle(steps: int, start: float = 0.2, end: float = 0.07, peak: float = 0.23) -> np.ndarray:
    """airbench's triangular lr multiplier per step."""
    return np.interp(np.arange(steps + 1), [0, int(peak * steps), steps], [start, 1.0, end])


class EpochTally:
    """A training epoch's running loss and accuracy: the progress bar's postfix, and the epoch's record at its end."""

    def __init__(self, summed: bool) -> None:
        self.summed, self.correct, self.seen, self.loss = summed, 0, 0, 0.0

    def add(self, logits: torch.Tensor, y: torch.Tensor, loss: torch.Tensor) -> dict[str, str]:
        """Count one batch (`loss` summed over it if `summed`, else its mean); returns the running figures."""
        self.correct += int((logits.argmax(1) == y).sum())
        self.seen += len(y)
        self.loss += float(loss.detach()) * (1 if self.summed else len(y))
        return {"loss": f"{self.loss / self.seen:.3f}", "train_acc": f"{100 * self.correct / self.seen:.1f}%"}

    def record(self, epoch: int, step: int) -> dict[str, Any]:
        """The history entry of epoch `epoch` (0-based) ending at `step`."""
        return {"epoch": epoch + 1, "step": step, "train_loss": self.loss / max(self.seen, 1),
                "train_acc": 100 * self.correct / max(self.seen, 1)}


class Lookahead:
    """airbench's lookahead: every 5 steps the weights are pulled to, and replaced by, their running average."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.ema = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, decay: float) -> None:
        """Pull the weights towards their average (and copy it back)."""
        state = model.state_dict()
        for k, e in self.ema.items():
            e.lerp_(state[k], 1 - decay)
            state[k].copy_(e)


def _optimizer(model: models.Classifier, hp: dict[str, Any]) -> torch.optim.Optimizer:
    norm_biases = [p for n, p in model.net.named_parameters() if "norm" in n and n.endswith("bias") and p.requires_grad]
    nb_ids = {id(p) for p in norm_biases}
    other = [p for p in model.net.parameters() if p.requires_grad and id(p) not in nb_ids]
    if hp["airbench"]:
        kilostep = 1024 * (1 + 1 / (1 - hp["momentum"]))
        lr, wd = hp["lr"] / kilostep, hp["wd"] * hp["batch"] / kilostep
        lrb = lr * hp["bias_scaler"]
        groups = [dict(params=norm_biases, lr=lrb, weight_decay=wd / lrb), dict(params=other, lr=lr, weight_decay=wd / lr)]
    else:
        groups = [dict(params=norm_biases + other, lr=hp["lr"], weight_decay=hp["wd"])]
    for g in groups:
        g["base_lr"] = g["lr"]
    return torch.optim.SGD(groups, lr=groups[-1]["lr"], momentum=hp["momentum"], nesterov=True)


def _split(y: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, held-out) indices: `share` of each class held out, at least one image of any class with two."""
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = min(len(idx) - 1, max(1, round(share * len(idx)))) if len(idx) > 1 else 0
        held.append(rng.permutation(idx)[:k])
    test = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    return np.setdiff1d(np.arange(len(y)), test), test


def _load(src: str | os.PathLike[str], limit: int | None, classes: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Pixels, labels and class names; `limit` keeps that many evenly spaced images (sources are often sorted by class)."""
    x, y, names = load_arrays(src)
    if limit is not None and limit < len(x):
        keep = np.linspace(0, len(x) - 1, limit).round().astype(int)
        x, y = x[keep], y[keep]
    if classes is None:
        return x, y, names
    unknown = sorted(set(names) - set(classes))
    if unknown:
        msg = f"{src} has classes the training set has not: {', '.join(unknown[:5])}"
        raise DatasetError(msg)
    return x, np.asarray([classes.index(names[i]) for i in y], np.int64), classes


def _git_commit() -> str:
    try:
        here = Path(__file__).resolve().parents[2]
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def reconstruct(x: np.ndarray, spec: str, progress: bool = True) -> np.ndarray:
    """(N,H,W,C) uint8 images as a codec gives them back: a codebook name (its purifier, `symcodec.purify`) or one
    `symcodec eval` codec setting (`webp:50`, `avif:30`, `jxl:75`, `jpeg:50`, `symc:CB`: file bytes and back)."""
    if ":" not in spec:
        return purify(x, spec)
    settings = parse_codec(spec)
    if len(settings) != 1:
        msg = f"a reconstruction is one codec setting, e.g. webp:50; {spec!r} has {len(settings)}"
        raise OptionError(msg)
    cs = settings[0]
    out = np.empty_like(x)
    for i in tqdm(range(len(x)), desc=f"reconstruct {cs.label}", leave=False, disable=not progress, file=sys.stderr):
        out[i] = cs.decode(cs.encode(x[i]), x.shape[3]).reshape(out.shape[1:])
    return out


def train_classifier(train: str | os.PathLike[str], out: str | os.PathLike[str], *, test: str | os.PathLike[str] | None = None,
                     arch: str | None = None, epochs: float | None = None, init: str | None = None,
                     on_reconstructions: list[str] | tuple[str, ...] = (), mix_clean: int = 0, holdout: float = 0.1,
                     seed: int = 0, threads: int = 2, limit: int | None = None, lr_scale: float = 1.0,
                     lookahead: bool = False, arch_kw: dict[str, Any] | None = None, progress: bool = True,
                     command: str = "", adversarial: str | None = None, eps: float | str = 0.0, eps_warmup: float = 0.0,
                     purify_in_loop: str | None = None, checkpoint: str | os.PathLike[str] | None = None,
                     stop_after: int | None = None, check_images: int | None = None, device: str = "cpu",
                     amp: bool = False, trades_beta: float = 6.0) -> dict[str, Any]:
    """Train (or fine-tune, `init`) a classifier on a labelled dataset; write OUT (.pt) and OUT's card (.md).

    `adversarial` ('fgsm-rs', 'n-fgsm', 'pgd-K') trains on adversarial batches at `eps` (reached linearly over
    `eps_warmup` epochs); 'trades-K' trains on clean cross-entropy plus `trades_beta` times the KL divergence
    to K-step adversarial predictions (TRADES). Either goes through the codec's purifier when `purify_in_loop`
    names a codebook, or through a defense of `symcodec robustness` when it is one (`sym:CB,random=R`: the
    randomized purifier). `check_images` (default: 500, or a tenth of a smaller training set) images split
    off the training data measure PGD-10 accuracy after every epoch, and a collapse of it to under half its
    best (catastrophic overfitting) ends training on the best epoch's weights. With `checkpoint`, every
    epoch ends with a checkpoint that a rerun resumes exactly (weights, optimizer, schedule, generator, epoch);
    `stop_after` ends this run after that many epochs (resume later); a checkpoint resumes on any device. `device`
    ('cpu', 'cuda', 'auto') runs training there (TF32 allowed); `amp` runs forward and backward passes in bfloat16
    autocast (weights, optimizer and the final held-out accuracy stay float32). Returns the metadata stored with the
    weights: data, classes, recipe, held-out accuracy (clean and on each codebook's reconstructions), the
    per-epoch history, timings and the command; {"stopped": epoch} if the run stopped before the end.
    """
    if not 0 < holdout < 1:
        msg = f"holdout must be a share between 0 and 1, got {holdout}"
        raise OptionError(msg)
    out = Path(out)
    if out.suffix != ".pt":
        msg = f"output {out} must end in .pt (the card is written beside it as .md)"
        raise OptionError(msg)
    dev = resolve(device, exact=False)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.time()
    x, y, classes = _load(train, limit)
    if test is not None:
        xtr, ytr = x, y
        xte, yte, _ = _load(test, None, classes)
    else:
        tr, te = _split(y, holdout, seed)
        xtr, ytr, xte, yte = x[tr], y[tr], x[te], y[te]
    if len(np.unique(ytr)) < 2:
        msg = f"{train}: a classifier needs at least two classes with images"
        raise DatasetError(msg)
    spec = adv.parse_adversarial(adversarial) if adversarial else None
    eps = adv.parse_eps(eps)
    if spec is not None and eps <= 0:
        msg = "--adversarial needs --eps above 0"
        raise OptionError(msg)
    trades = spec is not None and spec.kind == "trades"
    if trades and not 0 <= trades_beta <= 1000:
        msg = f"the TRADES beta must be from 0 to 1000, got {trades_beta}"
        raise OptionError(msg)
    xchk = ychk = None
    if spec is not None:  # PGD check images: split off the training data, never trained on, not the reported test set
        check_images = min(500, max(1, len(ytr) // 10)) if check_images is None else check_images
        if not 0 < check_images < len(ytr) // 2:
            msg = f"check_images must be from 1 to half the training images ({len(ytr) // 2}), got {check_images}"
            raise OptionError(msg)
        keep, chk = _split(ytr, check_images / len(ytr), seed + 1)
        xchk = torch.from_numpy(xtr[chk]).permute(0, 3, 1, 2).float().div(255).to(dev)
        ychk = torch.from_numpy(ytr[chk]).to(dev)
        xtr, ytr = xtr[keep], ytr[keep]
    arch = arch or (models.load(init).arch if init else default_arch(xtr.shape[1:]))
    if arch not in PRESETS:
        msg = f"unknown architecture {arch!r} (known: {', '.join(sorted(PRESETS))})"
        raise OptionError(msg)
    hp = dict(PRESETS[arch])
    if xtr.shape[-1] == 1 and hp["preprocess"] == "cifar-normalize":
        hp["preprocess"] = "mnist-normalize"
    hp["lr"] *= lr_scale
    epochs = DEFAULT_EPOCHS[arch] if epochs is None else epochs
    versions = [xtr] * max(mix_clean, 1) if (mix_clean or not on_reconstructions) else []
    done: dict[str, np.ndarray] = {}
    for cb in on_reconstructions:  # a codebook named twice is drawn twice as often (reconstructed once)
        if cb not in done:
            done[cb] = reconstruct(xtr, cb)
        versions.append(done[cb])
    x_all = torch.from_numpy(np.stack(versions)).permute(0, 1, 4, 2, 3).contiguous()  # (V, N, C, H, W)
    x_train, y_train = x_all[0], torch.from_numpy(ytr)
    if init:
        model = models.load(init)
        if model.net.__class__ is not models.ARCHS[arch]:
            msg = f"--init {init} is a {model.arch}, not {arch}"
            raise OptionError(msg)
        hp["whiten_bias_epochs"], hp["preprocess"] = 0, model.preprocess_name
        model.train()
    else:
        kw = {"num_classes": len(classes), **({"in_ch": xtr.shape[-1]} if arch in ("airnet", "resnet20") else {}), **(arch_kw or {})}
        model = models.Classifier(arch, hp["preprocess"], **kw)
        if arch == "airnet":
            with torch.no_grad():
                model.net.init_whitening(model.pre(models.to_tensor(x_train[:5000].permute(0, 2, 3, 1))))
    model.to(dev, memory_format=torch.channels_last)  # with channels-last batches: 1.5-1.8x a CPU training step
    opt = _optimizer(model, hp)
    n, bs = len(x_train), hp["batch"]
    total = max(1, int(epochs * math.ceil(n / bs)))
    sched = triangle(total)
    flips = torch.rand(n, generator=gen) < 0.5
    whiten_bias = getattr(model.net, "whiten", None)
    hp["lookahead"] = lookahead
    look = Lookahead(model) if lookahead else None
    alpha = 0.95 ** 5 * (np.arange(total + 1) / max(total, 1)) ** 3
    step, t_train = 0, time.time()
    pur = adv.in_loop(purify_in_loop, seed) if purify_in_loop else None
    pur_gen = getattr(pur, "generator", None)  # a randomized purifier's draws: checkpointed with the rest
    net = model if pur is None else (lambda t: model(pur(t)))

    def fwd(t: torch.Tensor) -> torch.Tensor:  # bfloat16 autocast with `amp`; float32 logits either way
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            return net(t).float()

    warm_steps = eps_warmup * math.ceil(n / bs)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"pgd": -1.0}
    settings = {"train": str(train), "test": str(test), "arch": arch, "epochs": epochs, "init": init, "limit": limit,
                "on_reconstructions": list(on_reconstructions), "mix_clean": mix_clean, "holdout": holdout, "seed": seed,
                "lr_scale": lr_scale, "lookahead": lookahead, "arch_kw": arch_kw, "adversarial": spec.name if spec else None,
                "eps": eps, "eps_warmup": eps_warmup, "purify_in_loop": purify_in_loop, "check_images": check_images,
                **({"amp": True} if amp else {}), **({"trades_beta": trades_beta} if trades else {})}
    # (the device is not a setting: a run may resume on another one)
    ckpt = Path(checkpoint) if checkpoint is not None else None
    first = 0
    if ckpt is not None and ckpt.exists():
        first, step, flips, history, best = _resume(ckpt, settings, model, opt, look, gen, dev, pur_gen)
        if history and "catastrophic_overfitting" in history[-1]:  # that run ended on its best epoch: nothing left
            first, look = math.ceil(epochs), None
    t_train -= sum(h.get("seconds", 0) for h in history)
    model.train()
    bar = tqdm(total=total, initial=step, desc="train", unit="step", disable=not progress, file=sys.stderr)
    stopped = None
    for epoch in range(first, math.ceil(epochs)):
        t_epoch = time.time()
        if whiten_bias is not None:
            whiten_bias.bias.requires_grad_(epoch < hp["whiten_bias_epochs"])
        perm = torch.randperm(n, generator=gen)
        if hp["flip"] and epoch > 0:
            flips = ~flips  # airbench's alternating flip: every image is seen both ways in consecutive epochs
        tally = EpochTally(hp["airbench"])
        for i in range(0, n, bs):
            if step >= total:
                break
            idx = perm[i:i + bs]
            xv = x_train[idx] if len(x_all) == 1 else x_all[torch.randint(len(x_all), (len(idx),), generator=gen), idx]
            xb = augment(xv, hp["translate"], flips[idx] if hp["flip"] else None, gen).to(dev).float().div_(255.0)
            xb = xb.contiguous(memory_format=torch.channels_last)
            yb = y_train[idx].to(dev)
            e = eps * min(1.0, (step + 1) / warm_steps) if warm_steps else eps
            red = "sum" if hp["airbench"] else "mean"
            if trades:  # the clean logits serve the attack and the loss: one clean forward pass
                logits = fwd(xb)
                xa = adv.trades_perturb(fwd, xb, e, spec.steps, gen, clean=logits)
                loss = adv.trades_loss(logits, fwd(xa), yb, trades_beta, hp["smoothing"], red)
            else:
                logits = fwd(adv.perturb(fwd, xb, yb, e, spec, gen) if spec is not None else xb)
                loss = F.cross_entropy(logits, yb, label_smoothing=hp["smoothing"], reduction=red)
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * float(sched[step])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if look is not None and step % 5 == 0:
                look.update(model, float(alpha[step]))
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, **tally.add(logits, yb, loss))
        rec = tally.record(epoch, step)
        if spec is not None:
            model.eval()
            rec["check_pgd10_acc"] = 100 * adv.check(fwd, xchk, ychk, eps, torch.Generator().manual_seed(seed + epoch))
            with torch.no_grad():
                rec["check_clean_acc"] = 100 * float((fwd(xchk).argmax(1) == ychk).float().mean())
            model.train()
            if epoch + 1 >= eps_warmup and rec["check_pgd10_acc"] > best["pgd"]:  # at full eps only
                best = {"pgd": rec["check_pgd10_acc"], "epoch": epoch + 1,
                        "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        rec["seconds"] = round(time.time() - t_epoch, 1)
        history.append(rec)
        collapsed = spec is not None and best["pgd"] >= 10 and rec["check_pgd10_acc"] < best["pgd"] / 2
        if collapsed:  # catastrophic overfitting: back to the best epoch, and stop
            model.load_state_dict(best["state"])
            look = None  # the running average belongs to the collapsed weights
            rec["catastrophic_overfitting"] = f"PGD-10 check {rec['check_pgd10_acc']:.1f}% after {best['pgd']:.1f}%; kept epoch {best['epoch']}"
        if ckpt is not None:
            _save_checkpoint(ckpt, settings, epoch + 1, step, model, opt, look, gen, flips, history, best, pur_gen)
        if collapsed:
            break
        if stop_after is not None and epoch + 1 - first >= stop_after and epoch + 1 < math.ceil(epochs) and step < total:
            stopped = epoch + 1
            break
    bar.close()
    if stopped is not None:
        return {"stopped": stopped, "history": history, "checkpoint": str(ckpt)}
    if spec is not None and "state" in best:  # end on the epoch the check found most robust (robust overfitting)
        model.load_state_dict(best["state"])
        look = None
    if look is not None:
        look.update(model, 1.0)  # end on the averaged weights
    train_s = time.time() - t_train
    model.to("cpu").eval()
    acc = {"clean": float((models.predict(model, xte, 500) == yte).mean() * 100)}
    for cb in dict.fromkeys(on_reconstructions):
        acc[f"reconstructed {cb}"] = float((models.predict(model, reconstruct(xte, cb), 500) == yte).mean() * 100)
    held = str(test) if test is not None else f"{len(xte)} images held out of {train} (stratified, seed {seed})"
    meta = {"train": str(train), "test": held, "classes": classes, "n_train": n, "n_test": len(xte),
            "test_accuracy": acc, "recipe": hp, "arch": arch, "epochs": epochs, "init": init,
            "on_reconstructions": list(on_reconstructions), "mix_clean": mix_clean, "seed": seed, "command": command,
            "adversarial": ({"kind": spec.name, "eps": eps, "eps_warmup_epochs": eps_warmup, "purify_in_loop": purify_in_loop,
                             **({"trades_beta": trades_beta} if trades else {}),
                             "check_images": len(ychk), "best_check_epoch": best.get("epoch")} if spec else None),
            "history": history,
            "git_commit": _git_commit(), "train_seconds": round(train_s), "total_seconds": round(time.time() - t0),
            "torch": str(torch.__version__),
            "device": describe(dev, threads), "amp": "bfloat16 autocast" if amp else None}
    models.save(model, out, meta)
    atomic_write(out.with_suffix(".md"), card(out.stem, model, meta).encode())
    if ckpt is not None and ckpt.exists():
        ckpt.unlink()  # the run is complete: its result is OUT
    return meta


def _save_checkpoint(path: Path, settings: dict[str, Any], epoch: int, step: int, model: torch.nn.Module,
                     opt: torch.optim.Optimizer, look: Lookahead | None, gen: torch.Generator, flips: torch.Tensor,
                     history: list[dict[str, Any]], best: dict[str, Any], pur_gen: torch.Generator | None = None) -> None:
    """Everything a rerun needs to continue exactly after `epoch` (temporary name, then rename)."""
    import io

    state = {"settings": settings, "epoch": epoch, "step": step, "model": model.state_dict(), "opt": opt.state_dict(),
             "look": look.ema if look is not None else None, "gen": gen.get_state(), "torch_rng": torch.get_rng_state(),
             "flips": flips, "history": history, "best": best,
             **({"purifier_gen": pur_gen.get_state()} if pur_gen is not None else {})}
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write(path, buf.getvalue())


def _resume(path: Path, settings: dict[str, Any], model: torch.nn.Module, opt: torch.optim.Optimizer,
            look: Lookahead | None, gen: torch.Generator, dev: torch.device,
            pur_gen: torch.Generator | None = None) -> tuple[int, int, torch.Tensor, list[dict[str, Any]], dict[str, Any]]:
    """Load a checkpoint written with the same settings; return (epochs done, step, flips, history, best)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a checkpoint is a file like any other: refuse it in one line
        msg = f"cannot read checkpoint {path}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise DatasetError(msg) from None
    want = json.loads(json.dumps(settings))
    old = json.loads(json.dumps(state.get("settings", {}))) if isinstance(state, dict) else {}
    if old != want:
        diff = [k for k in {**old, **want} if old.get(k) != want.get(k)]
        msg = f"checkpoint {path} was written by a run with other settings ({', '.join(diff) or 'unknown'}); delete it to start over"
        raise OptionError(msg)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    if look is not None and state["look"] is not None:
        look.ema = {k: v.to(dev) for k, v in state["look"].items()}
    gen.set_state(state["gen"])
    if pur_gen is not None and "purifier_gen" in state:
        pur_gen.set_state(state["purifier_gen"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["epoch"]), int(state["step"]), state["flips"], list(state["history"]), dict(state["best"])


def card(name: str, model: models.Classifier, meta: dict[str, Any]) -> str:
    """The Markdown card written beside the weights."""
    ver = meta["on_reconstructions"]
    data = f"`{meta['train']}` ({meta['n_train']} images, {len(meta['classes'])} classes: {', '.join(meta['classes'][:12])}"
    data += ", ..." if len(meta["classes"]) > 12 else ""
    data += ")"
    if ver:
        data += ("; each image at each step drawn from " + ", ".join(
            (["clean" + (f" (x{meta['mix_clean']})" if meta["mix_clean"] > 1 else "")] if meta["mix_clean"] else [])
            + [f"reconstructed with `{b}`" + (f" (x{ver.count(b)})" if ver.count(b) > 1 else "") for b in dict.fromkeys(ver)]))
    if meta["init"]:
        data += f"; fine-tuned from `{meta['init']}`"
    lines = [f"# {name}", "",
             f"- Architecture: `{meta['arch']}` ({sum(p.numel() for p in model.net.parameters()):,} parameters), "
             f"preprocessing `{model.preprocess_name}` inside the model; input [0,1] NCHW floats, output logits.",
             f"- Data: {data}.",
             f"- Recipe: {json.dumps(meta['recipe'])}; {meta['epochs']} epochs, seed {meta['seed']}, "
             f"{meta['train_seconds'] / 60:.1f} min on {meta['device']}"
             + (f", {meta['amp']}" if meta.get("amp") else "") + f" (torch {meta['torch']}).",
             f"- Command: `{meta['command']}` (git {meta['git_commit'][:10]})",
             f"- Accuracy on {meta['test']} ({meta['n_test']} images, never trained on): "
             + ", ".join(f"{k}: **{v:.2f}%**" for k, v in meta["test_accuracy"].items())]
    a = meta.get("adversarial")
    if a:
        curve = ", ".join(f"{h['epoch']}: {h['check_pgd10_acc']:.1f}% ({h['check_clean_acc']:.1f}% clean)"
                          for h in meta.get("history", []) if "check_pgd10_acc" in h)
        reach = f"reached over {a['eps_warmup_epochs']:g} epochs" if a["eps_warmup_epochs"] else "from the first step"
        lines.append(f"- Adversarial training: `{a['kind']}`" + (f" (beta {a['trades_beta']:g})" if "trades_beta" in a else "")
                     + f" at eps {a['eps']:.4g} ({255 * a['eps']:.1f}/255), {reach}"
                     + (f", through the `{a['purify_in_loop']}` purifier ("
                        + ("soft-assignment backward)" if "backward=soft" in a["purify_in_loop"] else "straight-through)")
                                                            if a["purify_in_loop"] else "") + ".")
        lines.append(f"- PGD-10 check after each epoch on {a['check_images']} training images set aside (epoch: accuracy): "
                     f"{curve}; weights of epoch {a['best_check_epoch'] or 'last'}."
                     + "".join(f" {h['catastrophic_overfitting']}." for h in meta.get("history", []) if "catastrophic_overfitting" in h))
    lines.append("")
    return "\n".join(lines)
