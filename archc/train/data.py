"""Datasets for `archc train`: a user's ImageFolder, scikit-learn's digits (shipped, no download),
or FakeData for throughput runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, TensorDataset

from archc.errors import UsageError

__all__ = ["describe", "make_datasets"]

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _digits(shape: tuple[int, ...], seed: int) -> tuple[Dataset[Any], Dataset[Any], int]:
    from sklearn.datasets import load_digits
    from torch.nn import functional as F

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8) in [0, 1]
    x = F.interpolate(x, size=shape[1:], mode="bilinear", align_corners=False)
    x = (x.repeat(1, shape[0], 1, 1) - 0.5) / 0.5
    y = torch.tensor(d.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(y))
    tr, va = order[:cut], order[cut:]
    return TensorDataset(x[tr], y[tr]), TensorDataset(x[va], y[va]), 10


def _fake(shape: tuple[int, ...], size: int) -> tuple[Dataset[Any], Dataset[Any], int]:
    from torchvision import datasets, transforms

    tf = transforms.ToTensor()
    return (datasets.FakeData(size, shape, 10, transform=tf, random_offset=0),
            datasets.FakeData(max(size // 5, 1), shape, 10, transform=tf, random_offset=size), 10)


def _rgb(image: Any) -> Any:
    return image.convert("RGB")  # a named function, so DataLoader workers can pickle it


def _folder(root: Path, shape: tuple[int, ...]) -> tuple[Dataset[Any], Dataset[Any], int]:
    from torchvision import datasets, transforms

    size = (shape[1], shape[2])  # the spec's height and width, square or not
    # images become the spec's channel count: grey for 1-channel models, RGB otherwise
    colour = [transforms.Grayscale(1)] if shape[0] == 1 else [transforms.Lambda(_rgb)]
    mean, std = (MEAN, STD) if shape[0] == 3 else ((0.5,) * shape[0], (0.5,) * shape[0])
    train_tf = transforms.Compose([
        *colour, transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(), transforms.RandomRotation(15),
        transforms.ColorJitter(0.2, 0.2, 0.2), transforms.ToTensor(), transforms.Normalize(mean, std)])
    val_tf = transforms.Compose([
        *colour, transforms.Resize(int(min(size) * 256 / 224)), transforms.CenterCrop(size), transforms.ToTensor(),
        transforms.Normalize(mean, std)])
    if not (root / "train").is_dir() or not (root / "val").is_dir():
        raise UsageError(f"--data {root}: expected train/ and val/ folders with one sub-folder per class")
    train = datasets.ImageFolder(str(root / "train"), train_tf)
    return train, datasets.ImageFolder(str(root / "val"), val_tf), len(train.classes)


def make_datasets(kind: str, shape: tuple[int, ...], seed: int, fake_size: int = 512
                  ) -> tuple[Dataset[Any], Dataset[Any], int]:
    """(train, validation, number of classes) for ``--data``."""
    if kind == "digits":
        return _digits(shape, seed)
    if kind == "fake":
        return _fake(shape, fake_size)
    root = Path(kind)
    if not root.is_dir():
        raise UsageError(f"--data must be 'digits', 'fake' or a folder, got '{kind}'")
    return _folder(root, shape)


def describe(kind: str, shape: tuple[int, ...], train: Any, val: Any, classes: int) -> str:
    """One line saying how the data are fitted to the spec's input ``shape``."""
    size = "x".join(map(str, shape[1:]))
    how = {"digits": f"scikit-learn's 8x8 grey digits resized to {size}"
                     + (", repeated to 3 channels" if shape[0] == 3 else ""),
           "fake": f"random {'x'.join(map(str, shape))} images"}.get(
        kind, f"{kind}, read as {'grey' if shape[0] == 1 else 'RGB'} and cropped to {size}")
    return f"data: {how}; {len(train)} training and {len(val)} validation images, {classes} classes"
