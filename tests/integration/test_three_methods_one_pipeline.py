"""Pipeline 4: backprop, multi-tangent forward gradients and F³ train the same MLP on the same
digits batches over the same ranks, and report through one results table."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

import hpc_comm as hc
from f3.data import Split, digits, epoch_orders
from f3.network import F3Network, mlp_blocks
from f3.pipeline import PipelineTrainer
from f3.trainer import Trainer
from fwdgrad import ForwardGradientModel
from hpc_comm.flat import average_gradients

SEED, EPOCHS, BATCH, LR, K = 0, 4, 32, 1e-3, 16
# forward gradients move along a projection onto K of ~9,000 directions: a larger Adam step
FG_LR = 1e-2
HIDDEN = [64, 64]  # three blocks, so that F³'s pipeline gives each of 3 ranks one


# ---------------------------------------------------------------------- shared pieces
def mlp() -> list[nn.Module]:
    """The one architecture every method trains, with the same initial weights."""
    return mlp_blocks(64, HIDDEN, 10, seed=SEED)


@pytest.fixture(scope="module")
def split() -> Split:
    """Standardised digits, 80/20 split: the tensors every method reads."""
    return digits(seed=SEED, head="ce")


def global_batches(split: Split):
    """Per epoch, the global batches (index tensors) in the order every method consumes them;
    F³'s trainer draws the same order from the same seed."""
    orders = epoch_orders(len(split.x_train), BATCH, SEED)
    for _ in range(EPOCHS):
        yield next(orders)


def accuracy(model: nn.Module, split: Split) -> float:
    with torch.no_grad():
        return (model(split.x_test).argmax(1) == split.y_test).double().mean().item()


@dataclass
class ResultsTable:
    """One row per method, in the same columns for all of them."""

    columns: tuple = ("method", "test accuracy", "last epoch loss", "seconds", "bytes sent/step")
    rows: list = field(default_factory=list)

    def add(self, method: str, test_accuracy: float, loss: float, seconds: float, sent: float):
        self.rows.append((method, test_accuracy, loss, seconds, sent))

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|---" * len(self.columns) + "|"]
        for method, acc, loss, seconds, sent in self.rows:
            lines.append(f"| {method} | {acc:.4f} | {loss:.4f} | {seconds:.2f} | {sent:,.0f} |")
        return "\n".join(lines)


def slowest(comm, seconds: float) -> float:
    """Wall time of a collective run: the slowest rank's."""
    return max(comm.allgather_obj(seconds))


def mean_over_ranks(comm, *values: float) -> list[float]:
    t = torch.tensor(values, dtype=torch.float64)
    comm.allreduce(t)
    return (t / comm.size).tolist()


# ----------------------------------------------------------------------- the methods
@dataclass
class Run:
    model: nn.Module
    loss: float  # the last epoch's mean training loss over the global batches
    seconds: float
    bytes_per_step: float  # mean over ranks


def data_parallel(split: Split, comm, fill_grad: Callable, lr: float = LR) -> Run:
    """Every rank takes its strided share of each global batch; ``fill_grad(net, x, y, share)``
    sets the gradients of the global-batch mean loss and returns this rank's share of it."""
    net = nn.Sequential(*mlp())
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps, start = 0, time.perf_counter()
    with hc.traffic() as counted:
        for epoch in global_batches(split):
            loss_sum = 0.0
            for idx in epoch:
                local = idx[comm.rank :: comm.size]
                opt.zero_grad()
                share = fill_grad(
                    net, split.x_train[local], split.y_train[local], len(local) / len(idx)
                )
                opt.step()
                loss_sum += share * len(idx)
                steps += 1
    seconds = slowest(comm, time.perf_counter() - start)
    loss, sent = mean_over_ranks(comm, loss_sum * comm.size, counted.total_bytes_sent / steps)
    return Run(net, loss / len(split.x_train), seconds, sent)


def backprop(comm) -> Callable:
    def fill_grad(net, x, y, share):
        loss = nn.functional.cross_entropy(net(x), y) * share
        loss.backward()
        average_gradients(list(net.parameters()), comm, weight=1.0)  # sum of the shares
        return loss.item()

    return fill_grad


def forward_gradients(comm) -> Callable:
    """Projection onto K tangents drawn from the shared seed: ranks allreduce K jvps per step."""
    wrappers = {}

    def fill_grad(net, x, y, share):
        if id(net) not in wrappers:
            wrappers[id(net)] = ForwardGradientModel(
                net, k=K, aggregation="projection", seed=SEED, comm=comm
            )
        loss = wrappers[id(net)].fill_grad(
            lambda run: nn.functional.cross_entropy(run(x), y), local_weight=share
        )
        return float(loss) * share

    return fill_grad


def f3_network() -> F3Network:
    return F3Network(mlp(), 10, (64,), head="ce", seed=SEED)


def f3_over_ranks(split: Split, comm) -> tuple[PipelineTrainer, list[dict], float]:
    trainer = PipelineTrainer(f3_network(), comm, method="f3", lr=LR)
    with hc.traffic() as counted:
        history = trainer.fit(
            split.x_train, split.y_train, EPOCHS, batch_size=BATCH, seed=SEED,
            x_test=split.x_test, y_test=split.y_test,
        )  # fmt: skip
    steps = EPOCHS * -(-len(split.x_train) // BATCH)
    (sent,) = mean_over_ranks(comm, counted.total_bytes_sent / steps)
    return trainer, history, sent


# ------------------------------------------------------------------------- the test
def assert_same_weights(model: nn.Module, reference: nn.Module, atol: float) -> None:
    for got, want in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(got, want, rtol=0.0, atol=atol)


def test_backprop_forward_gradients_and_f3_share_one_pipeline_and_table(comm, split):
    table = ResultsTable()
    alone = hc.self_comm()

    bp = data_parallel(split, comm, backprop(comm))
    bp_alone = data_parallel(split, alone, backprop(alone))
    assert_same_weights(bp.model, bp_alone.model, atol=1e-4)  # the global batch, split or not
    table.add("backprop", accuracy(bp.model, split), bp.loss, bp.seconds, bp.bytes_per_step)

    fg = data_parallel(split, comm, forward_gradients(comm), lr=FG_LR)
    fg_alone = data_parallel(split, alone, forward_gradients(alone), lr=FG_LR)
    assert_same_weights(fg.model, fg_alone.model, atol=1e-4)  # same tangents on every rank
    table.add(f"forward gradients (projection, k={K})", accuracy(fg.model, split), fg.loss,
              fg.seconds, fg.bytes_per_step)  # fmt: skip

    start = time.perf_counter()
    trainer, history, sent = f3_over_ranks(split, comm)
    seconds = slowest(comm, time.perf_counter() - start)
    reference = Trainer(f3_network(), method="f3", update="immediate", lr=LR)
    reference_history = reference.fit(
        split.x_train, split.y_train, EPOCHS, batch_size=BATCH, seed=SEED,
        x_test=split.x_test, y_test=split.y_test,
    )  # fmt: skip
    for i in range(trainer.start, trainer.stop):  # this rank's blocks equal the one-process run
        assert_same_weights(trainer.network.blocks[i], reference.network.blocks[i], atol=1e-5)
    last = history[-1]
    assert last["test_accuracy"] == pytest.approx(reference_history[-1]["test_accuracy"], abs=1e-9)
    table.add("F³ (pipeline over ranks)", last["test_accuracy"], last["train_loss"], seconds, sent)

    # a single results table, identical on every rank, with every method learning
    text = table.markdown()
    assert all(t == text for t in comm.allgather_obj(text))
    if comm.rank == 0:
        print(f"\n{comm.size} ranks, {EPOCHS} epochs of digits, batch {BATCH}\n{text}")
    results = {row[0].split(" ")[0]: row for row in table.rows}
    assert results["backprop"][1] > 0.93
    assert results["F³"][1] > 0.85
    assert results["forward"][1] > 0.85
    assert all(row[2] < 0.6 * 2.302585 for row in table.rows)  # below the loss at chance, ln 10
    # forward gradients send K jvps per step, backprop the whole gradient
    n_params = sum(p.numel() for p in bp.model.parameters())
    if comm.size > 1:
        assert results["forward"][4] < results["backprop"][4] / 50
        assert results["backprop"][4] >= 4 * n_params
