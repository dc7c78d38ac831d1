"""The package's layering, checked from the source: no import upward or sideways, no cycle, no needless lazy import.

Usage: python tools/check_layers.py [--verbose]
Every `import` in symcodec/ (at the top of a module and inside functions) that names a symcodec module
is an edge. Rules, printed as one line per violation (exit 1 if any):
- an edge goes to a lower layer of LAYERS, or stays inside its own package;
- the graph of all edges has no cycle;
- an import inside a function names a symcodec module only when that module pulls in a heavy optional
  dependency (HEAVY) at its top level, directly or through its own top-level imports: deferring it keeps
  `import symcodec` and the decoder free of torch and faiss. Everything else is imported at the top.
tests/test_layers.py runs the same check.
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# lowest first; a module may import its own package and anything in a lower layer, nothing beside or above
LAYERS = [
    ["symcodec.errors", "symcodec.jit", "symcodec.atomic", "symcodec.version"],
    ["symcodec.format", "symcodec.entropy", "symcodec.vq"],
    ["symcodec.codebook"],
    ["symcodec.codec"],
    ["symcodec.SymImagePlugin", "symcodec.data", "symcodec.classify"],
    ["symcodec.robust", "symcodec.stream"],
    ["symcodec.train"],  # adversarial training goes through the robustness defenses
    ["symcodec.bench"],
    ["symcodec.cli", "symcodec"],
]
HEAVY = {"torch", "faiss", "matplotlib", "skimage", "torchattacks", "ray"}


def modules(pkg: Path) -> dict[str, Path]:
    """Module name -> file, for every .py under the package (packages by their __init__)."""
    out = {}
    for f in sorted(pkg.rglob("*.py")):
        parts = f.relative_to(pkg.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _targets(mods: dict[str, Path], cur: str, node: ast.Import | ast.ImportFrom) -> tuple[list[str], list[str]]:
    """(symcodec modules, other top-level packages) that an import statement names."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = cur.split(".") if mods[cur].name == "__init__.py" else cur.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            mod = ".".join(base + ([node.module] if node.module else []))
        else:
            mod = node.module or ""
        subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in mods]
        names = subs or [mod]
    ours = [n for n in names if n in mods or n.split(".")[0] == "symcodec"]
    return [n for n in ours if n in mods and n != cur], [n.split(".")[0] for n in names if n not in ours]


def layer(name: str) -> tuple[int, str]:
    """(rank, unit) of a module: the deepest LAYERS entry that contains it."""
    best = (-1, "")
    for rank, units in enumerate(LAYERS):
        for u in units:
            inside = name == u or (name.startswith(u + ".") and u != "symcodec")  # the package root: its __init__ only
            if inside and len(u) > len(best[1]):
                best = (rank, u)
    return best


def graph(pkg: Path) -> tuple[dict[str, Path], list[tuple[str, str, bool, int]], dict[str, set[str]]]:
    """Modules, import edges (from, to, inside a function, line) and each module's top-level third-party imports."""
    mods = modules(pkg)
    edges, third = [], {}
    for m, f in mods.items():
        tree = ast.parse(f.read_text(), str(f))
        top = set(id(n) for n in tree.body)
        third[m] = set()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            ours, other = _targets(mods, m, node)
            lazy = id(node) not in top
            edges += [(m, t, lazy, node.lineno) for t in ours]
            if not lazy:
                third[m].update(other)
    return mods, edges, third


def heavy_modules(mods: dict[str, Path], edges: list[tuple[str, str, bool, int]], third: dict[str, set[str]]) -> set[str]:
    """Modules whose import (top-level, transitively) pulls in a HEAVY package."""
    heavy = {m for m in mods if third[m] & HEAVY}
    while True:
        more = {a for a, b, lazy, _ in edges if not lazy and b in heavy} - heavy
        if not more:
            return heavy
        heavy |= more


def cycles(mods: dict[str, Path], edges: list[tuple[str, str, bool, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    adj: dict[str, set[str]] = {m: set() for m in mods}
    for a, b, _, _ in edges:
        if b != a and not a.startswith(b + "."):  # a submodule importing its own package __init__ is not a cycle here
            adj[a].add(b)
    idx: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        idx[v] = low[v] = len(idx)
        stack.append(v)
        on.add(v)
        for w in adj[v]:
            if w not in idx:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in mods:
        if v not in idx:
            visit(v)
    return out


def check(pkg: Path = ROOT / "symcodec") -> list[str]:
    """Every violation of the rules above, one line each."""
    mods, edges, third = graph(pkg)
    heavy = heavy_modules(mods, edges, third)
    problems = []
    for m in mods:
        if layer(m)[0] < 0:
            problems.append(f"{m}: in no layer of tools/check_layers.py LAYERS")
    for a, b, lazy, line in edges:
        (ra, ua), (rb, ub) = layer(a), layer(b)
        if ua != ub and rb >= ra:
            problems.append(f"{a}:{line} imports {b}, {'beside' if rb == ra else 'above'} it (layer {ra} -> {rb})")
        if lazy and b not in heavy:
            problems.append(f"{a}:{line} imports {b} inside a function, but {b} needs no heavy optional dependency")
    problems += ["import cycle: " + " -> ".join(c) for c in cycles(mods, edges)]
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--verbose", action="store_true", help="also list the layers and every lazy import")
    a = ap.parse_args()
    mods, edges, third = graph(ROOT / "symcodec")
    if a.verbose:
        for rank, units in enumerate(LAYERS):
            print(f"layer {rank}: " + ", ".join(f"{u} ({sum(1 for m in mods if layer(m)[1] == u)})" for u in units))
        for x, y, lazy, line in edges:
            if lazy:
                print(f"  lazy: {x}:{line} -> {y}")
    problems = check()
    lazy = sum(1 for e in edges if e[2])
    print(f"{len(mods)} modules, {len(edges)} imports between them ({lazy} inside functions, each deferring a heavy "
          f"optional dependency), {len(problems)} problems")
    for p in problems:
        print("  " + p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
