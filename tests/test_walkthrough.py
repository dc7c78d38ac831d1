"""README "Your own dataset in five commands", replayed command by command on a small labelled dataset made here."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """The symcodec lines of the README's walkthrough block."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- walkthrough.*?-->\n```sh\n(.*?)```", text, re.S)
    assert block, "the README walkthrough block is missing"
    return [line for line in block.group(1).splitlines() if line.startswith("symcodec ")]


def make_dataset(root: Path, n: int, seed: int) -> None:
    """Three classes of 28x28 grey images (horizontal bars, vertical bars, a blob), noisy, in class folders."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    for cls in ("blob", "horizontal", "vertical"):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            p = rng.integers(3, 6)
            if cls == "horizontal":
                a = ((yy + rng.integers(0, p)) // p % 2) * 200.0
            elif cls == "vertical":
                a = ((xx + rng.integers(0, p)) // p % 2) * 200.0
            else:
                cy, cx, r = rng.integers(8, 20, 2).tolist() + [rng.integers(4, 9)]
                a = (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r) * 220.0
            a = np.clip(a + rng.normal(0, 25, a.shape), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(root / cls / f"{i:03d}.png")


def test_the_readme_walkthrough_runs_end_to_end(tmp_path):
    cmds = readme_commands()
    assert [c.split()[1] for c in cmds] == ["train-codebook", "convert", "train-classifier", "eval", "eval"]
    make_dataset(tmp_path / "train", 120, 0)
    make_dataset(tmp_path / "test", 30, 1)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "TRAIN": str(tmp_path / "train"),
           "TEST": str(tmp_path / "test")}
    for c in cmds:
        args = [os.path.expandvars(a.replace("$TRAIN", env["TRAIN"]).replace("$TEST", env["TEST"])) for a in shlex.split(c)]
        r = subprocess.run([sys.executable, "-m", "symcodec.cli", *args[1:]], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, (c, r.stdout[-2000:], r.stderr[-2000:])
    assert (tmp_path / "cache" / "symcodec" / "codebooks" / "digits-k64.symcb").exists()
    assert len(list((tmp_path / "digits-test").rglob("*.sym"))) == 90
    card = (tmp_path / "digits.md").read_text()
    assert "never trained on" in card and "blob, horizontal, vertical" in card
    res = json.loads((tmp_path / "eval.json").read_text())["results"]
    sym = res["codec"].index("sym")
    assert res["top1"][0] > 70 and res["top1"][sym] > 60 and res["bpp"][sym] < 4, res  # 3 classes: chance is 33%
    assert (tmp_path / "eval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    back = json.loads((tmp_path / "eval-sym.json").read_text())["results"]  # the converted files, labels from .cls
    assert back["codec"][0] == "source" and back["top1"][0] == res["top1"][sym]
