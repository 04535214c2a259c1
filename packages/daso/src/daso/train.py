"""A small training harness (digits, MLP or CNN) that runs DASO and the synchronous baseline alike."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

import hpc_comm as hc
from daso.baseline import SyncDataParallel
from daso.optimizer import DASO
from hpc_comm.linkmodel import LinkModel, LinkModelCommunicator

METHODS = ("daso", "sync", "hsync")
MODELS = ("mlp", "cnn")
DOWNCASTS = {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}


@dataclass
class TrainConfig:
    """Everything one training run depends on (all ranks pass the same values)."""

    method: str = "daso"
    model: str = "mlp"
    epochs: int = 12
    batch_size: int = 16
    lr: float = 0.05
    momentum: float = 0.9
    hidden: int = 128
    seed: int = 0
    warmup_epochs: int = 1
    cooldown_epochs: int = 1
    max_global_skips: int = 8
    downcast: str = "bf16"
    latency: float = 0.0
    bandwidth: float = math.inf
    target_accuracy: float = 0.95

    def validate(self) -> None:
        """Check every field's range and choice.

        Raises
        ------
        ValueError
            Naming the first field that is out of range or not one of its choices.
        TypeError
            If ``latency`` or ``bandwidth`` is not a number.
        """
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.downcast not in DOWNCASTS:
            raise ValueError(
                f"downcast must be one of {', '.join(DOWNCASTS)}, got {self.downcast!r}"
            )
        for name in ("epochs", "batch_size", "hidden", "max_global_skips"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_epochs", "cooldown_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if not 0 < self.target_accuracy <= 1:
            raise ValueError(f"target_accuracy must be in (0, 1], got {self.target_accuracy}")
        LinkModel(self.latency, self.bandwidth)  # raises on bad link values


@dataclass
class TrainResult:
    """One run, as seen on rank 0; byte counts and times are summed / maximised over ranks."""

    config: dict
    history: list[dict] = field(default_factory=list)  # epoch, wall, loss, accuracy
    final_accuracy: float = 0.0
    wall_time: float = 0.0
    time_to_target: float | None = None
    inter_node_bytes: int = 0
    intra_node_bytes: int = 0
    traffic_bytes: int = 0
    inter_node_share: float = 0.0  # time blocked in inter-node communication / wall time

    def as_dict(self) -> dict:
        """All fields as a plain dict (a deep copy), e.g. for JSON."""
        return asdict(self)


def load_digits(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits, standardised, split 80/20 with ``seed``."""
    from sklearn.datasets import load_digits as sk_digits

    x, y = sk_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order].astype(np.float32) / 16.0, y[order]
    n_test = len(y) // 5
    mean, std = x[n_test:].mean(0), x[n_test:].std(0) + 1e-3
    x = (x - mean) / std
    t = lambda a, dt: torch.tensor(a, dtype=dt)  # noqa: E731
    return (
        t(x[n_test:], torch.float32),
        t(y[n_test:], torch.int64),
        t(x[:n_test], torch.float32),
        t(y[:n_test], torch.int64),
    )


def build_model(name: str, hidden: int, seed: int) -> torch.nn.Module:
    """A classifier for 64-pixel digits with 10 outputs, initialised from ``seed``.

    Seeds torch's global generator with ``seed`` before building.

    Parameters
    ----------
    name
        ``"mlp"``: three linear layers with ReLU; ``"cnn"``: two 3x3 convolutions, a 2x2 max
        pool, two linear layers (anything else: ValueError).
    hidden
        Width of the hidden linear layers.
    seed
        Seed for the initial weights.
    """
    if name not in MODELS:
        raise ValueError(f"name must be one of {MODELS}, got {name!r}")
    torch.manual_seed(seed)
    if name == "mlp":
        return torch.nn.Sequential(
            torch.nn.Linear(64, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, 10),
        )
    return torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, 8, 8)),
        torch.nn.Conv2d(1, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 16, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 10),
    )


def _wrap(cfg: TrainConfig, model, optimizer, comm):
    if cfg.method == "daso":
        return DASO(
            model,
            optimizer,
            comm=comm,
            total_epochs=cfg.epochs,
            warmup_epochs=cfg.warmup_epochs,
            cooldown_epochs=cfg.cooldown_epochs,
            max_global_skips=cfg.max_global_skips,
            downcast=DOWNCASTS[cfg.downcast],
        )
    return SyncDataParallel(model, optimizer, comm=comm, hierarchical=cfg.method == "hsync")


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows of ``x`` whose arg-max output equals the label in ``y`` (no gradients)."""
    return (model(x).argmax(1) == y).float().mean().item()


def train(
    cfg: TrainConfig,
    comm: hc.Communicator | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train on every rank of ``comm`` (collective). Wall time excludes the per-epoch evaluation.

    Every rank holds the whole (small) data set; each global batch of ``batch_size × ranks``
    samples is cut into one piece per rank, from a permutation shared by all ranks.
    """
    cfg.validate()
    comm = hc.world() if comm is None else comm
    x_train, y_train, x_test, y_test = load_digits(cfg.seed)
    global_batch = cfg.batch_size * comm.size
    n_batches = len(y_train) // global_batch
    if n_batches < 1:  # checked before any communicator or wrapper exists
        raise ValueError(f"batch_size {cfg.batch_size} x {comm.size} ranks exceeds the data set")
    link = LinkModelCommunicator(comm, LinkModel(cfg.latency, cfg.bandwidth))
    model = build_model(cfg.model, cfg.hidden, cfg.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    wrapper = _wrap(cfg, model, optimizer, link)
    result = TrainResult(config=asdict(cfg))
    wall = 0.0
    link.stats.reset()
    with hc.traffic() as traffic:
        for epoch in range(cfg.epochs):
            order = torch.randperm(
                len(y_train), generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
            )
            comm.barrier()
            start = time.perf_counter()
            loss_sum = 0.0
            with wrapper.epoch(n_batches):
                for b in range(n_batches):
                    first = b * global_batch + comm.rank * cfg.batch_size
                    idx = order[first : first + cfg.batch_size]
                    wrapper.zero_grad()
                    loss = torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
                    loss.backward()
                    wrapper.step()
                    loss_sum += loss.item()
            mean_loss = wrapper.epoch_loss_logic(loss_sum / n_batches)
            wall += time.perf_counter() - start
            acc = accuracy(model, x_test, y_test)
            point = {"epoch": epoch + 1, "wall": wall, "loss": mean_loss, "accuracy": acc}
            result.history.append(point)
            if result.time_to_target is None and acc >= cfg.target_accuracy:
                result.time_to_target = wall
            if on_epoch is not None:
                on_epoch(point)
    wrapper.close()
    totals = torch.tensor(
        [link.stats.inter_bytes, link.stats.intra_bytes, traffic.total_bytes_sent],
        dtype=torch.float64,
    )
    comm.allreduce(totals)
    share = torch.tensor([link.stats.inter_seconds / max(wall, 1e-12)], dtype=torch.float64)
    comm.allreduce(share, op=hc.MAX)
    result.final_accuracy = result.history[-1]["accuracy"]
    result.wall_time = wall
    result.inter_node_bytes, result.intra_node_bytes, result.traffic_bytes = (
        int(v) for v in totals.tolist()
    )
    result.inter_node_share = share.item()
    link.free()
    return result
