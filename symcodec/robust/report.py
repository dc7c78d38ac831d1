"""The `symcodec robustness` entry point: load data and models, run the worst-case evaluation, write JSON."""
from __future__ import annotations

import functools
import importlib.metadata as md
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write
from ..classify import models
from ..classify.device import describe, resolve
from ..data.sources import load_arrays
from ..errors import SymcodecError
from .defense import Defended, make_purifier
from .runner import DESCRIPTIONS, evaluate, parse_attack

SHARED = Path(os.environ.get("SYMCODEC_SHARED") or Path(__file__).resolve().parents[2].parent / "shared")
DATASETS = {"cifar10": "datasets/cifar10-jpeg/test.tar", "mnist": "datasets/mnist/t10k-images.idx3-ubyte.gz"}
SEED_MODELS = {
    "seed-cifar10": ("reference/symdnn/cifar10/cifar10_resnet_gradinit_sc_232.pt", "resnet20", "cifar-softclamp"),
    "seed-cifar10-holdout": ("reference/symdnn/cifar10/cifar10_holdout.pt", "resnet20", "cifar-softclamp"),
}


def parse_eps(text: str) -> list[float]:
    """'2/255,4/255,0.3' -> floats."""
    out = []
    for tok in filter(None, (t.strip() for t in text.split(","))):
        try:
            num, _, den = tok.partition("/")
            out.append(float(num) / (float(den) if den else 1.0))
        except ValueError:
            raise SymcodecError(f"bad eps {tok!r} (use e.g. 8/255 or 0.3)") from None
    if not out or any(e < 0 or e > 1 for e in out):
        raise SymcodecError(f"eps list {text!r} must hold values in [0, 1]")
    return out


def load_model(name: str) -> torch.nn.Module:
    """A shipped classifier by name/path, or one of SymDNN's ('seed-cifar10', 'seed-cifar10-holdout')."""
    if name in SEED_MODELS:
        rel, arch, pre = SEED_MODELS[name]
        path = SHARED / rel
        if not path.exists():
            raise SymcodecError(f"seed weights {path} not found")
        return models.load_seed(path, arch, pre)
    return models.load(name)


def load_subset(dataset: str, limit: int | None) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Evenly spaced test images (index i*N_total//limit): NCHW float in [0, 1], labels, indices."""
    src = Path(dataset)
    if not src.exists() and dataset in DATASETS:
        src = SHARED / DATASETS[dataset]
    x, y = _arrays(str(src.resolve()) if src.exists() else str(src))
    n = len(x) if not limit else min(limit, len(x))
    idx = (np.arange(n) * len(x)) // n
    xt = torch.from_numpy(np.ascontiguousarray(x[idx])).permute(0, 3, 1, 2).float() / 255
    return xt, torch.from_numpy(y[idx]), idx


@functools.lru_cache(maxsize=2)
def _arrays(src: str) -> tuple[np.ndarray, np.ndarray]:
    x, y, _ = load_arrays(src)
    return x, y


def _git() -> str:
    if os.environ.get("SYMCODEC_GIT_COMMIT"):  # a copy of the tree without .git (e.g. on a GPU machine)
        return os.environ["SYMCODEC_GIT_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent,
                              check=False).stdout.strip()
    except OSError:
        return ""


def robustness(dataset: str, model: str, defenses: list[str], attacks: list[str], eps: str, limit: int | None = None,
               surrogate: str | None = None, draws: int = 10, batch: int = 100, early_stop: bool = True,
               state: str | None = None, json_out: str | None = None, seed: int = 0, threads: int = 1,
               progress: bool = True, device: str = "cpu") -> dict[str, Any]:
    """Evaluate defenses x attacks x eps on a test subset; returns (and optionally writes) the result JSON.

    device='cuda' runs models, attacks and the VQ search there (exact float32: TF32 is switched off, so
    verdicts match the CPU's up to float rounding); random streams are drawn on the CPU either way.
    """
    torch.set_num_threads(threads)
    dev = resolve(device)
    torch.manual_seed(seed)
    eps_list = parse_eps(eps)
    specs = [parse_attack(a) for a in attacks]
    clf = load_model(model).to(dev)
    sources: dict[str, torch.nn.Module] = {"model-wb": clf}
    if surrogate:
        sources["transfer"] = load_model(surrogate).to(dev).eval()
    elif any(s.threat == "transfer" for s in specs):
        raise SymcodecError("the transfer attack needs --surrogate MODEL")
    defs = {d: Defended(make_purifier(d, seed=seed), clf).to(dev).eval() for d in defenses}
    x, y, idx = load_subset(dataset, limit)
    x, y = x.to(dev), y.to(dev)
    meta = {"dataset": dataset, "model": model, "surrogate": surrogate, "n": len(x), "seed": seed, "draws": draws,
            "early_stop": early_stop}
    sp = Path(state) if state else (Path(json_out + ".state") if json_out else None)
    out = evaluate(defs, x, y, eps_list, specs, sources=sources, draws=draws, batch=batch, early_stop=early_stop,
                   state_path=sp, meta=meta, seed=seed, progress=progress)
    rows = out["rows"]
    metrics = ["accuracy", "accuracy_all_draws", "ci95", "n", "n_attacked", "standalone", "seconds"]
    result = {
        "name": f"robustness-{Path(dataset).stem}-{model}",
        "description": ("Robust accuracy of purification defenses (Linf on raw [0,1] pixels, adversarial images "
                        "rounded to uint8 in the eps box, verdict on the defended model; randomized purifiers by "
                        f"majority over {draws} draws, 'accuracy_all_draws' = every draw correct). "
                        "Rows after 'clean' are attacks in the order run; with early_stop an attack only sees "
                        "examples every earlier attack failed on (standalone=false), so its accuracy is cumulative."),
        "settings": [{k: r[k] for k in ("defense", "eps", "eps_255", "attack", "threat_model")} for r in rows],
        "results": {m: [r.get(m) for r in rows] for m in metrics},
        "aggregation": "per-example worst case over attacks ('worst-case' rows); accuracy over the n test images",
        "attacks": {s.label: {"name": s.name, "threat_model": s.threat, **s.opts, "description": DESCRIPTIONS[s.name]}
                    for s in specs},
        "dataset": {"source": dataset, "n": len(x), "indices": f"i*N_total//{len(x)}", "first": idx[:5].tolist()},
        "model": model, "surrogate": surrogate, "draws": draws, "early_stop": early_stop,
        "versions": _versions(), "git_commit": _git(), "seed": seed, "device": describe(dev),
    }
    for extra in ("median_l2_success",):
        if any(extra in r for r in rows):
            result["results"][extra] = [r.get(extra) for r in rows]
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(Path(json_out), (json.dumps(result, indent=1) + "\n").encode())
    return result


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("symcodec", "torch", "numpy", "torchattacks"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "missing"
    return out


def table(result: dict[str, Any]) -> str:
    """A plain-text table of a result JSON (defense, eps, attack, accuracy)."""
    lines = [f"{'defense':<34} {'eps':>7} {'attack':<28} {'threat':<10} {'acc %':>6} {'all-draws':>9} {'n_att':>5}"]
    res = result["results"]
    for i, s in enumerate(result["settings"]):
        acc, alld, na = res["accuracy"][i], res["accuracy_all_draws"][i], res["n_attacked"][i]
        lines.append(f"{s['defense']:<34} {s['eps_255']:>7} {s['attack']:<28} {s['threat_model']:<10} {100 * acc:6.1f} "
                     f"{'' if alld is None else f'{100 * alld:9.1f}'} {'' if na is None else na:>5}")
    return "\n".join(lines)
