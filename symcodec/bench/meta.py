"""What every result file records about the run: package versions and the git commit."""
from __future__ import annotations

import importlib.metadata as md
import platform
import subprocess
from pathlib import Path

from ..version import __version__

PACKAGES = ("numpy", "numba", "pillow", "torch", "pillow-jxl-plugin", "pytorch-msssim", "bjontegaard")


def versions() -> dict[str, str]:
    """Versions of the pieces that shape the numbers (read from the installed metadata; 'missing' if absent)."""
    out = {"python": platform.python_version(), "symcodec": __version__}
    for pkg in PACKAGES:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "missing"
    return out


def git_commit() -> str:
    """HEAD of the repository this module lives in, or 'unknown'."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
