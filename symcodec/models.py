"""Classifier architectures (seed-compatible ResNet-20 and LeNet, plus a fast CIFAR net) and weight loading.

Every model here takes float images in [0, 1], NCHW, and returns logits; any input normalisation is
inside the model, so attacks and purifiers work on raw pixels.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn
import torch.nn.functional as F

from .errors import SymcodecError

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
MNIST_MEAN, MNIST_STD = (0.1309,), (0.2893,)


class Normalize(nn.Module):
    """Per-channel (x - mean) / std."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class SoftClamp(nn.Module):
    """SymDNN's per-image joint min-max stretch to [0, 1] (with an epsilon; never in place)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        lo = flat.min(1).values.view(-1, 1, 1, 1)
        hi = flat.max(1).values.view(-1, 1, 1, 1)
        return (x - lo) / (hi - lo).clamp_min(1e-12)


class _Block(nn.Module):
    """ResNet-20 basic block with SymDNN/GradInit option-A shortcut (avgpool + BN, then zero channels)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.extra = cout - cin
        self.downsample = nn.Sequential(nn.AvgPool2d(1, stride), nn.BatchNorm2d(cin)) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        sc = x
        if self.downsample is not None:
            sc = self.downsample(x)
            if self.extra:
                sc = torch.cat([sc, sc.new_zeros(sc.shape[0], self.extra, *sc.shape[2:])], 1)
        return F.relu(out + sc)


class ResNet20(nn.Module):
    """ResNet-20 (He et al. 2016) in the GradInit variant SymDNN ships; state_dict keys match its .pt files."""

    def __init__(self, num_classes: int = 10, in_ch: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        chans, layers, cin = (16, 32, 64), [], 16
        for i, c in enumerate(chans):
            blocks = [_Block(cin, c, 1 if i == 0 else 2)] + [_Block(c, c, 1) for _ in range(2)]
            layers.append(nn.Sequential(*blocks))
            cin = c
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class LeNet(nn.Module):
    """SymDNN's MNIST LeNet (1x32x32 input); returns logits (the seed appended a softmax, which masks gradients)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 32:
            x = F.pad(x, (2, 2, 2, 2))  # 28x28 MNIST -> 32x32, as the seed's Resize(32) expected size
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc2(F.relu(self.fc1(torch.flatten(x, 1)))))
        return self.fc3(x)


ARCHS: dict[str, Any] = {"resnet20": ResNet20, "lenet": LeNet}
PREPROCESS: dict[str, Any] = {
    "none": lambda: nn.Identity(),
    "cifar-normalize": lambda: Normalize(CIFAR_MEAN, CIFAR_STD),
    "cifar-softclamp": lambda: nn.Sequential(Normalize(CIFAR_MEAN, CIFAR_STD), SoftClamp()),
    "mnist-normalize": lambda: Normalize(MNIST_MEAN, MNIST_STD),
}


class Classifier(nn.Module):
    """Preprocessing + network: [0, 1] NCHW images in, logits out."""

    def __init__(self, arch: str, preprocess: str = "none", **kwargs: Any) -> None:
        super().__init__()
        self.arch, self.preprocess_name, self.kwargs = arch, preprocess, kwargs
        self.pre = PREPROCESS[preprocess]()
        self.net = ARCHS[arch](**kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.pre(x))


def weights_dir() -> Path:
    """Folder of shipped weights (`weights/` in the repository)."""
    return Path(str(resources.files("symcodec.weights")))


def save(model: Classifier, path: str | os.PathLike[str], meta: dict[str, Any] | None = None) -> None:
    """Save architecture name, preprocessing, kwargs, metadata and state_dict in one torch file (atomic)."""
    import io

    from .codebook import atomic_write

    buf = io.BytesIO()
    torch.save({"arch": model.arch, "preprocess": model.preprocess_name, "kwargs": model.kwargs,
                "meta": meta or {}, "state_dict": model.net.state_dict()}, buf)
    atomic_write(Path(path), buf.getvalue())


def load(name: str | os.PathLike[str]) -> Classifier:
    """Load shipped weights by name (weights/<name>.pt) or a path; returns an eval-mode Classifier."""
    p = Path(name)
    if not p.is_file():
        p = weights_dir() / f"{name}.pt"
    if not p.is_file():
        known = ", ".join(sorted(f.stem for f in weights_dir().glob("*.pt"))) or "none"
        msg = f"classifier {name!r} not found (shipped: {known})"
        raise SymcodecError(msg)
    blob = torch.load(p, map_location="cpu", weights_only=True)
    model = Classifier(blob["arch"], blob.get("preprocess", "none"), **blob.get("kwargs", {}))
    model.net.load_state_dict(blob["state_dict"])
    model.meta = blob.get("meta", {})  # type: ignore[assignment]
    return model.eval()


def load_seed(path: str | os.PathLike[str], arch: str, preprocess: str) -> Classifier:
    """Load one of SymDNN's own state_dicts (.pt) into our architecture definitions."""
    model = Classifier(arch, preprocess)
    sd = torch.load(path, map_location="cpu", weights_only=True)
    model.net.load_state_dict(sd)
    return model.eval()
