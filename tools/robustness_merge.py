"""Join the per-(defense, eps) parts written by tools/robustness_gpu.sh into the usual robustness JSONs.

    python tools/robustness_merge.py PARTS_DIR [--out results/robustness] [--state-out results/robustness/state]

PARTS_DIR holds plan.tsv (output name, then its part JSONs in defense-major, eps-minor order), the part
JSONs and state/. Each complete output is written to --out; the parts' state files are also joined into
--state-out/<output stem>.state (with the cached source images), so an incomplete run resumes with
tools/robustness_runs.sh on any machine.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result JSON from parts that each hold some (defense, eps) blocks of the same run."""
    out = {k: v for k, v in parts[0].items() if k not in ("settings", "results")}
    metrics = list(parts[0]["results"])
    for p in parts[1:]:
        for m in p["results"]:
            if m not in metrics:
                metrics.append(m)
        out["attacks"].update(p["attacks"])
        for key in ("dataset", "model", "surrogate", "draws", "early_stop", "seed"):
            if p[key] != out[key]:
                raise SystemExit(f"parts disagree on {key}: {p[key]!r} vs {out[key]!r}")
    order: list[str] = []
    clean: dict[str, tuple[dict, dict]] = {}
    blocks: dict[str, list[tuple[dict, dict]]] = {}
    for p in parts:
        for i, s in enumerate(p["settings"]):
            row = (s, {m: p["results"].get(m, [None] * len(p["settings"]))[i] for m in metrics})
            d = s["defense"]
            if d not in order:
                order.append(d)
            if s["attack"] == "clean":
                clean.setdefault(d, row)
            else:
                blocks.setdefault(d, []).append(row)
    rows = [r for d in order for r in ([clean[d]] + blocks.get(d, []))]
    out["settings"] = [s for s, _ in rows]
    out["results"] = {m: [v[m] for _, v in rows] for m in metrics}
    devices = list(dict.fromkeys(p.get("device", "?") for p in parts))
    out["device"] = ", ".join(devices)
    out["parts"] = (f"{len(parts)} processes, one per defense and eps, on {' and '.join(devices)}; 'seconds' is each "
                    "row's wall time inside its process")
    if any(p["versions"] != out["versions"] or p.get("git_commit") != out.get("git_commit") for p in parts):
        out["part_versions"] = [{"device": p.get("device"), "git_commit": p.get("git_commit"), **p["versions"]}
                                for p in parts]
    return out


def merge_states(paths: list[Path]) -> dict[str, Any] | None:
    """Union of the parts' per-example rows (their metas must agree)."""
    data: dict[str, Any] | None = None
    for p in paths:
        if not p.exists():
            continue
        d = json.loads(p.read_text())
        if data is None:
            data = {"meta": d["meta"], "rows": {}}
        elif d["meta"] != data["meta"]:
            raise SystemExit(f"state {p} belongs to another run")
        for k, v in d["rows"].items():
            old = data["rows"].get(k)
            data["rows"][k] = v if old is None else [a if a is not None else b for a, b in zip(old, v)]
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parts_dir", type=Path)
    ap.add_argument("--out", type=Path, default=Path("results/robustness"))
    ap.add_argument("--state-out", type=Path, default=Path("results/robustness/state"))
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    a.state_out.mkdir(parents=True, exist_ok=True)
    for f in (a.parts_dir / "state").glob("adv-*.pt"):
        shutil.copyfile(f, a.state_out / f.name)
    for line in (a.parts_dir / "plan.tsv").read_text().splitlines():
        name, *parts = line.split("\t")
        stem = Path(name).stem
        st = merge_states([a.parts_dir / "state" / (Path(p).stem + ".state") for p in parts])
        if st is not None:
            (a.state_out / f"{stem}.state").write_text(json.dumps(st))
        missing = [p for p in parts if not (a.parts_dir / p).exists()]
        if missing:
            print(f"{name}: incomplete, {len(missing)} of {len(parts)} parts missing ({', '.join(missing)}); "
                  f"state joined into {a.state_out / (stem + '.state')}")
            continue
        res = merge([json.loads((a.parts_dir / p).read_text()) for p in parts])
        (a.out / name).write_text(json.dumps(res, indent=1) + "\n")
        print(f"{name}: {len(res['settings'])} rows from {len(parts)} parts")


if __name__ == "__main__":
    main()
