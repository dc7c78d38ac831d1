"""Fine-tune a symbol classifier (`symcodec.classify.symbolic`): the classifier learns its own decoding of the ids.

The training images are turned into the ids the encoder writes (once, no entropy coding); each step embeds a
batch of ids into pixels through the front end's tables, augments those pixels (the pixel classifier's
translations and alternating flips: the augmentation is differentiable, so the tables learn from every view),
and trains tables and backbone together (the backbone with its own recipe, the tables with Adam on the same
schedule). `freeze_tables` keeps the tables at the centroids: the same steps on the decoder's pixels, the
control that says what the learned tables add; `freeze_backbone` trains the tables alone (the pixel classifier
unchanged, its batch-norm statistics too: the classifier-aware decoding of the same ids in isolation). Needs the [torch] extra.
"""
from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..atomic import atomic_write
from ..classify import models, symbolic
from ..classify.device import describe
from ..codebook import registry
from ..errors import OptionError
from .classifier import PRESETS, EpochTally, Lookahead, _git_commit, _load, _optimizer, augment, triangle


def train_symbolic(train: str | os.PathLike[str], out: str | os.PathLike[str], *, codebook: str, init: str,
                   test: str | os.PathLike[str], epochs: float = 1.0, lr_scale: float = 0.15, table_lr: float = 1e-3,
                   freeze_tables: bool = False, freeze_backbone: bool = False, lookahead: bool = True, seed: int = 0, threads: int = 2,
                   limit: int | None = None, progress: bool = True, command: str = "") -> dict[str, Any]:
    """Fine-tune `init` (a pixel classifier) into a symbol classifier for `codebook`; write OUT (.pt) and its card (.md)."""
    out = Path(out)
    if out.suffix != ".pt":
        msg = f"output {out} must end in .pt (the card is written beside it as .md)"
        raise OptionError(msg)
    if not 0 < epochs <= 100:
        msg = f"epochs must be from 0 to 100, got {epochs}"
        raise OptionError(msg)
    if freeze_tables and freeze_backbone:
        msg = "freezing both the tables and the backbone leaves nothing to train"
        raise OptionError(msg)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.time()
    cb = registry.get(codebook)
    xtr, ytr, classes = _load(train, limit)
    xte, yte, _ = _load(test, None, classes)
    backbone = models.load(init)
    hp = dict(PRESETS[backbone.arch])
    hp["lr"] *= lr_scale
    hp["preprocess"] = backbone.preprocess_name
    model = symbolic.build(cb, backbone, xtr.shape[1], xtr.shape[2], "L" if xtr.shape[3] == 1 else "RGB")
    start = copy.deepcopy(model).eval()  # the untrained symbol classifier: the card's baseline
    ids_tr = torch.from_numpy(symbolic.symbols(xtr, cb, threads).astype(np.int64))
    ids_te = symbolic.symbols(xte, cb, threads)
    model.front.requires_grad_(not freeze_tables)
    backbone.requires_grad_(not freeze_backbone)
    whiten = getattr(backbone.net, "whiten", None)
    if whiten is not None:  # as the pixel trainer fine-tunes: the whitening layer (weights and bias) stays fixed
        whiten.bias.requires_grad_(False)
    opt = _optimizer(backbone, hp) if not freeze_backbone else None
    opt_t = torch.optim.Adam(model.front.parameters(), lr=table_lr) if not freeze_tables else None
    look = Lookahead(model) if lookahead else None
    n, bs = len(ids_tr), hp["batch"]
    total = max(1, int(epochs * math.ceil(n / bs)))
    sched = triangle(total)
    alpha = 0.95 ** 5 * (np.arange(total + 1) / total) ** 3
    y_train = torch.from_numpy(ytr)
    flips = torch.rand(n, generator=gen) < 0.5
    red = "sum" if hp["airbench"] else "mean"
    model.train()
    if freeze_backbone:
        backbone.eval()  # its batch-norm statistics stay those of `init`; gradients still reach the tables
    step, t_train = 0, time.time()
    bar = tqdm(total=total, desc="train symbols", unit="step", disable=not progress, file=sys.stderr)
    history = []
    for epoch in range(math.ceil(epochs)):
        perm = torch.randperm(n, generator=gen)
        if hp["flip"] and epoch > 0:
            flips = ~flips
        tally = EpochTally(hp["airbench"])
        for i in range(0, n, bs):
            if step >= total:
                break
            idx = perm[i:i + bs]
            xb = augment(model.front(ids_tr[idx]), hp["translate"], flips[idx] if hp["flip"] else None, gen)
            yb = y_train[idx]
            logits = backbone(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=hp["smoothing"], reduction=red)
            if opt is not None:
                for g in opt.param_groups:
                    g["lr"] = g["base_lr"] * float(sched[step])
                opt.zero_grad(set_to_none=True)
            if opt_t is not None:
                for g in opt_t.param_groups:
                    g["lr"] = table_lr * float(sched[step])
                opt_t.zero_grad(set_to_none=True)
            loss.backward()
            if opt is not None:
                opt.step()
            if opt_t is not None:
                opt_t.step()
                with torch.no_grad():
                    for t in model.front.tables:
                        t.weight.clamp_(0, 1)  # rows stay pixel values
            step += 1
            if look is not None and step % 5 == 0:
                look.update(model, float(alpha[step]))
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, **tally.add(logits, yb, loss))
        history.append(tally.record(epoch, step))
    bar.close()
    if look is not None:
        look.update(model, 1.0)
    train_s = time.time() - t_train
    model.eval()
    acc = {"symbols": float((symbolic.predict(model, ids_te) == yte).mean() * 100),
           f"{init} on the same symbols (start)": float((symbolic.predict(start, ids_te) == yte).mean() * 100)}
    moved = (model.front.tables[0].weight - start.front.tables[0].weight).detach().abs()
    meta = {"train": str(train), "test": str(test), "classes": classes, "n_train": n, "n_test": len(yte),
            "codebook": model.codebook, "init": init, "test_accuracy": acc, "recipe": hp, "epochs": epochs,
            "table_lr": 0.0 if freeze_tables else table_lr, "freeze_tables": freeze_tables, "freeze_backbone": freeze_backbone, "lookahead": lookahead,
            "seed": seed, "command": command, "history": history, "table_change_mean_255": float(moved.mean() * 255),
            "git_commit": _git_commit(), "train_seconds": round(train_s), "total_seconds": round(time.time() - t0),
            "torch": str(torch.__version__), "device": describe(torch.device("cpu"), threads)}
    symbolic.save(model, out, meta)
    atomic_write(out.with_suffix(".md"), card(out.stem, model, meta).encode())
    return meta


def card(name: str, model: symbolic.SymbolClassifier, meta: dict[str, Any]) -> str:
    """The Markdown card written beside a symbol classifier."""
    f = model.front
    tables = f"{f.nplanes} tables of {f.tables[0].num_embeddings} x {f.tables[0].embedding_dim}"
    how = "frozen at the centroids (control: the decoder's pixels)" if meta["freeze_tables"] else \
        f"learned (Adam, lr {meta['table_lr']:g} on the schedule; mean change of a luma value {meta['table_change_mean_255']:.2f}/255)"
    return "\n".join([
        f"# {name}", "",
        f"- Reads the symbols of `{meta['codebook']}` (.sym files of {f.width}x{f.height} images): {tables}, {how}; "
        f"backbone `{model.backbone.arch}` ({sum(p.numel() for p in model.backbone.net.parameters()):,} parameters) "
        + (f"`{meta['init']}` unchanged (only the tables trained)." if meta.get("freeze_backbone") else f"fine-tuned from `{meta['init']}`."),
        f"- Data: `{meta['train']}` ({meta['n_train']} images), the ids the encoder writes for them.",
        f"- Recipe: {json.dumps(meta['recipe'])}; {meta['epochs']} epochs, seed {meta['seed']}, "
        f"{meta['train_seconds'] / 60:.1f} min on {meta['device']} (torch {meta['torch']}).",
        f"- Command: `{meta['command']}` (git {meta['git_commit'][:10]})",
        f"- Accuracy on `{meta['test']}` ({meta['n_test']} images, never trained on): "
        + ", ".join(f"{k}: **{v:.2f}%**" for k, v in meta["test_accuracy"].items()), ""])
