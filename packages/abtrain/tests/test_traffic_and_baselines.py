"""hpc-comm's traffic counter against the analytic models; DP and PowerSGD against references."""

import numpy as np
import pytest
import torch
from abtrain_test_helpers import batch, tiny_mlp
from torch import nn

import hpc_comm as hc
from abtrain import (
    ABTrafficModel,
    ABTrainer,
    DataParallelTrainer,
    PowerSGDTrainer,
    convert_model,
    data_parallel_bytes,
    powersgd_bytes,
)

pytestmark = [pytest.mark.mpi, pytest.mark.timeout(120)]


def _backward(model, rank, step, dtype=torch.float64):
    x, y = batch(0, rank, step)
    model.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x.to(dtype)), y).backward()


def _run_ab(comm, steps, **kw):
    model = convert_model(tiny_mlp(0))  # float32; keeps the classifier full rank
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    with hc.traffic() as t:
        trainer = ABTrainer(model, opt, comm, **kw)
        for step in range(steps):
            _backward(model, comm.rank, step, torch.float32)
            trainer.step()
        trainer.finish()
    trainer.close()
    return trainer, t


@pytest.mark.parametrize(
    "train_comm, group_size", [("groups", 2), ("groups", -1), ("individual", 1)]
)
@pytest.mark.parametrize("sync_mode", ["full", "with-stale", "only-learned", "only-b"])
def test_traffic_counter_equals_the_analytic_model(comm, sync_mode, train_comm, group_size):
    steps = 13
    trainer, t = _run_ab(
        comm,
        steps,
        warmup_steps=2,
        sync_every=4,
        full_rank_steps=1,
        cutoff=0.4,
        sync_mode=sync_mode,
        train_comm=train_comm,
        group_size=group_size,
        lr_rebound_steps=2,
    )
    model = ABTrafficModel.for_trainer(trainer)
    predicted = model.predict(steps, trainer.rank_history, finished=True)
    assert t.total_bytes_sent == predicted
    assert set(t.bytes_sent) <= {"allreduce", "bcast"}


@pytest.mark.parametrize("group_size", [2, -1])
def test_analytic_model_matches_a_hand_count(comm, group_size):
    """MLP 6-8-5-3 (classifier 3x5 + 3 kept, 18 numbers), AB layers 8x6 and 5x8, biases 8 + 5.
    warmup 2, merge every 4, 1 full-rank step, 9 steps, then the final merge."""
    steps = 9
    trainer, t = _run_ab(
        comm,
        steps,
        warmup_steps=2,
        sync_every=4,
        full_rank_steps=1,
        cutoff=0.4,
        group_size=group_size,
    )
    n, role = comm.size, trainer.role
    group = trainer.group_size
    r1, r2 = trainer.rank_history[1]
    always, other, dense = 18, 13, 48 + 40
    if n == 1:
        expected = 0
    else:

        def ab_step(ra, rb):
            factor = 8 * ra + 5 * rb if role == "a" else ra * 6 + rb * 8
            return always + (other + factor if group > 1 else 0)

        expected = (
            4
            * (
                (119 if comm.rank == 0 else 0)  # initial broadcast from rank 0
                + 3 * (always + other + dense)  # steps 1, 2, 7
                + 4 * ab_step(6, 5)  # steps 3-6 with the untruncated ranks
                + 2 * (other + dense)  # two `full` merges (after step 6 and at the end)
                + 2 * ab_step(r1, r2)  # steps 8, 9
            )
            + 8 * 2
        )  # the MAX-allreduce of two ranks at the re-split
    assert t.total_bytes_sent == expected
    assert (
        ABTrafficModel.for_trainer(trainer).predict(steps, trainer.rank_history, True) == expected
    )


def test_data_parallel_averages_gradients_and_counts_bytes(comm):
    model = tiny_mlp(3, dtype=torch.float64)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with hc.traffic() as t:
        trainer = DataParallelTrainer(model, opt, comm)
        _backward(model, comm.rank, 0)
        trainer.step()
    hand_count = 0 if comm.size == 1 else 8 * 119 * (1 + (comm.rank == 0))  # step + broadcast
    assert t.total_bytes_sent == data_parallel_bytes(trainer, 1) == hand_count
    reference = tiny_mlp(3, dtype=torch.float64)
    for r in range(comm.size):
        x, y = batch(0, r, 0)
        (nn.functional.cross_entropy(reference(x), y) / comm.size).backward()
    for p, ref in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.grad, ref.grad, atol=1e-12, rtol=1e-10)


def test_powersgd_step_matches_a_numpy_reference(comm):
    """One PowerSGD step: P = mean_i M_i Q, orthonormalised; Q' = mean_i M_iᵀ P; grad = P Q'ᵀ,
    error = M_own - P Q'ᵀ; 1-D gradients averaged exactly."""
    widths = (6, 16, 12, 3)
    model = tiny_mlp(4, dtype=torch.float64, widths=widths)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = PowerSGDTrainer(model, opt, comm, rank=2, seed=7)
    assert len(trainer.compressed) == 3
    q0 = {p: trainer.q[p].numpy().copy() for p in trainer.compressed}
    _backward(model, comm.rank, 0)
    trainer.step()
    grads_per_rank = []
    for r in range(comm.size):
        twin = tiny_mlp(4, dtype=torch.float64, widths=widths)
        x, y = batch(0, r, 0)
        nn.functional.cross_entropy(twin(x), y).backward()
        grads_per_rank.append([p.grad.numpy() for p in twin.parameters()])
    for i, p in enumerate(model.parameters()):
        ms = [g[i] for g in grads_per_rank]
        if p.ndim == 1:
            np.testing.assert_allclose(p.grad.numpy(), np.mean(ms, axis=0), atol=1e-12)
            continue
        pm = np.mean([m @ q0[p] for m in ms], axis=0)
        pm, _ = np.linalg.qr(pm)
        qm = np.mean([m.T @ pm for m in ms], axis=0)
        approx = pm @ qm.T  # invariant to the sign choices of the QR
        np.testing.assert_allclose(p.grad.numpy(), approx, atol=1e-10)
        np.testing.assert_allclose(trainer.error[p].numpy(), ms[comm.rank] - approx, atol=1e-10)


def test_powersgd_counts_the_predicted_bytes(comm):
    model = tiny_mlp(5, widths=(6, 16, 12, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with hc.traffic() as t:
        trainer = PowerSGDTrainer(model, opt, comm, rank=2, warmup_steps=2)
        for step in range(5):
            _backward(model, comm.rank, step, torch.float32)
            trainer.step()
    assert t.total_bytes_sent == powersgd_bytes(trainer, 5)
    if comm.size > 1:
        assert powersgd_bytes(trainer, 5) < data_parallel_bytes(
            DataParallelTrainer(
                tiny_mlp(5, widths=(6, 16, 12, 3)),
                torch.optim.SGD(model.parameters(), lr=0.1),
                comm,
            ),
            5,
        )


def test_powersgd_rejects_bad_rank(comm):
    model = tiny_mlp()
    with pytest.raises(ValueError, match="rank"):
        PowerSGDTrainer(model, torch.optim.SGD(model.parameters(), lr=0.1), comm, rank=0)
