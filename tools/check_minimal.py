"""What a bare `pip install symcodec` (no extras) must do: decode every test vector, open `.sym` in Pillow, encode.

Usage: .venv-min/bin/python tools/check_minimal.py formats/vectors   (make check-minimal builds .venv-min)
Run with the installed package, not the source tree. Fails if torch or faiss is importable (the point is
to prove they are not needed), if a valid vector decodes to other pixels than its expected PNG, if an
invalid one is not refused with its error class, or if Pillow cannot open, thumbnail and save `.sym`.
"""
from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    vec = Path(sys.argv[1]).resolve()
    for heavy in ("torch", "faiss"):
        if importlib.util.find_spec(heavy) is not None:
            sys.exit(f"{heavy} is installed: this check needs an environment without it")
    import symcodec

    if not Path(symcodec.__file__).resolve().is_relative_to(Path(sys.prefix).resolve()):
        sys.exit(f"symcodec was imported from the source tree ({symcodec.__file__}), not from the installed package")
    manifest = json.loads((vec / "vectors.json").read_text())
    for v in manifest["valid"]:
        data = (vec / f"{v['name']}.sym").read_bytes()
        want = np.asarray(Image.open(vec / f"{v['name']}.expected.png"))
        if not np.array_equal(symcodec.decode(data), want):
            sys.exit(f"{v['name']}: decoded pixels differ from the expected PNG")
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "SYM" or not np.array_equal(np.asarray(im), want):
                sys.exit(f"{v['name']}: Pillow's open gives other pixels")
    for v in manifest["invalid"]:
        try:
            symcodec.decode((vec / f"{v['name']}.sym").read_bytes())
        except getattr(symcodec.errors, v["error"]):
            continue
        sys.exit(f"{v['name']}: not refused with {v['error']}")
    src = np.asarray(Image.open(vec / "RGB-33x17-cifar10-k256.src.png"))
    with tempfile.TemporaryDirectory() as tmp:
        Image.fromarray(src).save(Path(tmp) / "a.sym", codebook="cifar10-ycc420-k512-ppm")  # encoding needs no faiss either
        with Image.open(Path(tmp) / "a.sym") as im:
            im.thumbnail((9, 9))
            assert im.size == (9, 5), im.size
        cli = Path(sys.executable).with_name("symcodec")
        subprocess.run([str(cli), "decode", str(Path(tmp) / "a.sym"), "-o", str(Path(tmp) / "a.png")], check=True, capture_output=True)
        assert np.array_equal(np.asarray(Image.open(Path(tmp) / "a.png")), symcodec.decode(Path(tmp) / "a.sym"))
    if any(m in sys.modules for m in ("torch", "faiss", "matplotlib")):
        sys.exit("a heavy optional dependency was imported")
    print(f"minimal install ({', '.join(sorted({'numpy', 'numba', 'PIL', 'click', 'tqdm'}))}): {len(manifest['valid'])} valid "
          f"vectors decode byte-exact and open in Pillow, {len(manifest['invalid'])} invalid ones are refused, "
          "encode and the CLI work; neither torch nor faiss is installed")


if __name__ == "__main__":
    main()
