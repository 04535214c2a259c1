"""Training on scikit-learn's digits with backprop or forward gradients (used by the CLI and tests)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

import hpc_comm as hc
from hpc_comm.flat import average_gradients

from .model import ForwardGradientModel

METHODS = ("bp", "fg", "mean", "frog")
ARCHITECTURES = ("mlp", "cnn")
_AGGREGATION = {"fg": "single", "mean": "mean", "frog": "projection"}


@dataclass
class Digits:
    """Standardised 8x8 digits as float tensors: a stratified train / test split."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits(seed: int = 0, test_fraction: float = 0.25, dtype=torch.float32) -> Digits:
    """scikit-learn's digits (1797 images, shipped with the library, no download)."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    x, y = sk_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    mean, std = x_tr.mean(0), x_tr.std(0) + 1e-6
    as_x = lambda a: torch.as_tensor((a - mean) / std, dtype=dtype)  # noqa: E731
    as_y = lambda a: torch.as_tensor(a, dtype=torch.long)  # noqa: E731
    return Digits(as_x(x_tr), as_y(y_tr), as_x(x_te), as_y(y_te))


def build_model(architecture: str = "mlp", hidden: int = 64, seed: int = 0) -> torch.nn.Module:
    """An MLP 64-hidden-hidden-10 (tanh) or a small CNN (two 3x3 convs, then a linear layer)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"architecture must be one of {', '.join(ARCHITECTURES)}, got {architecture!r}"
        )
    if not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"hidden must be a positive int, got {hidden!r}")
    torch.manual_seed(seed)
    if architecture == "mlp":
        return torch.nn.Sequential(
            torch.nn.Linear(64, hidden),
            torch.nn.Tanh(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.Tanh(),
            torch.nn.Linear(hidden, 10),
        )
    channels = max(1, hidden // 8)
    return torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, 8, 8)),
        torch.nn.Conv2d(1, channels, 3, padding=1),
        torch.nn.Tanh(),
        torch.nn.Conv2d(channels, channels, 3, padding=1, stride=2),
        torch.nn.Tanh(),
        torch.nn.Flatten(),
        torch.nn.Linear(channels * 16, 10),
    )


def default_lr(method: str, k: int, n: int) -> float:
    """A learning rate for plain SGD, scaled per method.

    With Gaussian tangents the mean's norm is about sqrt((n+k+1)/k) ||g||, so its step must shrink
    by k/(n+k+1) against backprop; the projection's norm is about sqrt(k/n) ||g|| and lies in the
    gradient's direction within the span, so it takes a larger step than backprop.
    """
    base = 0.1
    if method == "bp":
        return base
    if method == "frog":
        return base * min(40.0, max(1.0, n / k))
    k = 1 if method == "fg" else k
    return min(base, 15 * base * k / (n + k + 1))


@dataclass
class TrainResult:
    """Per-step training losses (mean over the batch), the initial and final full-set losses."""

    losses: list[float] = field(default_factory=list)
    initial_loss: float = float("nan")
    final_loss: float = float("nan")
    test_accuracy: float = float("nan")
    lr: float = float("nan")
    method: str = ""
    k: int = 1
    n_params: int = 0
    wall_time: float = float("nan")
    bytes_per_step: float = 0.0  # gradient bytes this rank allreduced per step (0 alone)

    def as_dict(self) -> dict:
        """All fields as a plain dict (a deep copy), e.g. for JSON."""
        return asdict(self)


def full_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean cross-entropy of ``model`` over all of ``x`` and ``y`` (no gradients)."""
    with torch.no_grad():
        return float(F.cross_entropy(model(x), y))


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows of ``x`` whose arg-max output equals the label in ``y`` (no gradients)."""
    with torch.no_grad():
        return float((model(x).argmax(1) == y).double().mean())


def train(
    data: Digits,
    method: str = "frog",
    k: int = 16,
    steps: int = 200,
    batch_size: int = 64,
    lr: float | None = None,
    architecture: str = "mlp",
    hidden: int = 64,
    seed: int = 0,
    chunk_size: int | None = None,
    progress: Callable[[int, float], None] | None = None,
    comm=None,
) -> TrainResult:
    """Train with SGD for ``steps`` mini-batches; ``method`` is bp, fg (k = 1), mean or frog.

    With ``comm`` the run is data-parallel: every rank draws the same global batch and keeps its
    share of the rows; backprop allreduces the n gradient entries, forward gradients only the k
    jvps (the ranks share the tangents' seed). The result does not depend on the rank count
    beyond rounding. ``losses`` are the global batch losses.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    for name, value in (("k", k), ("steps", steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if lr is not None and not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if comm is not None and batch_size < comm.size:
        raise ValueError(f"batch_size ({batch_size}) must be at least the rank count ({comm.size})")
    model = build_model(architecture, hidden, seed)
    params = list(model.parameters())
    n = sum(p.numel() for p in params)
    k = 1 if method in ("bp", "fg") else k
    result = TrainResult(
        lr=lr if lr is not None else default_lr(method, k, n), method=method, k=k, n_params=n
    )
    optimiser = torch.optim.SGD(params, lr=result.lr)
    fg = None
    if method != "bp":
        fg = ForwardGradientModel(
            model,
            k=k,
            aggregation=_AGGREGATION[method],
            seed=seed,
            chunk_size=chunk_size,
            comm=comm,
        )
    rows = slice(0, batch_size)
    if comm is not None:
        counts = hc.chunk_counts(batch_size, comm.size)
        start = sum(counts[: comm.rank])
        rows = slice(start, start + counts[comm.rank])
    share = (rows.stop - rows.start) / batch_size
    batches = torch.Generator().manual_seed(seed)
    result.initial_loss = full_loss(model, data.x_train, data.y_train)
    began, sent = time.perf_counter(), 0
    for step in range(steps):
        idx = torch.randint(0, data.x_train.shape[0], (batch_size,), generator=batches)[rows]
        x, y = data.x_train[idx], data.y_train[idx]
        optimiser.zero_grad()
        with hc.traffic() as traffic:
            if fg is None:
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                loss = loss.detach()
                if comm is not None:
                    _allreduce_grads(params, share, comm)
            else:
                loss = fg.fill_grad(
                    lambda run, x=x, y=y: F.cross_entropy(run(x), y), local_weight=share
                )
        sent += traffic.total_bytes_sent  # the gradient's traffic, not the loss report's
        if comm is not None:
            loss = loss.reshape(1) * share
            comm.allreduce(loss)
        optimiser.step()
        value = float(loss.sum())
        result.losses.append(value)
        if progress is not None:
            progress(step, value)
    result.wall_time = time.perf_counter() - began
    result.bytes_per_step = sent / steps
    result.final_loss = full_loss(model, data.x_train, data.y_train)
    result.test_accuracy = accuracy(model, data.x_test, data.y_test)
    return result


def _allreduce_grads(params: list[torch.Tensor], share: float, comm) -> None:
    """Weighted average of the gradients over the ranks (``share`` is this rank's weight)."""
    average_gradients(params, comm, weight=share)
