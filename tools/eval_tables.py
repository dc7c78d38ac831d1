#!/usr/bin/env python
"""Print Markdown tables from `symcodec eval` JSON files (for the README): one row per codec setting.

    python tools/eval_tables.py results/cifar10/eval-clean.json [more.json ...]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def table(path: Path) -> str:
    r = json.loads(path.read_text())
    res = r["results"]
    models = list(r["settings"]["models"])
    keys = ["top1"] + [f"top1@{m}" for m in models[1:]]
    names = [Path(m).stem for m in models]
    head = ["codec", "setting", "bytes/img", "bpp", "x source", "x raw", "PSNR dB"] + [f"top1 {n}" for n in names]
    head += ["enc ms", "dec ms"]
    lines = [f"**{path}** ({r['settings']['n_images']} images)", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]

    def f(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    for i in range(len(res["codec"])):
        row = [res["codec"][i], str(res["setting"][i]), f(res["bytes"][i], ".0f"), f(res["bpp"][i], ".2f"),
               f(res["ratio_source"][i], ".2f"), f(res["ratio_raw"][i], ".2f"), f(res["psnr"][i], ".2f")]
        for k in keys:
            d = res["top1_delta" + k[4:]][i]
            row.append(f"{res[k][i]:.2f}" + ("" if res["codec"][i] == "source" else f" ({d:+.2f})"))
        row += [f(res["encode_ms"][i], ".2f"), f(res["decode_ms"][i], ".2f")]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print("\n\n".join(table(Path(p)) for p in sys.argv[1:]))
