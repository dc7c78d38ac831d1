"""Classifier architectures (seed-compatible ResNet-20 and LeNet, plus a fast CIFAR net) and weight loading.

Every model here takes float images in [0, 1], NCHW, and returns logits; any input normalisation is
inside the model, so attacks and purifiers work on raw pixels.
"""
from __future__ import annotations

import io
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..atomic import atomic_write
from ..errors import SymcodecError

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


class Resize32(nn.Module):
    """Bilinear resize to 32x32 (the seed's MNIST `transforms.Resize(32)`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.shape[-1] == 32 else F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)


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


class _AirGroup(nn.Module):
    """airbench conv group: conv, maxpool, BN, GELU, conv, BN, GELU (identity-initialised convs)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(cout, eps=1e-12, momentum=0.4)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(cout, eps=1e-12, momentum=0.4)
        for conv in (self.conv1, self.conv2):
            w = conv.weight.data
            nn.init.dirac_(w[: w.size(1)])
        for bn in (self.norm1, self.norm2):
            bn.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.norm2(self.conv2(x)))


class AirNet(nn.Module):
    """airbench-style fast CIFAR net (Jordan 2024): frozen 2x2 whitening conv, three conv groups, test-time views (tta 0, 1 flip, 2 flip+shift)."""

    def __init__(self, num_classes: int = 10, widths: tuple[int, int, int] = (64, 128, 128), in_ch: int = 3,
                 tta: int = 1) -> None:
        super().__init__()
        self.tta = tta
        ww = 2 * in_ch * 4
        self.whiten = nn.Conv2d(in_ch, ww, 2, padding=0, bias=True)
        self.whiten.weight.requires_grad_(False)
        w = list(widths)
        self.group1, self.group2, self.group3 = _AirGroup(ww, w[0]), _AirGroup(w[0], w[1]), _AirGroup(w[1], w[2])
        self.head = nn.Linear(w[2], num_classes, bias=False)

    def init_whitening(self, x: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the whitening conv from the eigenvectors of 2x2 patch covariance of `x` (normalised NCHW)."""
        c = x.shape[1]
        pt = x.unfold(2, 2, 1).unfold(3, 2, 1).transpose(1, 3).reshape(-1, c, 2, 2).float()
        flat = pt.reshape(len(pt), -1)
        cov = (flat.T @ flat) / len(flat)
        val, vec = torch.linalg.eigh(cov)
        vec = vec.T.reshape(-1, c, 2, 2) / torch.sqrt(val.view(-1, 1, 1, 1) + eps)
        self.whiten.weight.data[:] = torch.cat((vec, -vec))

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.whiten(x))
        x = self.group3(self.group2(self.group1(x)))
        x = F.adaptive_max_pool2d(x, 1).flatten(1)
        return self.head(x) / 9.0

    def _mirror(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self._logits(x) + self._logits(x.flip(-1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits; in eval mode averaged over test-time views: tta 1 = flip, 2 = flip x (none, 1-pixel shifts)."""
        if self.training or not self.tta:
            return self._logits(x)
        out = self._mirror(x)
        if int(self.tta) >= 2:  # airbench's mirror-translate TTA: 6 views
            h, w = x.shape[-2:]
            p = F.pad(x, (1, 1, 1, 1), mode="reflect")
            out = 0.5 * out + 0.25 * (self._mirror(p[..., :h, :w]) + self._mirror(p[..., 2:, 2:]))
        return out


class SmallMnistNet(nn.Module):
    """conv(w)-pool-conv(2w)-pool-fc128 MNIST net, w=32 by default (28x28 or 32x32 input)."""

    def __init__(self, num_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.fc1 = nn.Linear(2 * width * 7 * 7, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == 32:
            x = x[..., 2:30, 2:30]
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


ARCHS: dict[str, Any] = {"resnet20": ResNet20, "lenet": LeNet, "airnet": AirNet, "mnistnet": SmallMnistNet}
PREPROCESS: dict[str, Any] = {
    "none": lambda: nn.Identity(),
    "cifar-normalize": lambda: Normalize(CIFAR_MEAN, CIFAR_STD),
    "cifar-softclamp": lambda: nn.Sequential(Normalize(CIFAR_MEAN, CIFAR_STD), SoftClamp()),
    "mnist-normalize": lambda: Normalize(MNIST_MEAN, MNIST_STD),
    "mnist-resize-normalize": lambda: nn.Sequential(Resize32(), Normalize(MNIST_MEAN, MNIST_STD)),
    "mnist-resize-softclamp": lambda: nn.Sequential(Resize32(), Normalize(MNIST_MEAN, MNIST_STD), SoftClamp()),
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


def save(model: Classifier, path: str | os.PathLike[str], meta: dict[str, Any] | None = None, half: bool = False) -> None:
    """Save architecture name, preprocessing, kwargs, metadata and state_dict in one torch file (atomic); `half`: floats as float16."""
    state = model.net.state_dict()
    if half:  # half the bytes; `load` casts them back into the float32 parameters
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    buf = io.BytesIO()
    torch.save({"arch": model.arch, "preprocess": model.preprocess_name, "kwargs": model.kwargs,
                "meta": meta or {}, "state_dict": state}, buf)
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
    if "state_dict" not in blob:  # one of SymDNN's bare state_dicts
        arch, pre = seed_arch(p.name, blob)
        model = load_seed(p, arch, pre)
        model.meta = {"train": "SymDNN seed weights", "seed_file": p.name}  # type: ignore[assignment]
        return model
    model = Classifier(blob["arch"], blob.get("preprocess", "none"), **blob.get("kwargs", {}))
    model.net.load_state_dict(blob["state_dict"])
    model.meta = blob.get("meta", {})  # type: ignore[assignment]
    return model.eval()


def seed_arch(filename: str, state_dict: dict[str, Any]) -> tuple[str, str]:
    """(arch, preprocess) for a SymDNN state_dict, from its keys and file name (`sc` = softclamp)."""
    soft = "_sc" in filename or "softclamp" in filename
    if "layer1.0.conv1.weight" in state_dict:
        return "resnet20", "cifar-softclamp" if soft else "cifar-normalize"
    if "fc3.weight" in state_dict:
        return "lenet", "mnist-resize-softclamp" if soft else "mnist-resize-normalize"
    msg = f"{filename}: not a SymDNN ResNet-20 or LeNet state_dict"
    raise SymcodecError(msg)


def load_seed(path: str | os.PathLike[str], arch: str, preprocess: str) -> Classifier:
    """Load one of SymDNN's own state_dicts (.pt) into our architecture definitions."""
    model = Classifier(arch, preprocess)
    sd = torch.load(path, map_location="cpu", weights_only=True)
    model.net.load_state_dict(sd)
    return model.eval()


def to_tensor(x: Any) -> torch.Tensor:
    """(N,H,W,C) uint8 array/tensor -> (N,C,H,W) float32 in [0, 1]."""
    t = torch.as_tensor(x)
    if t.ndim == 3:
        t = t[..., None]
    t = t.permute(0, 3, 1, 2)
    return t.float().div_(255.0) if t.dtype == torch.uint8 else t.float()


@torch.no_grad()
def predict(model: nn.Module, images: Any, batch_size: int = 500, progress: bool = False) -> Any:
    """Top-1 labels (int64 numpy) for (N,H,W,C) uint8 images (or float [0,1]), in eval mode, batched."""
    model.eval()
    out = []
    for i in tqdm(range(0, len(images), batch_size), disable=not progress, leave=False, desc="classify"):
        out.append(model(to_tensor(images[i:i + batch_size])).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)
