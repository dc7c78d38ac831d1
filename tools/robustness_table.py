"""Markdown tables of the robustness results (results/robustness/*.json) for the README.

    python tools/robustness_table.py [results/robustness]
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def load_rows(path: Path) -> list[dict]:
    """A result JSON's rows; a worst case without any Linf attack under it (a CW-L2-only run) is left out."""
    d = json.loads(path.read_text())
    if "dataset" not in d:  # tools/apgd_rounding_check.py's comparisons are not harness runs
        return []
    res, rows = d["results"], []
    for i, s in enumerate(d["settings"]):
        rows.append({**s, **{k: v[i] for k, v in res.items()}, "file": path.name, "n_images": d["dataset"]["n"]})
    linf = {(r["defense"], r["eps"]) for r in rows if r["threat_model"] not in ("none", "all", "adaptive-l2")}
    return [r for r in rows if r["attack"] != "worst-case" or (r["defense"], r["eps"]) in linf]


def fmt(r: dict | None) -> str:
    if r is None:
        return ""
    a = f"{100 * r['accuracy']:.1f}"
    if r["attack"].startswith("cw-l2"):  # unbounded L2 attack: accuracy and the median L2 of its successes
        m = r.get("median_l2_success")
        return a + (f" ({m:.2f})" if m is not None else "")
    if not r.get("standalone", True):
        return f"≤{a}"
    if r.get("accuracy_all_draws") is not None and abs(r["accuracy_all_draws"] - r["accuracy"]) > 1e-9:
        a += f" ({100 * r['accuracy_all_draws']:.1f})"
    return a


ORDER = ["model-pgd", "transfer", "fgsm", "seed-bpda", "pgd", "eot-pgd", "apgd-ce", "apgd-dlr", "apgd-t", "pgd-soft",
         "reachable", "square", "square-5k", "worst-case", "cw-l2"]
HEAD = {"model-pgd": "TM1 model-wb PGD", "transfer": "TM2 transfer PGD", "fgsm": "FGSM", "seed-bpda": "seed BPDA",
        "pgd": "PGD (STE)", "eot-pgd": "EOT-PGD", "apgd-ce": "APGD-CE", "apgd-dlr": "APGD-DLR", "apgd-t": "APGD-T",
        "pgd-soft": "PGD soft-VQ", "reachable": "reachable codewords", "square": "Square", "square-5k": "Square 5000",
        "worst-case": "**worst case**",
        "cw-l2": "CW-L2 (median L2)"}


def column(attack: str) -> str:
    """Table column of an attack label ('square:queries=5000' has its own)."""
    name = attack.split(":")[0]
    return "square-5k" if name == "square" and "queries=5000" in attack else name


def table(rows: list[dict]) -> str:
    cells: dict[tuple, dict] = {}
    clean: dict[tuple, dict] = {}
    groups: dict[tuple, set] = defaultdict(set)
    present: set = set()
    for r in rows:
        key = (r["defense"], r["file"])
        name = column(r["attack"])
        if name == "clean":
            clean[key] = r
            continue
        present.add(name)
        cells[(key, r["eps_255"], name)] = r
        groups[key].add(r["eps_255"])
    attacks = [a for a in ORDER if a in present]
    head = "| defense | run | eps | n | clean | " + " | ".join(HEAD[a] for a in attacks) + " |"
    out = [head, "|" + "---|" * (5 + len(attacks))]
    for key in sorted(groups, key=lambda k: (k[1], k[0])):
        for e in sorted(groups[key], reverse=True):
            c = clean.get(key)
            es = f"{e / 255:.2g}" if key[1].startswith("mnist") else f"{e:g}/255"
            if all(a == "cw-l2" for a in attacks if (key, e, a) in cells):
                es = "(L2, unbounded)"
            line = [f"`{key[0]}`", key[1].replace(".json", ""), es, str(c["n"] if c else ""), fmt(c)]
            line += [fmt(cells.get((key, e, a))) for a in attacks]
            out.append("| " + " | ".join(line) + " |")
    return "\n".join(out)


def summary(rows: list[dict]) -> str:
    """Worst case per defense, eps and threat model (TM1 model-wb, TM2 transfer, TM3 white-box adaptive)."""
    best: dict[tuple, dict] = {}
    clean: dict[tuple, dict] = {}
    for r in rows:
        key = (r["defense"], r["file"])
        name = column(r["attack"])
        if name == "clean":
            clean[key] = r
        elif name in ("model-pgd", "transfer", "worst-case"):
            best[(key, r["eps_255"], name)] = r
    keys = sorted({(k, e) for (k, e, _) in best}, key=lambda t: (t[0][1], t[0][0], -t[1]))
    out = ["| defense | run | eps | n | clean | TM1 model white-box | TM2 transfer | TM3 adaptive white-box (worst case) |",
           "|---|---|---|---|---|---|---|---|"]
    for key, e in keys:
        es = f"{e / 255:.2g}" if key[1].startswith("mnist") else f"{e:g}/255"
        c = clean.get(key)
        out.append("| " + " | ".join([f"`{key[0]}`", key[1].replace(".json", ""), es, str(c["n"] if c else ""), fmt(c)]
                                    + [fmt(best.get((key, e, a))) for a in ("model-pgd", "transfer", "worst-case")]) + " |")
    return "\n".join(out)


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "results/robustness")
    by_ds: dict[str, list[dict]] = defaultdict(list)
    for p in sorted(root.glob("*.json")):
        if p.name == "reachable.json":
            continue
        rows = load_rows(p)
        if rows:
            by_ds[p.name.split("-")[0]].extend(rows)
    for ds, rows in by_ds.items():
        print(f"\n### {ds}: worst case per threat model\n")
        print(summary(rows))
    for ds, rows in by_ds.items():
        print(f"\n### {ds}: every attack\n")
        print(table(rows))
    print("\nAccuracy in %; randomized purifiers by majority over 10 draws, in brackets all 10 draws correct. "
          "≤ = cumulative: with early stop the attack only saw the examples every earlier column failed to break.")


if __name__ == "__main__":
    main()
