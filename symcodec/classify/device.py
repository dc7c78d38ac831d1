"""The torch device a run asks for (`--device`): 'cpu', 'cuda', 'cuda:N' or 'auto', checked before any work starts."""
from __future__ import annotations

import torch

from ..errors import OptionError


def resolve(name: str, *, exact: bool = True) -> torch.device:
    """The device named; 'auto' is CUDA when present, else CPU. `exact` turns TF32 off (float32 verdicts)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise OptionError(f"unknown device {name!r} (expected cpu, cuda, cuda:N or auto)") from None
    if dev.type not in ("cpu", "cuda"):
        raise OptionError(f"unsupported device {name!r} (expected cpu, cuda, cuda:N or auto)")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise OptionError(f"--device {name}: no CUDA device is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise OptionError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
        torch.backends.cudnn.allow_tf32 = not exact
        torch.backends.cuda.matmul.allow_tf32 = not exact
    return dev


def describe(dev: torch.device, threads: int | None = None) -> str:
    """The device in words for cards and result files: the GPU's name, or 'cpu' (with its thread count)."""
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({threads} threads)" if threads else "cpu"
