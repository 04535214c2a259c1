"""Flat buffers: packing round trips, and averaged gradients and values against NumPy."""

import numpy as np
import pytest
import torch

from hpc_comm.flat import (
    average_gradients,
    average_values,
    broadcast_values,
    flatten,
    flatten_grads,
    unflatten_grads_into,
    unflatten_into,
)

SHAPES = [(3, 4), (5,), (2, 1, 3), ()]


def tensors_for(rank: int, dtype=torch.float64) -> list[torch.Tensor]:
    """Different values on every rank, known to every rank (for the NumPy reference)."""
    gen = torch.Generator().manual_seed(100 + rank)
    return [torch.randn(s, generator=gen, dtype=dtype) for s in SHAPES]


def test_flatten_round_trip_and_cast():
    ts = tensors_for(0)
    flat = flatten(ts)
    assert flat.shape == (sum(t.numel() for t in ts),)
    np.testing.assert_array_equal(flat.numpy(), np.concatenate([t.numpy().ravel() for t in ts]))
    out = [torch.zeros_like(t) for t in ts]
    unflatten_into(flat, out)
    for a, b in zip(ts, out):
        assert torch.equal(a, b)
    assert flatten(ts, dtype=torch.bfloat16).dtype == torch.bfloat16
    assert flatten([]).numel() == 0


def test_unflatten_checks_the_size():
    ts = tensors_for(0)
    with pytest.raises(ValueError, match="flat"):
        unflatten_into(torch.zeros(3), ts)
    with pytest.raises(ValueError, match="flat"):
        unflatten_grads_into(torch.zeros(2, 10), ts)


def test_missing_gradients_count_as_zeros_and_are_created():
    params = [torch.nn.Parameter(t) for t in tensors_for(0)]
    params[0].grad = torch.ones_like(params[0])
    flat = flatten_grads(params)
    assert flat[: params[0].numel()].eq(1).all() and flat[params[0].numel() :].eq(0).all()
    unflatten_grads_into(flat * 2, params)
    assert all(p.grad is not None for p in params)
    assert params[0].grad.eq(2).all() and params[1].grad.eq(0).all()


def test_average_needs_a_communicator():
    with pytest.raises(TypeError, match="comm"):
        average_gradients([torch.zeros(1, requires_grad=True)], "world")
    with pytest.raises(TypeError, match="comm"):
        average_values([torch.zeros(1)], None)


@pytest.mark.mpi
def test_average_gradients_equals_numpy_mean(comm):
    params = [torch.nn.Parameter(torch.zeros(s, dtype=torch.float64)) for s in SHAPES]
    for p, g in zip(params, tensors_for(comm.rank)):
        p.grad = g.clone()
    params[1].grad = None if comm.rank == 0 else params[1].grad  # missing on rank 0 only
    average_gradients(params, comm)
    for i, p in enumerate(params):
        per_rank = [tensors_for(r)[i].numpy() for r in range(comm.size)]
        if i == 1:
            per_rank[0] = np.zeros_like(per_rank[0])
        if comm.size == 1 and i == 1:
            assert p.grad is None  # one rank, no weight: nothing is touched
            continue
        np.testing.assert_allclose(p.grad.numpy(), np.mean(per_rank, axis=0), rtol=1e-12)


@pytest.mark.mpi
def test_weighted_gradients_are_a_weighted_sum(comm):
    weights = np.arange(1, comm.size + 1, dtype=np.float64)
    weights /= weights.sum()
    params = [torch.nn.Parameter(torch.zeros(s, dtype=torch.float64)) for s in SHAPES]
    for p, g in zip(params, tensors_for(comm.rank)):
        p.grad = g.clone()
    average_gradients(params, comm, weight=weights[comm.rank])
    for i, p in enumerate(params):
        expected = sum(w * tensors_for(r)[i].numpy() for r, w in enumerate(weights))
        np.testing.assert_allclose(p.grad.numpy(), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.mpi
def test_average_values_equals_numpy_mean_in_float32(comm):
    values = tensors_for(comm.rank, dtype=torch.float32)
    average_values(values, comm)
    for i, v in enumerate(values):
        expected = np.mean([tensors_for(r, torch.float32)[i].numpy() for r in range(comm.size)], 0)
        np.testing.assert_allclose(v.numpy(), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.mpi
def test_broadcast_values_copies_the_roots(comm):
    root = comm.size - 1
    values = [torch.nn.Parameter(t) for t in tensors_for(comm.rank)]
    broadcast_values(values, comm, root=root)
    for v, expected in zip(values, tensors_for(root)):
        assert torch.equal(v.detach(), expected)
