"""Collectives on every dtype and operator, checked against NumPy on every rank."""

import numpy as np
import pytest
import torch

import hpc_comm as hc
from hpc_comm.testing import (
    all_dtypes,
    numpy_reduce,
    ops_for,
    rank_tensor,
    reducible_dtypes,
    to_numpy,
)

pytestmark = pytest.mark.mpi

REDUCIBLE = reducible_dtypes()
ALL = all_dtypes()
CASES = [(d, op) for d in REDUCIBLE for op in ops_for(d)]


def case_id(case):
    dtype, op = case
    return f"{str(dtype).removeprefix('torch.')}-{op.name}"


def expected_reduction(size, shape, dtype, op, seed=0):
    return numpy_reduce([to_numpy(rank_tensor(r, shape, dtype, seed)) for r in range(size)], op)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_allreduce_matches_numpy_in_place(comm, case):
    dtype, op = case
    x = rank_tensor(comm.rank, (5, 3), dtype)
    ptr = x.data_ptr()
    with hc.traffic() as t:
        out = comm.allreduce(x, op)
    assert out is x and x.data_ptr() == ptr
    assert t.copies.get("allreduce", 0) == 0
    np.testing.assert_array_equal(to_numpy(x), expected_reduction(comm.size, (5, 3), dtype, op))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_iallreduce_matches_numpy(comm, case):
    dtype, op = case
    x = rank_tensor(comm.rank, (7,), dtype, seed=1)
    req = comm.iallreduce(x, op)
    assert req.wait() is x
    assert req.test() and req.done
    np.testing.assert_array_equal(to_numpy(x), expected_reduction(comm.size, (7,), dtype, op, 1))


@pytest.mark.parametrize("dtype", REDUCIBLE, ids=str)
@pytest.mark.parametrize("root", [0, -1], ids=["root0", "last"])
def test_reduce_lands_on_root_only(comm, dtype, root):
    root = root % comm.size
    x = rank_tensor(comm.rank, (4, 2), dtype, seed=2)
    before = x.clone()
    comm.reduce(x, hc.SUM, root=root)
    if comm.rank == root:
        expected = expected_reduction(comm.size, (4, 2), dtype, hc.SUM, 2)
        np.testing.assert_array_equal(to_numpy(x), expected)
    else:
        np.testing.assert_array_equal(to_numpy(x), to_numpy(before))
    y = rank_tensor(comm.rank, (3,), dtype, seed=3)
    comm.ireduce(y, hc.PROD, root=root).wait()
    if comm.rank == root:
        np.testing.assert_array_equal(
            to_numpy(y), expected_reduction(comm.size, (3,), dtype, hc.PROD, 3)
        )


@pytest.mark.parametrize("dtype", ALL, ids=str)
def test_bcast_every_dtype(comm, dtype):
    root = comm.size - 1
    x = rank_tensor(comm.rank, (6,), dtype, seed=4)
    comm.bcast(x, root=root)
    np.testing.assert_array_equal(to_numpy(x), to_numpy(rank_tensor(root, (6,), dtype, seed=4)))
    y = rank_tensor(comm.rank, (2, 2), dtype, seed=5)
    assert comm.ibcast(y, root=0).wait() is y
    np.testing.assert_array_equal(to_numpy(y), to_numpy(rank_tensor(0, (2, 2), dtype, seed=5)))


@pytest.mark.parametrize("dtype", ALL, ids=str)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_allgather_concatenates_along_dim(comm, dtype, dim):
    x = rank_tensor(comm.rank, (2, 3, 2), dtype, seed=6)
    out = comm.allgather(x, dim=dim)
    parts = [to_numpy(rank_tensor(r, (2, 3, 2), dtype, seed=6)) for r in range(comm.size)]
    np.testing.assert_array_equal(to_numpy(out), np.concatenate(parts, axis=dim))


def test_allgather_of_scalars_gives_a_vector(comm):
    out = comm.allgather(torch.tensor(float(comm.rank)))
    np.testing.assert_array_equal(out.numpy(), np.arange(comm.size, dtype=np.float32))


def ragged_rows(rank):
    return (rank * 2) % 3  # 0, 2, 1, 0, ...: includes an empty piece on rank 0


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.bool, torch.complex128, torch.bfloat16], ids=str
)
@pytest.mark.parametrize("dim", [0, 1])
def test_allgatherv_handles_ragged_and_empty_pieces(comm, dtype, dim):
    def piece(r):
        shape = [3, 3]
        shape[dim] = ragged_rows(r)
        return rank_tensor(r, shape, dtype, seed=7)

    out = comm.allgatherv(piece(comm.rank), dim=dim)
    expected = np.concatenate([to_numpy(piece(r)) for r in range(comm.size)], axis=dim)
    assert out.dtype == dtype
    np.testing.assert_array_equal(to_numpy(out), expected)


@pytest.mark.parametrize("dtype", ALL, ids=str)
@pytest.mark.parametrize("dim", [0, 1])
def test_gatherv_collects_on_root(comm, dim, dtype):
    root = comm.size // 2

    def piece(r):
        shape = [2, 2]
        shape[dim] = r + 1
        return rank_tensor(r, shape, dtype, seed=8)

    out = comm.gatherv(piece(comm.rank), dim=dim, root=root)
    if comm.rank == root:
        expected = np.concatenate([to_numpy(piece(r)) for r in range(comm.size)], axis=dim)
        np.testing.assert_array_equal(to_numpy(out), expected)
    else:
        assert out is None


@pytest.mark.parametrize("dtype", ALL, ids=str)
@pytest.mark.parametrize("dim", [0, 1])
def test_scatterv_default_counts_follow_chunk_layout(comm, dim, dtype):
    full = rank_tensor(99, (7, 5) if dim == 0 else (5, 7), dtype, seed=9)
    out = comm.scatterv(full if comm.rank == 0 else None, dim=dim)
    counts = hc.chunk_counts(7, comm.size)
    start = sum(counts[: comm.rank])
    expected = np.take(to_numpy(full), range(start, start + counts[comm.rank]), axis=dim)
    assert out.dtype == dtype
    np.testing.assert_array_equal(to_numpy(out), expected)


def test_scatterv_with_explicit_counts_including_zero(comm):
    counts = [0] + [2] * (comm.size - 1) if comm.size > 1 else [3]
    full = torch.arange(sum(counts) * 2, dtype=torch.int16).reshape(-1, 2)
    out = comm.scatterv(full if comm.rank == 0 else None, counts=counts, root=0)
    start = sum(counts[: comm.rank])
    np.testing.assert_array_equal(out.numpy(), full.numpy()[start : start + counts[comm.rank]])


def alltoall_counts(rank, size):
    return [(rank + 2 * peer) % 3 for peer in range(size)]


@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("dtype", ALL, ids=str)
def test_alltoallv_exchanges_pieces(comm, dim, dtype):
    def data(r):
        shape = [4, 4]
        shape[dim] = sum(alltoall_counts(r, comm.size))
        return rank_tensor(r, shape, dtype, seed=10)

    out = comm.alltoallv(data(comm.rank), alltoall_counts(comm.rank, comm.size), dim=dim)
    expected = []
    for src in range(comm.size):
        counts = alltoall_counts(src, comm.size)
        start = sum(counts[: comm.rank])
        expected.append(
            np.take(to_numpy(data(src)), range(start, start + counts[comm.rank]), axis=dim)
        )
    np.testing.assert_array_equal(to_numpy(out), np.concatenate(expected, axis=dim))


@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_reduce_scatter_gives_each_rank_its_reduced_piece(comm, dim, case):
    dtype, op = case
    shape = (5, 4) if dim == 0 else (4, 5)
    x = rank_tensor(comm.rank, shape, dtype, seed=11)
    out = comm.reduce_scatter(x, op, dim=dim)
    full = expected_reduction(comm.size, shape, dtype, op, 11)
    counts = hc.chunk_counts(5, comm.size)
    start = sum(counts[: comm.rank])
    np.testing.assert_array_equal(
        to_numpy(out), np.take(full, range(start, start + counts[comm.rank]), axis=dim)
    )


def test_reduce_scatter_with_explicit_counts(comm):
    counts = list(range(1, comm.size + 1))
    x = rank_tensor(comm.rank, (sum(counts), 2), torch.int64, seed=12)
    out = comm.reduce_scatter(x, hc.SUM, counts=counts)
    full = expected_reduction(comm.size, (sum(counts), 2), torch.int64, hc.SUM, 12)
    start = sum(counts[: comm.rank])
    np.testing.assert_array_equal(out.numpy(), full[start : start + counts[comm.rank]])


def test_non_contiguous_tensor_is_staged_through_exactly_one_copy(comm):
    base = rank_tensor(comm.rank, (4, 6), torch.float64, seed=13)
    view = base.t()  # non-contiguous view of base
    assert not view.is_contiguous()
    with hc.traffic() as t:
        comm.allreduce(view)
    assert t.copies["allreduce"] == 1
    expected = expected_reduction(comm.size, (4, 6), torch.float64, hc.SUM, 13)
    np.testing.assert_array_equal(base.numpy(), expected)  # written back through the view


def test_strided_slice_is_reduced_in_place(comm):
    base = torch.zeros(10, dtype=torch.int32)
    every_other = base[::2]
    every_other.fill_(comm.rank + 1)
    comm.allreduce(every_other, hc.SUM)
    total = comm.size * (comm.size + 1) // 2
    assert base[::2].tolist() == [total] * 5 and base[1::2].tolist() == [0] * 5


def test_barrier_and_empty_tensors(comm):
    comm.barrier()
    empty = torch.empty(0, 3)
    assert comm.allreduce(empty).shape == (0, 3)
    assert comm.allgather(empty).shape == (0, 3)
    assert comm.bcast(torch.empty(0)).numel() == 0


def test_traffic_counts_payload_and_calls(comm):
    x = torch.ones(256, dtype=torch.float32)
    with hc.traffic() as t:
        comm.allreduce(x)
        comm.allreduce(x)
        comm.allgather(x[:16])
    assert t.calls["allreduce"] == 2
    assert t.bytes_sent["allreduce"] == 2 * 1024
    assert t.bytes_received["allgather"] == 64 * comm.size
    assert t.total_calls == 3
    assert t.as_dict()["allgather"]["bytes_sent"] == 64
