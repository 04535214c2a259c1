"""Data-parallel forward gradients: shared tangents, only the k jvps are allreduced."""

import pytest
import torch
from fwdgrad_helpers import SmallNet, flat

import fwdgrad
import hpc_comm as hc

BATCH = 29  # uneven over 2 and 3 ranks


def full_batch(seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, (BATCH,), generator=gen)
    return x, y


def my_rows(comm) -> slice:
    counts = hc.chunk_counts(BATCH, comm.size)
    start = sum(counts[: comm.rank])
    return slice(start, start + counts[comm.rank])


@pytest.mark.mpi
@pytest.mark.parametrize("aggregation", ["mean", "projection"])
@pytest.mark.parametrize("per_layer", [False, True])
def test_data_parallel_estimate_equals_full_batch_estimate(comm, aggregation, per_layer):
    net, (x, y) = SmallNet(), full_batch()
    rows, k = my_rows(comm), 6
    options = dict(k=k, aggregation=aggregation, generator=123, per_layer=per_layer)
    reference = fwdgrad.forward_gradient(lambda p: net.loss(p, x, y), net.params, **options)
    local_weight = (rows.stop - rows.start) / BATCH
    with hc.traffic() as traffic:
        result = fwdgrad.forward_gradient_result(
            lambda p: net.loss(p, x[rows], y[rows]),
            net.params,
            comm=comm,
            local_weight=local_weight,
            **options,
        )
    torch.testing.assert_close(flat(result.grad), flat(reference), rtol=1e-10, atol=1e-12)
    # k float64 scalars per tangent group, not n; the projection keeps min(k, n_group) tangents
    # (b2 has 4 < k entries, so per layer it contributes 4 jvps, not 6).
    sizes = [p.numel() for p in net.params.values()] if per_layer else [net.n]
    kept = [min(k, size) if aggregation == "projection" else k for size in sizes]
    assert result.k == kept
    assert traffic.calls["allreduce"] == 1
    assert traffic.bytes_sent["allreduce"] == sum(kept) * 8 < net.n * 8
    assert traffic.total_calls == 1


@pytest.mark.mpi
@pytest.mark.parametrize("linear_path", [True, False])
def test_data_parallel_model_steps_like_single_process(comm, linear_path):
    x, y = full_batch(2)
    x, y = x.float(), y
    rows = my_rows(comm)

    def make():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 4))

    single, parallel = make(), make()
    fg_single = fwdgrad.ForwardGradientModel(
        single, k=4, aggregation="projection", seed=5, linear_path=linear_path
    )
    fg_parallel = fwdgrad.ForwardGradientModel(
        parallel, k=4, aggregation="projection", seed=5, comm=comm, linear_path=linear_path
    )
    opt_single = torch.optim.SGD(single.parameters(), lr=0.5)
    opt_parallel = torch.optim.SGD(parallel.parameters(), lr=0.5)
    loss = torch.nn.functional.cross_entropy
    n = sum(p.numel() for p in single.parameters())
    for _ in range(3):
        fg_single.fill_grad(lambda run: loss(run(x), y))
        with hc.traffic() as traffic:
            fg_parallel.fill_grad(
                lambda run: loss(run(x[rows]), y[rows]),
                local_weight=(rows.stop - rows.start) / BATCH,
            )
        assert traffic.bytes_sent["allreduce"] == 4 * 4 < n * 4
        assert fg_parallel.last_path == ("linear" if linear_path else "generic")
        opt_single.step()
        opt_parallel.step()
    for a, b in zip(single.parameters(), parallel.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.mpi
def test_every_rank_rejects_a_bad_weight_before_communicating(comm):
    net = SmallNet()
    with hc.traffic() as traffic, pytest.raises(ValueError, match="local_weight"):
        fwdgrad.forward_gradient(net.loss, net.params, comm=comm, local_weight=-0.5)
    assert traffic.total_calls == 0


@pytest.mark.mpi
@pytest.mark.parametrize("method", ["bp", "frog"])
def test_data_parallel_training_follows_the_single_process_run(comm, method):
    from fwdgrad.training import load_digits, train

    data = load_digits(seed=0)
    settings = dict(k=4, steps=6, batch_size=16, hidden=8, seed=2)
    alone = train(data, method, **settings)
    parallel = train(data, method, comm=comm, **settings)
    assert parallel.losses == pytest.approx(alone.losses, rel=1e-4, abs=1e-5)
    assert parallel.final_loss == pytest.approx(alone.final_loss, rel=1e-4)
    # per step: backprop allreduces n float32 gradient entries, forward gradients k jvps
    expected = alone.n_params * 4 if method == "bp" else 4 * 4
    assert parallel.bytes_per_step == expected
    assert alone.bytes_per_step == 0
