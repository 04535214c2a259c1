"""The forward-only pipeline over ranks trains bit for bit like the single-process trainer."""

import copy

import pytest
import torch

from f3.network import F3Network, mlp_blocks
from f3.pipeline import PipelineTrainer, check_partition
from f3.trainer import Trainer

pytestmark = pytest.mark.timeout(60)


def problem(head="bce", blocks=4, n=90):
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(n, 8, generator=gen)
    if head == "mse":
        y = torch.tanh(x[:, :2] * x[:, 2:4])
    else:
        y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    outputs = 2 if head == "mse" else 3
    net = F3Network(mlp_blocks(8, [12] * (blocks - 1), outputs, seed=2), outputs, (8,), head=head)
    return x, y, net


@pytest.mark.mpi
@pytest.mark.parametrize(
    "method, head, error",
    [
        ("f3", "bce", "delayed_error"),
        ("f3", "mse", "delayed_loss"),
        ("f3", "ce", "delayed_loss_one_hot"),
        ("drtp", "bce", "delayed_error"),
        ("llo", "bce", "delayed_error"),
    ],
)
def test_pipeline_matches_single_process_training(comm, method, head, error):
    x, y, net = problem(head, blocks=max(3, comm.size))
    reference = copy.deepcopy(net)
    single = Trainer(reference, method, error=error, update="immediate", lr=1e-2)
    expected = single.fit(x[:70], y[:70], 4, batch_size=16, seed=5, x_test=x[70:], y_test=y[70:])
    pipe = PipelineTrainer(net, comm, method, error=error, lr=1e-2)
    history = pipe.fit(x[:70], y[:70], 4, batch_size=16, seed=5, x_test=x[70:], y_test=y[70:])
    for i in range(pipe.start, pipe.stop):
        for a, b in zip(net.blocks[i].parameters(), reference.blocks[i].parameters()):
            assert torch.equal(a, b), (a - b).abs().max()
    if method == "f3":
        assert torch.equal(pipe.buffer.errors, single.buffer.errors)
    metric = "test_mse" if head == "mse" else "test_accuracy"
    # same seed and data order: the same floats, so the same metrics on every rank
    assert [h[metric] for h in history] == [h[metric] for h in expected]
    assert [h["train_loss"] for h in history] == [h["train_loss"] for h in expected]
    assert all(
        torch.equal(a.feedback, b.feedback) for a, b in zip(net.connectors, reference.connectors)
    )


@pytest.mark.mpi
def test_uneven_partition_and_the_error_messages_are_small(comm):
    import hpc_comm as hc

    x, y, net = problem("bce", blocks=comm.size + 2)
    reference = copy.deepcopy(net)
    partition = [1] * comm.size
    partition[0] += 2
    pipe = PipelineTrainer(net, comm, "f3", lr=1e-2, partition=partition)
    with hc.traffic() as traffic:
        pipe.fit(x, y, 2, batch_size=30, seed=1)
    Trainer(reference, "f3", lr=1e-2).fit(x, y, 2, batch_size=30, seed=1)
    for i in range(pipe.start, pipe.stop):
        for a, b in zip(net.blocks[i].parameters(), reference.blocks[i].parameters()):
            assert torch.equal(a, b), (a - b).abs().max()
    if comm.size > 1 and pipe.is_last:
        # per batch and earlier rank: 30 samples × 3 outputs × 4 bytes
        assert traffic.bytes_sent["isend"] == 2 * 3 * (comm.size - 1) * 30 * 3 * 4


def test_partition_is_checked():
    assert check_partition(None, 5, 2) == [3, 2]
    with pytest.raises(ValueError, match="partition"):
        check_partition([2, 2], 5, 2)
    with pytest.raises(ValueError, match="blocks"):
        check_partition(None, 2, 3)


def test_backprop_is_refused_in_a_pipeline(comm):
    _, _, net = problem()
    with pytest.raises(ValueError, match="method"):
        PipelineTrainer(net, comm, "bp")
