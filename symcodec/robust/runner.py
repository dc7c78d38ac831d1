"""Worst case over attacks per example, per defense and eps, with a resumable state file.

Attack specs are `name[:key=value,...]`. Threat models: 'adaptive' attacks see the whole defended
pipeline (through its backward pass), 'model-wb' attacks see only the bare classifier, 'transfer'
attacks see a separately trained surrogate; every verdict is taken on the defended model, on images
rounded to uint8 inside the eps box, by majority over `draws` passes for a randomized purifier.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..atomic import atomic_write
from ..errors import SymcodecError
from . import lib, vq
from .common import correct_draws
from .pgd import pgd as run_pgd
from .pgd import seed_bpda

# name -> (threat model, default options)
ATTACKS: dict[str, tuple[str, dict[str, Any]]] = {
    "fgsm": ("adaptive", {}),
    "pgd": ("adaptive", {"steps": 100, "restarts": 5, "loss": "ce"}),
    "pgd-margin": ("adaptive", {"steps": 100, "restarts": 1, "loss": "margin"}),
    "pgd-soft": ("adaptive", {"steps": 100, "restarts": 1, "loss": "ce", "T": 0.0}),
    "eot-pgd": ("adaptive", {"steps": 100, "restarts": 1, "loss": "ce", "eot": 10}),
    "apgd-ce": ("adaptive", {"steps": 100, "restarts": 1, "eot": 1}),
    "apgd-dlr": ("adaptive", {"steps": 100, "restarts": 1, "eot": 1}),
    "apgd-t": ("adaptive", {"steps": 100, "restarts": 1, "targets": 9, "eot": 1}),
    "square": ("adaptive", {"queries": 1000}),
    "reachable": ("adaptive", {"iters": 40, "samples": 47}),
    "seed-bpda": ("adaptive", {}),
    "cw-l2": ("adaptive-l2", {"c": 1.0, "steps": 100}),
    "model-pgd": ("model-wb", {"steps": 20}),
    "transfer": ("transfer", {"steps": 20}),
}


DESCRIPTIONS = {
    "fgsm": "torchattacks FGSM, one signed step of eps through the defense's backward pass",
    "pgd": "our PGD-Linf through the defense's backward pass (straight-through for VQ/JPEG/bits): step eps/4, "
           "uniform random start, best iterate, per-example early stop once the uint8-rounded iterate is verified wrong",
    "pgd-margin": "as pgd with the CW margin loss",
    "pgd-soft": "as pgd with the VQ soft-assignment surrogate backward (softmax(-d^2/T) over the 32 nearest centroids; "
                "T=0 means half the mean squared nearest-centroid spacing)",
    "eot-pgd": "as pgd with the gradient and loss averaged over `eot` purifier draws per step; success verified by "
               "majority over `eot` fresh draws",
    "apgd-ce": "torchattacks APGD (Croce & Hein 2020 port), CE loss, automatic step size, eot_iter for randomized purifiers",
    "apgd-dlr": "torchattacks APGD with the DLR loss",
    "apgd-t": "targeted APGD (torchattacks APGDT, targeted DLR loss) against each of the `targets` highest-scoring "
              "wrong classes in turn; an example leaves once its uint8-rounded image is verified misclassified",
    "square": "torchattacks Square (score-based black box, margin loss, p_init 0.8)",
    "reachable": "greedy linearised search over the codewords reachable inside the eps box (witness pre-images on "
                 "the uint8 grid: clean patch, 16 corners, `samples` random points); deterministic VQ only",
    "seed-bpda": "SymDNN's released BPDAattack: 100 sign steps of 0.5 (far larger than eps: box-corner jumps), no random "
                 "start, no restarts, last iterate, no EOT",
    "cw-l2": "torchattacks CW L2 (kappa 0), unbounded; reported with the median L2 of its successes",
    "model-pgd": "threat model 1: PGD on the bare classifier (step eps/4, random start, last iterate, CE), "
                 "evaluated through the defense",
    "transfer": "threat model 2: PGD on a separately trained surrogate (same settings), evaluated through the defense",
}


@dataclass
class AttackSpec:
    """A parsed attack spec."""

    name: str
    opts: dict[str, Any] = field(default_factory=dict)

    @property
    def threat(self) -> str:
        return ATTACKS[self.name][0]

    @property
    def label(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.opts.items()) if ATTACKS[self.name][1].get(k) != v)
        return self.name + (f":{extra}" if extra else "")


def parse_attack(spec: str) -> AttackSpec:
    """'pgd:steps=200,restarts=10' -> AttackSpec with the defaults filled in."""
    name, _, rest = spec.strip().partition(":")
    if name not in ATTACKS:
        raise SymcodecError(f"unknown attack {name!r} (known: {', '.join(ATTACKS)})")
    opts = dict(ATTACKS[name][1])
    for item in filter(None, rest.split(",")):
        k, eq, v = item.partition("=")
        if not eq or k not in opts:
            raise SymcodecError(f"bad option {item!r} for attack {name} (options: {', '.join(opts) or 'none'})")
        opts[k] = type(opts[k])(float(v)) if isinstance(opts[k], (int, float)) else v
    return AttackSpec(name, opts)


def craft(spec: AttackSpec, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, seed: int = 0) -> torch.Tensor:
    """Adversarial images for one attack against `model` (the defended model, or the source model)."""
    o = spec.opts
    n = spec.name
    if n == "fgsm":
        return lib.fgsm(model, x, y, eps)
    if n in ("pgd", "pgd-margin", "eot-pgd"):
        return run_pgd(model, x, y, eps, steps=o["steps"], restarts=o["restarts"], loss=o["loss"],
                        eot=o.get("eot", 1), seed=seed)
    if n == "pgd-soft":
        pur = getattr(model, "purifier", None)
        if pur is None or not hasattr(pur, "soft"):
            raise SymcodecError("pgd-soft needs a sym: (VQ) defense")
        saved = (pur.backward_mode, pur.temperature)
        pur.backward_mode, pur.temperature = "soft", (o["T"] or pur.default_temperature())
        try:
            return run_pgd(model, x, y, eps, steps=o["steps"], restarts=o["restarts"], loss=o["loss"], seed=seed)
        finally:
            pur.backward_mode, pur.temperature = saved
    if n in ("apgd-ce", "apgd-dlr"):
        return lib.apgd(model, x, y, eps, loss=n[5:], steps=o["steps"], restarts=o["restarts"], eot=o["eot"], seed=seed)
    if n == "apgd-t":
        return lib.apgd_t(model, x, y, eps, steps=o["steps"], restarts=o["restarts"], targets=o["targets"],
                          eot=o["eot"], seed=seed)
    if n == "square":
        return lib.square(model, x, y, eps, queries=o["queries"], seed=seed)
    if n == "reachable":
        return vq.reachable_attack(model, x, y, eps, iters=o["iters"], samples=o["samples"], seed=seed)
    if n == "seed-bpda":
        return seed_bpda(model, x, y, eps)
    if n == "cw-l2":
        return lib.cw_l2(model, x, y, c=o["c"], steps=o["steps"])
    if n in ("model-pgd", "transfer"):  # high-confidence source examples: full steps, last iterate
        return run_pgd(model, x, y, eps, steps=o["steps"], restarts=1, loss="ce", keep="last", early_stop=False, seed=seed)
    raise SymcodecError(f"attack {n} is not implemented")  # pragma: no cover


def applicable(spec: AttackSpec, model: nn.Module) -> bool:
    """VQ-specific attacks apply only to VQ defenses ('reachable' only to the deterministic one)."""
    pur = getattr(model, "purifier", None)
    is_vq = pur is not None and hasattr(pur, "soft")
    if spec.name == "pgd-soft":
        return is_vq
    if spec.name == "reachable":
        return is_vq and not pur.randomized
    if spec.name == "eot-pgd":
        return bool(getattr(model, "randomized", False))
    return True


class State:
    """Per-example results in a JSON file, saved atomically after every batch."""

    def __init__(self, path: Path | None, meta: dict[str, Any]) -> None:
        self.path, self.data = path, {"meta": meta, "rows": {}}
        if path is not None and path.exists():
            old = json.loads(path.read_text())
            if old.get("meta") != meta:
                raise SymcodecError(f"state file {path} belongs to a different run (delete it or pass another --state)")
            self.data = old

    def get(self, key: str, n: int) -> list[Any]:
        return self.data["rows"].setdefault(key, [None] * n)

    def save(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(self.data).encode())


def _bar(total: int, desc: str, show: bool) -> Any:
    return tqdm(total=total, desc=desc, disable=not show, leave=False, dynamic_ncols=True)


def evaluate(
    defenses: dict[str, nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    eps_list: list[float],
    attacks: list[AttackSpec],
    sources: dict[str, nn.Module] | None = None,
    draws: int = 10,
    batch: int = 100,
    early_stop: bool = True,
    state_path: Path | None = None,
    meta: dict[str, Any] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every attack at every eps against every defense; per-example worst case; rows for the JSON."""
    n = len(x)
    state = State(state_path, meta or {})
    sources = sources or {}
    cache: dict[str, torch.Tensor] = {}
    rows: list[dict[str, Any]] = []
    for dname, model in defenses.items():
        model.eval()
        nd = draws if getattr(model, "randomized", False) else 1
        clean = state.get(f"{dname}|clean", n)
        if any(v is None for v in clean):
            clean[:] = correct_draws(model, x, y, nd).tolist()
            state.save()
        ok_clean = np.array(clean) * 2 > nd
        rows.append(_row(dname, 0.0, "clean", "none", np.array(clean), nd, ok_clean, True, 0.0))
        for eps in eps_list:
            alive = ok_clean.copy()
            alive_all = np.array(clean) == nd
            for spec in attacks:
                if not applicable(spec, model):
                    continue
                linf = spec.threat != "adaptive-l2"
                # an L2 attack ignores eps: run it once per defense and repeat its row under every eps
                key = f"{dname}|{eps:.6f}|{spec.label}" if linf else f"{dname}|l2|{spec.label}"
                res = state.get(key, n)
                cheap = spec.threat in ("model-wb", "transfer")  # cached source images: always standalone
                full = cheap or not early_stop or not linf
                todo = [i for i in range(n) if res[i] is None and ok_clean[i] and (alive[i] or full)]
                t0 = time.time()
                if spec.threat in ("model-wb", "transfer"):
                    src = sources.get(spec.threat)
                    if src is None:
                        raise SymcodecError(f"attack {spec.name} needs a {spec.threat} source model")
                    ck = f"{spec.threat}|{spec.label}|{eps}"
                    if todo and ck not in cache:  # (a resumed run whose rows are all done needs no images)
                        cache[ck] = _source_adv(spec, src, x, y, eps, batch, seed, progress, state_path, meta or {})
                    if todo:
                        res_t = correct_draws(model, cache[ck][todo], y[todo], nd)
                        for i, v in zip(todo, res_t.tolist()):
                            res[i] = v
                        state.save()
                else:
                    bar = _bar(len(todo), f"{dname} {spec.label} {eps * 255:.3g}/255", progress)
                    for s in range(0, len(todo), batch):
                        ids = todo[s : s + batch]
                        adv = craft(spec, model, x[ids], y[ids], eps, seed=seed + s)
                        res_t = correct_draws(model, adv, y[ids], nd)
                        for i, v in zip(ids, res_t.tolist()):
                            res[i] = v
                        if spec.name == "cw-l2":
                            l2 = (adv - x[ids]).flatten(1).norm(dim=1).tolist()
                            d = state.get(key + "|l2", n)
                            for i, v in zip(ids, l2):
                                d[i] = v
                        state.save()
                        bar.update(len(ids))
                    bar.close()
                for i in range(n):
                    if res[i] is None and ok_clean[i] and not full and not alive[i]:
                        res[i] = -1  # not attacked: an earlier attack already broke it
                got = np.array([-1 if v is None else v for v in res])
                ok = (got * 2 > nd) & ok_clean
                standalone = bool(np.all((got >= 0) | ~ok_clean))
                row = _row(dname, eps, spec.label, spec.threat, got, nd, ok, standalone, time.time() - t0)
                if spec.name == "cw-l2":
                    l2 = np.array([v for v, g in zip(state.get(key + "|l2", n), got) if v is not None and g >= 0 and g * 2 <= nd])
                    row["median_l2_success"] = float(np.median(l2)) if len(l2) else None
                if linf:
                    alive &= ok
                    alive_all &= got == nd
                rows.append(row)
            wc = _row(dname, eps, "worst-case", "all", None, nd, alive, True, 0.0)
            wc["accuracy_all_draws"] = float(alive_all.mean())
            rows.append(wc)
    return {"rows": rows, "n": n}


def _source_adv(spec: AttackSpec, src: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, batch: int, seed: int,
                progress: bool, state_path: Path | None, meta: dict[str, Any]) -> torch.Tensor:
    """Defense-independent adversarial images (model-wb / transfer), cached beside the state file as uint8."""
    tag = json.dumps([meta.get("dataset"), meta.get("model"), meta.get("surrogate"), spec.threat, spec.label,
                      round(eps, 8), len(x), seed])
    path = None
    if state_path is not None:
        path = state_path.parent / f"adv-{spec.name}-{hashlib.sha256(tag.encode()).hexdigest()[:16]}.pt"
        if path.exists():
            blob = torch.load(path, weights_only=True)
            if blob.get("tag") == tag:
                return blob["adv"].to(x.device).float() / 255
    adv = _batched(spec, src, x, y, eps, batch, seed, f"{spec.label} (source) {eps * 255:.3g}/255", progress)
    if path is not None:
        buf = io.BytesIO()
        torch.save({"tag": tag, "adv": torch.round(adv * 255).to(torch.uint8).cpu()}, buf)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, buf.getvalue())
    return adv


def _batched(spec: AttackSpec, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, batch: int,
             seed: int, desc: str, progress: bool) -> torch.Tensor:
    out = torch.empty_like(x)
    bar = _bar(len(x), desc, progress)
    for s in range(0, len(x), batch):
        out[s : s + batch] = craft(spec, model, x[s : s + batch], y[s : s + batch], eps, seed=seed + s)
        bar.update(len(x[s : s + batch]))
    bar.close()
    return out


def _row(defense: str, eps: float, attack: str, threat: str, got: np.ndarray | None, nd: int,
         ok: np.ndarray, standalone: bool, seconds: float) -> dict[str, Any]:
    acc = float(ok.mean())
    row = {"defense": defense, "eps": eps, "eps_255": round(eps * 255, 3),
           "eps_applied_255": int(math.floor(eps * 255 + 1e-4)),  # the box is snapped inwards to whole pixel values
           "attack": attack, "threat_model": threat,
           "accuracy": acc, "ci95": 1.96 * math.sqrt(max(acc * (1 - acc), 1e-12) / len(ok)), "n": int(len(ok)),
           "standalone": standalone, "seconds": round(seconds, 1)}
    if got is not None:
        row["n_attacked"] = int((got >= 0).sum())
        row["accuracy_all_draws"] = float(((got == nd) & ok).mean()) if nd > 1 else acc
    return row
