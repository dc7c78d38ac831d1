"""Bounded fuzzing: hypothesis mutations of .sym and .symcb files, then a few seconds of coverage-guided
fuzzing (atheris) per target of tools/fuzz.py (`make fuzz` is the long run)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symcodec
from symcodec import errors
from symcodec.codebook import registry
from symcodec.codebook.codebook import Codebook
from symcodec.format.chunks import pack_chunk

_RNG = np.random.default_rng(3)
_IMG = _RNG.integers(0, 256, (9, 11, 3), dtype=np.uint8)
SEEDS = [
    symcodec.encode(_IMG, "cifar10-2x2-k128"),
    symcodec.encode(_IMG[:, :, :1].copy(), "mnist-2x2-k32", embed_codebook=True),
    symcodec.encode(np.dstack([_IMG, _IMG[:, :, 0]]), "cifar10-2x2-k128", text={"a": "b"}),
]
CB = registry.get("mnist-2x2-k32").to_bytes()


def _decode_only_symcodec_errors(data: bytes) -> None:
    try:
        symcodec.decode(data)
    except errors.SymcodecError:
        pass


mutation = st.tuples(
    st.sampled_from(range(len(SEEDS))),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, 10_000),
    st.booleans(),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutation)
def test_mutated_and_truncated_sym_raise_only_symcodec_errors(m):
    which, edits, cut, truncate = m
    b = bytearray(SEEDS[which])
    for pos, val in edits:
        b[pos % len(b)] = val
    if truncate:
        b = b[: cut % (len(b) + 1)]
    _decode_only_symcodec_errors(bytes(b))


def _rechunk(data: bytes, which: int, edits, cut: int) -> bytes:
    pos, chs = 12, []
    while pos + 12 <= len(data):
        n = int.from_bytes(data[pos : pos + 4], "little")
        chs.append((data[pos + 4 : pos + 8], bytearray(data[pos + 8 : pos + 8 + n])))
        pos += 12 + n
    t, d = chs[which % len(chs)]
    for p, v in edits:
        if d:
            d[p % len(d)] = v
    chs[which % len(chs)] = (t, d[: cut % (len(d) + 1)] if cut % 3 == 0 else d)
    return data[:12] + b"".join(pack_chunk(t, bytes(p)) for t, p in chs)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(SEEDS))), st.integers(0, 10), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4), st.integers(0, 10_000))
def test_mutated_chunk_payloads_with_valid_crc(which_seed, which_chunk, edits, cut):
    """CRCs recomputed, so HEAD validation, the rANS stream checks and the alpha plane are reached."""
    _decode_only_symcodec_errors(_rechunk(SEEDS[which_seed], which_chunk, edits, cut))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_after_signature(tail):
    _decode_only_symcodec_errors(b"\x89SYM\r\n\x1a\n\x01\x00\x00\x00" + tail)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6), st.integers(0, 10_000))
def test_mutated_codebooks_raise_only_symcodec_errors(edits, cut):
    b = bytearray(CB)
    for pos, val in edits:
        b[pos % len(b)] = val
    try:
        Codebook.from_bytes(bytes(b[: cut % (len(b) + 1) or len(b)]))
    except errors.SymcodecError:
        pass


@pytest.mark.parametrize("target", ["sym", "symcb", "tables", "stream", "jpeg"])
def test_coverage_guided_fuzzing_finds_nothing(target, tmp_path):
    """libFuzzer through atheris, seeded from formats/vectors: no crash, no hang over 10 s, nothing over 1 GiB."""
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "fuzz.json"
    r = subprocess.run([sys.executable, str(root / "tools" / "fuzz.py"), target, "--seconds", "10", "--corpus", str(tmp_path / "c"),
                        "--json", str(out)], capture_output=True, text=True, timeout=300)
    res = json.loads(out.read_text())["results"][0]
    assert r.returncode == 0 and res["findings"] == [], r.stderr[-3000:]
    assert res["runs"] > 300 and res["corpus"] > 5, res  # a fresh clone compiles numba kernels during the first seconds
