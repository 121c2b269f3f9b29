"""The seed program's helpers: ``get_data_loaders``, ``ConvNet``, ``train``, ``test`` (Ray Tune's
``mnist_pytorch`` example), on a real handwritten-digits dataset shipped inside the package, so
nothing is downloaded.

The data is the UCI ML hand-written digits dataset as bundled by scikit-learn
(``sklearn.datasets.load_digits``: 1,797 grey-scale 8x8 images of the digits 0-9, pixel values
0-16), stored once here as ``digits_8x8.npz`` (uint8, ~45 KB). Source: E. Alpaydin and C. Kaynak,
"Optical Recognition of Handwritten Digits", UCI Machine Learning Repository (CC BY 4.0), via
scikit-learn (BSD-3-Clause). scikit-learn is not needed at run time.
"""

from __future__ import annotations

import os
from typing import Any

from ...lowlevel import require

DATA_FILE = os.path.join(os.path.dirname(__file__), "digits_8x8.npz")
EPOCH_SIZE = 1024  # training samples per call of train()
TEST_SIZE = 360  # held-out samples scored by test()


def load_digits() -> tuple[Any, Any]:
    """``(images float32 [N, 1, 8, 8] scaled to [0, 1], labels int64 [N])``."""
    np = require("numpy", "tune")
    with np.load(DATA_FILE) as data:
        images = data["images"].astype(np.float32)[:, None, :, :] / 16.0
        labels = data["labels"].astype(np.int64)
    return images, labels


def get_data_loaders(batch_size: int = 64) -> tuple[Any, Any]:
    """Train and test loaders over the digits (a fixed split: the last ``TEST_SIZE`` images are the test set)."""
    torch = require("torch", "tune")
    from torch.utils.data import DataLoader, TensorDataset

    images, labels = load_digits()
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    n_train = len(y) - TEST_SIZE
    generator = torch.Generator().manual_seed(0)
    train_set = TensorDataset(x[:n_train], y[:n_train])
    test_set = TensorDataset(x[n_train:], y[n_train:])
    return (DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator),
            DataLoader(test_set, batch_size=batch_size, shuffle=False))


def _convnet_class() -> type:
    torch = require("torch", "tune")
    nn, F = torch.nn, torch.nn.functional

    class ConvNet(nn.Module):  # type: ignore[name-defined]
        """A small CNN for 8x8 digits: one 3x3 convolution (16 channels), max-pool, one linear layer."""

        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
            self.fc = nn.Linear(16 * 4 * 4, 10)

        def forward(self, x: Any) -> Any:
            x = F.relu(F.max_pool2d(self.conv1(x), 2))
            x = x.view(-1, 16 * 4 * 4)
            return F.log_softmax(self.fc(x), dim=1)

    return ConvNet


def __getattr__(name: str) -> Any:
    # ConvNet subclasses torch.nn.Module: built on first use, so importing this module needs no torch
    if name == "ConvNet":
        cls = _convnet_class()
        cls.__module__ = __name__
        globals()["ConvNet"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def train(model: Any, optimizer: Any, train_loader: Any, device: Any = None) -> None:
    """One pass of up to ``EPOCH_SIZE`` training samples."""
    torch = require("torch", "tune")
    device = device or torch.device("cpu")
    model.train()
    seen = 0
    for data, target in train_loader:
        if seen >= EPOCH_SIZE:
            break
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = torch.nn.functional.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
        seen += len(target)


def test(model: Any, data_loader: Any, device: Any = None) -> float:
    """Accuracy on up to ``TEST_SIZE`` samples of ``data_loader``."""
    torch = require("torch", "tune")
    device = device or torch.device("cpu")
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for data, target in data_loader:
            if total >= TEST_SIZE:
                break
            data, target = data.to(device), target.to(device)
            predicted = model(data).argmax(dim=1)
            total += target.size(0)
            correct += (predicted == target).sum().item()
    return correct / total
