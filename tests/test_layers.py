"""The package's layering (tools/check_layers.py): imports only go down, no cycle, lazy imports only defer heavy dependencies."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import check_layers  # noqa: E402


def test_symcodec_is_layered():
    assert check_layers.check() == []


def test_the_check_catches_each_kind_of_violation(tmp_path):
    pkg = tmp_path / "symcodec"
    for d in ("format", "codec", "vq"):
        (pkg / d).mkdir(parents=True)
        (pkg / d / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("")
    (pkg / "format" / "sym.py").write_text("from ..codec import enc\n")  # upward
    (pkg / "vq" / "a.py").write_text("from ..format import sym\n")  # beside
    (pkg / "codec" / "enc.py").write_text("from . import dec\n\n\ndef f():\n    from ..errors import x\n")  # lazy, light
    (pkg / "codec" / "dec.py").write_text("from . import enc\n")  # cycle
    (pkg / "stray.py").write_text("")  # in no layer
    got = "\n".join(check_layers.check(pkg))
    for want in ("symcodec.format.sym:1 imports symcodec.codec.enc, above it", "symcodec.vq.a:1 imports symcodec.format.sym, beside it",
                 "imports symcodec.errors inside a function", "import cycle: symcodec.codec.dec -> symcodec.codec.enc",
                 "symcodec.stray: in no layer"):
        assert want in got


@pytest.mark.parametrize("mod", ["symcodec", "symcodec.cli"])
def test_importing_the_codec_pulls_in_neither_torch_nor_faiss(mod):
    code = f"import sys, {mod}; print(sorted(m for m in ('torch', 'faiss', 'matplotlib', 'skimage') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
