"""One harness for AB-training, data parallelism and PowerSGD on scikit-learn's digits."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

import hpc_comm as hc
from hpc_comm.cli_support import progress_bar

from .baselines import DataParallelTrainer, PowerSGDTrainer, powersgd_compressible
from .layers import compression_report, convert_model
from .trainer import ABTrainer

METHODS = ("ab", "dp", "powersgd")
MODELS = ("mlp", "cnn")
log = hc.get_logger(__name__)


@dataclass
class RunResult:
    """What one training run measured; bytes are the mean over ranks of what each rank sent."""

    method: str
    model: str
    seed: int
    steps: int
    ranks: int
    accuracy: float
    bytes_sent: float
    seconds: float
    layer_compression: float = 1.0
    model_compression: float = 1.0
    final_ranks: list[int] = field(default_factory=list)
    curve: list[tuple[float, float]] = field(default_factory=list)
    powersgd_rank: int | None = None


def load_digits(seed: int):
    """Digits (8x8, 10 classes) scaled to [0, 1], split 75 / 25 with a seeded permutation."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as exc:
        raise ImportError(
            "the digits data needs scikit-learn: pip install 'abtrain[train]'"
        ) from exc

    data = sk_load_digits()
    x = torch.tensor(data.data / 16.0, dtype=torch.float32)
    y = torch.tensor(data.target, dtype=torch.int64)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    cut = int(0.75 * len(y))
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def build_model(kind: str, seed: int) -> nn.Module:
    """``mlp``: 64-256-256-10 (ReLU); ``cnn``: two 3x3 convolutions, a pool and two Linear."""
    if kind not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {kind!r}")
    torch.manual_seed(seed)
    if kind == "mlp":
        return nn.Sequential(
            nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
        )
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows of ``x`` whose arg-max output equals the label in ``y`` (no gradients)."""
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())


def powersgd_rank_for_bytes(model: nn.Module, bytes_per_step: float) -> int:
    """The largest PowerSGD rank whose per-step payload stays within ``bytes_per_step``."""
    params = [p for p in model.parameters() if p.requires_grad]
    best = 1
    for rank in range(1, 257):
        numel = 0
        for p in params:
            if powersgd_compressible(p.shape, rank):
                m, n = p.shape[0], p.numel() // p.shape[0]
                numel += min(rank, m, n) * (m + n)
            else:
                numel += p.numel()
        if 4 * numel <= bytes_per_step:
            best = rank
    return best


def _make_trainer(method, model, comm, lr, seed, ab_options, powersgd_rank):
    if method == "ab":
        convert_model(model)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        return ABTrainer(model, opt, comm, **ab_options)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    if method == "dp":
        return DataParallelTrainer(model, opt, comm)
    return PowerSGDTrainer(model, opt, comm, rank=powersgd_rank, seed=seed)


def train_digits(
    method: str = "ab",
    *,
    comm: hc.Communicator | None = None,
    model: str = "mlp",
    steps: int = 600,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    eval_every: int = 50,
    powersgd_rank: int = 4,
    ab_options: dict | None = None,
    progress: bool = False,
) -> RunResult:
    """Train on digits with ``method`` (ab, dp or powersgd) over ``comm``; each rank draws its
    mini-batches from its own shard of the training set. Returns the test accuracy of the final
    (merged) model, the bytes sent and the accuracy-vs-bytes curve (rank 0's model)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    for name, value, low in (("steps", steps, 1), ("batch_size", batch_size, 1)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError(f"eval_every must be an int >= 1, got {eval_every!r}")
    comm = comm if comm is not None else hc.world()
    x_train, y_train, x_test, y_test = load_digits(seed)
    shard = torch.arange(comm.rank, len(y_train), comm.size)
    net = build_model(model, seed)
    generator = torch.Generator().manual_seed(seed * 1000 + comm.rank)
    loss_fn = nn.CrossEntropyLoss()
    curve_bytes, curve_acc = [], []
    bar = progress_bar(steps, desc=method, unit="step", enabled=progress, leave=False)
    start = time.perf_counter()
    with hc.traffic() as counted:
        trainer = _make_trainer(method, net, comm, lr, seed, dict(ab_options or {}), powersgd_rank)
        for step in range(1, steps + 1):
            pick = shard[torch.randint(len(shard), (batch_size,), generator=generator)]
            net.zero_grad(set_to_none=True)
            loss_fn(net(x_train[pick]), y_train[pick]).backward()
            trainer.step()
            if step % eval_every == 0 or step == steps:
                curve_bytes.append(counted.total_bytes_sent)
                curve_acc.append(accuracy(net, x_test, y_test) if comm.rank == 0 else 0.0)
            if bar is not None:
                bar.update(1)
        trainer.finish()
        sent = counted.total_bytes_sent
    seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    trainer.close()
    all_bytes = comm.allgather_obj((sent, curve_bytes))
    mean_sent = float(np.mean([b for b, _ in all_bytes]))
    mean_curve = np.mean([c for _, c in all_bytes], axis=0)
    result = RunResult(
        method=method,
        model=model,
        seed=seed,
        steps=steps,
        ranks=comm.size,
        accuracy=comm.bcast_obj(accuracy(net, x_test, y_test), root=0),
        bytes_sent=mean_sent,
        seconds=seconds,
        curve=list(zip(mean_curve.tolist(), comm.bcast_obj(curve_acc, root=0), strict=True)),
    )
    if method == "ab":
        report = compression_report(net)
        result.layer_compression = report["layer_compression"]
        result.model_compression = report["model_compression"]
        result.final_ranks = trainer.ranks()
    if method == "powersgd":
        result.powersgd_rank = powersgd_rank
    return result
