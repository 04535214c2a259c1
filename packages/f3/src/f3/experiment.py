"""One training run from plain settings: build the MLP, pick the trainer, return the history."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from f3.data import Split
from f3.network import F3Network, mlp_blocks
from f3.pipeline import PipelineTrainer
from f3.trainer import Trainer


@dataclass
class RunResult:
    """The settings' label, per-epoch history and the final test metrics of one run."""

    label: str
    method: str
    history: list[dict]

    @property
    def final(self) -> dict:
        """The last epoch's record (with the final test metrics); {} when there is none."""
        return self.history[-1] if self.history else {}


def label_of(method: str, error: str) -> str:
    """The name a run appears under in tables and plots: ``f3 (<error>)`` for F³, else the
    method."""
    return f"f3 ({error})" if method == "f3" else method


def run_mlp(
    split: Split,
    method: str,
    hidden: Sequence[int],
    epochs: int,
    batch_size: int = 50,
    lr: float = 1e-3,
    error: str = "delayed_error",
    feedback: str = "kaiming_uniform",
    update: str = "immediate",
    seed: int = 0,
    comm=None,
    on_epoch: Callable[[dict], None] | None = None,
) -> RunResult:
    """Train an MLP on ``split``; a pipeline over ``comm`` when it has more than one rank."""
    if not hidden or min(hidden) < 1:
        raise ValueError(f"hidden must list widths >= 1, got {list(hidden)}")
    inputs = split.x_train.shape[1]
    blocks = mlp_blocks(inputs, hidden, split.num_outputs, seed=seed)
    net = F3Network(
        blocks, split.num_outputs, (inputs,), head=split.head, feedback=feedback, seed=seed
    )
    if comm is not None and comm.size > 1:
        trainer = PipelineTrainer(net, comm, method, error=error, lr=lr)
    else:
        trainer = Trainer(net, method, error=error, update=update, lr=lr)
    history = trainer.fit(
        split.x_train,
        split.y_train,
        epochs,
        batch_size=batch_size,
        seed=seed,
        x_test=split.x_test,
        y_test=split.y_test,
        on_epoch=on_epoch,
    )
    return RunResult(label_of(method, error), method, history)


def plot_curves(results: Sequence[RunResult], metric: str, path: str, title: str = "") -> None:
    """Train loss and the test ``metric`` per epoch for every run, saved atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for result in results:
        epochs = [r["epoch"] for r in result.history]
        left.plot(epochs, [r["train_loss"] for r in result.history], label=result.label)
        right.plot(epochs, [r[metric] for r in result.history], label=result.label)
    left.set(xlabel="epoch", ylabel="train loss", yscale="log")
    right.set(xlabel="epoch", ylabel=metric.replace("_", " "))
    right.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=directory)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
