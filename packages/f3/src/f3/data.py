"""Sample indices, the per-sample error buffer, batch orders and the small built-in data sets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset


class IndexedDataset(Dataset):
    """Wraps a map-style dataset so every item also carries its index: ``(*item, index)``."""

    def __init__(self, dataset):
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError("dataset must be a map-style dataset (__getitem__ and __len__)")
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        item = self.dataset[index]
        item = item if isinstance(item, tuple) else (item,)
        return (*item, index)


class ErrorBuffer:
    """The stored error e (N × C): one row per training sample, initialised to the targets."""

    def __init__(self, initial: torch.Tensor):
        if initial.ndim != 2:
            raise ValueError(f"initial errors must be N × C, got shape {tuple(initial.shape)}")
        self.errors = initial.detach().clone()

    def read(self, indices: torch.Tensor) -> torch.Tensor:
        """The stored errors of the samples ``indices``, one row each in that order (a copy)."""
        return self.errors[torch.as_tensor(indices, device=self.errors.device)]

    def write(self, indices: torch.Tensor, errors: torch.Tensor) -> None:
        """Overwrite the rows of the samples ``indices`` with ``errors`` (detached, cast to the
        buffer's dtype and device)."""
        rows = torch.as_tensor(indices, device=self.errors.device)
        self.errors[rows] = errors.detach().to(self.errors)


def epoch_orders(num_samples: int, batch_size: int, seed: int):
    """An endless sequence of epochs, each a list of index tensors (a seeded permutation).

    Every rank that calls this with the same arguments gets the same order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    gen = torch.Generator().manual_seed(int(seed))
    while True:
        yield list(torch.randperm(num_samples, generator=gen).split(batch_size))


@dataclass
class Split:
    """A train/test split of in-memory tensors with the task's head and output width."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    head: str
    num_outputs: int
    name: str


def _split(x, y, head, num_outputs, name, seed, test_fraction=0.2) -> Split:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_test = round(test_fraction * len(x))
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean(0), x[train].std(0) + 1e-8
    x = (x - mean) / std
    to_y = (
        (lambda a: torch.as_tensor(a, dtype=torch.long))
        if head != "mse"
        else (lambda a: torch.as_tensor(a, dtype=torch.float32))
    )
    return Split(
        torch.as_tensor(x[train], dtype=torch.float32),
        to_y(y[train]),
        torch.as_tensor(x[test], dtype=torch.float32),
        to_y(y[test]),
        head,
        num_outputs,
        name,
    )


def _sklearn_datasets():
    try:
        from sklearn import datasets
    except ImportError as exc:
        raise ImportError(
            "the digits and diabetes data sets need scikit-learn: pip install 'f3[train]'"
        ) from exc
    return datasets


def digits(seed: int = 0, head: str = "bce") -> Split:
    """scikit-learn's 8×8 digits (1797 samples, 64 features, 10 classes), standardised."""
    data = _sklearn_datasets().load_digits()
    return _split(data.data.astype(np.float64), data.target, head, 10, "digits", seed)


def diabetes(seed: int = 0) -> Split:
    """scikit-learn's diabetes regression (442 samples, 10 features), target standardised."""
    data = _sklearn_datasets().load_diabetes()
    y = (data.target - data.target.mean()) / data.target.std()
    return _split(data.data.astype(np.float64), y[:, None], "mse", 1, "diabetes", seed)


def teacher(seed: int = 0, num_samples: int = 2000, inputs: int = 16, outputs: int = 4) -> Split:
    """A generated regression task: y = W2·tanh(W1·x/√d) + noise from a fixed random teacher."""
    teacher_rng = np.random.default_rng(12345)
    w1 = teacher_rng.standard_normal((64, inputs))
    w2 = teacher_rng.standard_normal((outputs, 64)) / 8
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((num_samples, inputs))
    y = np.tanh(x @ w1.T / np.sqrt(inputs)) @ w2.T + 0.05 * rng.standard_normal(
        (num_samples, outputs)
    )
    return _split(x, y, "mse", outputs, "teacher", seed)


DATASETS = {"digits": digits, "diabetes": diabetes, "teacher": teacher}


def load(name: str, seed: int = 0, head: str | None = None) -> Split:
    """One of ``DATASETS`` by name; ``head`` picks bce or ce for classification sets."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {name!r}")
    if name == "digits":
        return digits(seed, head or "bce")
    if head not in (None, "mse"):
        raise ValueError(f"dataset {name!r} is a regression task; head must be 'mse'")
    return DATASETS[name](seed)
