"""Shared fixtures: paths to ../shared (fail, not skip, under CI=true) and small real images."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def need_shared(rel: str) -> Path:
    """Path inside ../shared; a missing file skips locally but fails in CI."""
    p = SHARED / rel
    if not p.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{p} is missing (CI needs ../shared)")
        pytest.skip(f"{p} not available")
    return p


@pytest.fixture(scope="session")
def cifar_test_tar() -> Path:
    return need_shared("datasets/cifar10-jpeg/test.tar")


@pytest.fixture(scope="session")
def mnist_test_images() -> Path:
    return need_shared("datasets/mnist/t10k-images.idx3-ubyte.gz")


@pytest.fixture(scope="session")
def cifar_images(cifar_test_tar: Path) -> np.ndarray:
    """64 real CIFAR-10 test images, (64, 32, 32, 3) uint8."""
    from symcodec.data.sources import load_arrays

    x, _, _ = load_arrays(cifar_test_tar, limit=64)
    return x


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A real photo with odd dimensions (crop of CIFAR mosaic is too small): scikit-image's coffee, 301x399."""
    import skimage.data as sd

    return np.ascontiguousarray(sd.coffee()[:301, :399])


@pytest.fixture
def one_torch_thread():
    """Run a test with torch on one thread (faster than two on this shared 2-core machine)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
