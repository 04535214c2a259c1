"""Small OIALR experiments on scikit-learn's digits: data, an MLP, a CNN, a ViT and a train loop."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from hpc_comm import get_logger
from hpc_comm.cli_support import progress_bar

from .core import OIALR, average_gradients, broadcast_parameters, merge
from .stability import BasisTracker

__all__ = ["MODELS", "TrainConfig", "TrainResult", "build_model", "load_digits", "train"]

log = get_logger(__name__)

MODELS = ("mlp", "cnn", "vit")


def load_digits(seed: int, test_fraction: float = 0.2):
    """(x_train, y_train, x_test, y_test) as float32 / int64 tensors; images are 1x8x8 in [0, 1]."""
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError as exc:  # pragma: no cover - sklearn is a declared dependency of the extra
        raise ImportError(
            "the digits experiments need scikit-learn: pip install 'oialr[train]'"
        ) from exc
    data = sk_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = round(test_fraction * len(y))
    test, train_ = order[:n_test], order[n_test:]
    return x[train_], y[train_], x[test], y[test]


class _Block(nn.Module):
    """Pre-norm transformer block: attention and an MLP, each with a residual connection."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.norm2(x))))


class TinyViT(nn.Module):
    """A vision transformer for 8x8 images: 2x2 patches, a class token, ``depth`` blocks."""

    def __init__(self, dim: int = 64, depth: int = 2, heads: int = 4, hidden: int = 128):
        super().__init__()
        self.patch = nn.Conv2d(1, dim, 2, stride=2)  # 16 tokens
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(0.02 * torch.randn(1, 17, dim))
        self.blocks = nn.Sequential(*[_Block(dim, heads, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (batch x 10) for images of shape batch x 1 x 8 x 8."""
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1) + self.pos
        return self.head(self.norm(self.blocks(tokens))[:, 0])


def build_model(kind: str, seed: int) -> nn.Module:
    """The digits model ``kind`` (mlp, cnn, vit) with weights drawn from ``seed``."""
    if kind not in MODELS:
        raise ValueError(f"model: expected one of {MODELS}, got {kind!r}")
    torch.manual_seed(seed)
    if kind == "mlp":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(64, 256),
            nn.ReLU(),
            nn.Linear(256, 256),
            nn.ReLU(),
            nn.Linear(256, 10),
        )
    if kind == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(256, 256),
            nn.ReLU(),
            nn.Linear(256, 10),
        )
    return TinyViT()


@dataclass
class TrainConfig:
    """One digits run. ``low_rank=False`` is the full-rank baseline (same seed, same batches)."""

    model: str = "mlp"
    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    low_rank: bool = True
    delay: int = 300
    stability_frequency: int = 100
    sigma_cutoff_fraction: float = 0.1
    layer_share_step: float = 0.1
    keep_first_layer: bool = False
    keep_last_layer: bool = True
    track_every: int = 0
    seed: int = 0

    def validate(self) -> None:
        """Check the model name and the ranges of the numeric fields.

        Raises
        ------
        ValueError
            Naming the first field out of range or not one of its choices.
        """
        if self.model not in MODELS:
            raise ValueError(f"model: expected one of {MODELS}, got {self.model!r}")
        for name in ("steps", "batch_size", "stability_frequency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected a positive int, got {getattr(self, name)}")
        for name in ("delay", "track_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected an int >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected a positive number, got {self.lr}")
        if not 0 <= self.sigma_cutoff_fraction <= 1:
            raise ValueError(
                f"sigma_cutoff_fraction: expected a value in [0, 1], got {self.sigma_cutoff_fraction}"
            )
        if not 0 < self.layer_share_step <= 1:
            raise ValueError(
                f"layer_share_step: expected a value in (0, 1], got {self.layer_share_step}"
            )


@dataclass
class TrainResult:
    """What one digits run produced.

    ``losses`` holds this rank's mean training loss per step; ``ranks`` and ``rank_history`` stay
    empty for the full-rank baseline; ``seconds_per_step`` is the mean time of a training step;
    ``inference_seconds`` and ``merged_inference_seconds`` are median forward times over the test
    split, before and after ``merge``; ``stability`` is ``BasisTracker.stability()`` when
    ``track_every`` > 0.
    """

    config: TrainConfig
    test_accuracy: float
    trainable_fraction: float
    ranks: dict[str, int]
    rank_history: list[tuple[int, dict[str, int]]]
    seconds_per_step: float
    inference_seconds: float
    merged_inference_seconds: float
    losses: list[float] = field(default_factory=list)
    stability: dict = field(default_factory=dict)


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def inference_seconds(model: nn.Module, x: torch.Tensor, repeats: int = 20) -> float:
    """Median wall time of one no-grad forward pass over ``x``."""
    model.eval()
    times = []
    with torch.no_grad():
        model(x)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def train(config: TrainConfig, comm=None, progress: bool = False) -> TrainResult:
    """Train on digits (data-parallel over ``comm`` if given) and evaluate on the test split."""
    config.validate()
    x_tr, y_tr, x_te, y_te = load_digits(config.seed)
    model = build_model(config.model, config.seed)
    size, rank = (comm.size, comm.rank) if comm is not None else (1, 0)
    broadcast_parameters(model, comm)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    ctl = None
    if config.low_rank:
        ctl = OIALR(
            model,
            opt,
            delay=config.delay,
            stability_frequency=config.stability_frequency,
            sigma_cutoff_fraction=config.sigma_cutoff_fraction,
            layer_share_step=config.layer_share_step,
            keep_first_layer=config.keep_first_layer,
            keep_last_layer=config.keep_last_layer,
            comm=comm,
        )
    full_params = sum(p.numel() for p in model.parameters())
    tracker = BasisTracker(model) if config.track_every else None
    batches = torch.Generator().manual_seed(config.seed + 1)
    bar = progress_bar(config.steps, unit="step", enabled=progress, dynamic_ncols=True)
    losses, train_time = [], 0.0
    for step in range(config.steps):
        if tracker is not None and step % config.track_every == 0:
            tracker.snapshot(step)
        idx = torch.randint(0, len(y_tr), (config.batch_size,), generator=batches)
        idx = idx[rank::size]
        model.train()
        start = time.perf_counter()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x_tr[idx]), y_tr[idx], reduction="sum")
        # sum over local rows * size / global batch: the rank average is the global-batch mean
        (loss * size / config.batch_size).backward()
        average_gradients(model, comm)
        opt.step()
        if ctl is not None:
            ctl.step()
        train_time += time.perf_counter() - start
        losses.append(float(loss.detach()) / max(1, len(idx)))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    if bar is not None:
        bar.close()
    if tracker is not None:
        tracker.snapshot(config.steps)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return TrainResult(
        config=config,
        test_accuracy=_accuracy(model, x_te, y_te),
        trainable_fraction=ctl.trainable_fraction() if ctl else trainable / full_params,
        ranks=ctl.ranks() if ctl else {},
        rank_history=list(ctl.rank_history) if ctl else [],
        seconds_per_step=train_time / config.steps,
        inference_seconds=inference_seconds(model, x_te),
        merged_inference_seconds=inference_seconds(merge(model), x_te),
        losses=losses,
        stability=tracker.stability() if tracker is not None else {},
    )
