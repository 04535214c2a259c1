"""Internals of the mpi backend: long messages cut into several calls, zero-copy hand-over."""

import numpy as np
import pytest
import torch

import hpc_comm as hc
from hpc_comm.testing import numpy_reduce, rank_tensor, to_numpy

pytestmark = pytest.mark.mpi_backend


@pytest.fixture
def short_calls(comm, monkeypatch):
    """MPI calls limited to 5 elements, so small tensors take the long-message paths."""
    from hpc_comm import _mpi

    assert comm.backend == "mpi"
    monkeypatch.setattr(_mpi, "MAX_COUNT", 5)
    return comm


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_long_allreduce_and_iallreduce_are_split_and_exact(short_calls, dtype):
    comm = short_calls
    x = rank_tensor(comm.rank, (23,), dtype)
    comm.allreduce(x)
    expected = numpy_reduce(
        [to_numpy(rank_tensor(r, (23,), dtype)) for r in range(comm.size)], hc.SUM
    )
    np.testing.assert_array_equal(to_numpy(x), expected)
    y = rank_tensor(comm.rank, (23,), dtype)
    comm.iallreduce(y).wait()
    np.testing.assert_array_equal(to_numpy(y), expected)


def test_long_bcast_send_recv_and_reduce(short_calls):
    comm = short_calls
    x = rank_tensor(comm.rank, (17,), torch.int64, seed=1)
    comm.bcast(x, root=comm.size - 1)
    assert torch.equal(x, rank_tensor(comm.size - 1, (17,), torch.int64, seed=1))
    right, left = (comm.rank + 1) % comm.size, (comm.rank - 1) % comm.size
    got = torch.empty(12, dtype=torch.int64)
    req = comm.isend(torch.arange(12) * (comm.rank + 1), right, tag=3)
    status = comm.recv(got, source=left, tag=3)
    req.wait()
    assert torch.equal(got, torch.arange(12) * (left + 1)) and status.nbytes == 96
    y = torch.full((11,), comm.rank + 1, dtype=torch.int32)
    comm.reduce(y, hc.PROD, root=0)
    if comm.rank == 0:
        assert y.tolist() == [int(np.prod(range(1, comm.size + 1)))] * 11


@pytest.mark.parametrize("dim", [0, 1])
def test_long_v_collectives_fall_back_to_point_to_point(short_calls, dim):
    comm = short_calls

    def piece(r):
        shape = [3, 3]
        shape[dim] = r + 2
        return rank_tensor(r, shape, torch.float64, seed=2)

    pieces = [piece(r).numpy() for r in range(comm.size)]
    out = comm.allgatherv(piece(comm.rank), dim=dim)
    np.testing.assert_array_equal(out.numpy(), np.concatenate(pieces, axis=dim))
    gathered = comm.gatherv(piece(comm.rank), dim=dim, root=0)
    if comm.rank == 0:
        np.testing.assert_array_equal(gathered.numpy(), np.concatenate(pieces, axis=dim))
    full = torch.arange(40.0).reshape(20, 2)
    mine = comm.scatterv(full if comm.rank == 0 else None)
    counts = hc.chunk_counts(20, comm.size)
    start = sum(counts[: comm.rank])
    assert torch.equal(mine, full[start : start + counts[comm.rank]])
    rs = comm.reduce_scatter(torch.ones(20, 2))
    assert torch.equal(rs, torch.full((counts[comm.rank], 2), float(comm.size)))


def test_contiguous_tensors_are_handed_over_by_address(comm):
    from hpc_comm import _mpi

    x = torch.arange(8, dtype=torch.float32)
    mem = _mpi._mem(x)
    assert mem.address == x.data_ptr() and mem.nbytes == 32
    with hc.traffic() as t:
        comm.allreduce(x)
        comm.bcast(x)
        comm.allgather(x)
    assert sum(t.copies.values()) == 0


def _refuse_general_path(monkeypatch):
    """Make the general (checked, accounted) bcast / allreduce / allgather raise when reached,
    so a call that succeeds took the mpi backend's fast path."""

    def refuse(*args, **kwargs):
        raise AssertionError("the general path was taken")

    for name in ("bcast", "allreduce", "allgather"):
        monkeypatch.setattr(hc.Communicator, name, refuse)


FAST_DTYPES = [
    torch.float32,
    torch.float64,
    torch.int32,
    torch.int64,
    torch.uint8,
    torch.complex128,
]


@pytest.mark.parametrize("dtype", FAST_DTYPES, ids=str)
def test_fast_paths_equal_numpy_for_every_native_dtype(comm, monkeypatch, dtype):
    assert comm.backend == "mpi"
    shape = (5, 3)  # a 2-d tensor: the fast path sends it flat
    parts = [to_numpy(rank_tensor(r, shape, dtype, seed=3)) for r in range(comm.size)]
    ops = [hc.SUM, hc.MAX, "sum"] if not dtype.is_complex else [hc.SUM, "sum"]
    for op in ops:  # the first use of a (op, dtype) pair takes the general path and is cached
        comm.allreduce(rank_tensor(comm.rank, shape, dtype), op)
    _refuse_general_path(monkeypatch)
    for op in ops:
        x = rank_tensor(comm.rank, shape, dtype, seed=3)
        assert comm.allreduce(x, op) is x
        np.testing.assert_array_equal(to_numpy(x), numpy_reduce(parts, hc.ReduceOp(op)))
    y = rank_tensor(comm.rank, shape, dtype, seed=3)
    assert comm.bcast(y, root=comm.size - 1) is y
    np.testing.assert_array_equal(to_numpy(y), parts[-1])
    out = torch.empty((5 * comm.size, 3), dtype=dtype)
    assert comm.allgather(rank_tensor(comm.rank, shape, dtype, seed=3), out=out) is out
    np.testing.assert_array_equal(to_numpy(out), np.concatenate(parts))


@pytest.mark.parametrize(
    "dtype",
    [torch.bool, torch.float16, torch.bfloat16, torch.int8, torch.complex64, torch.float64],
    ids=str,
)
def test_bcast_and_allgather_move_bytes_for_every_dtype_on_the_fast_path(comm, monkeypatch, dtype):
    """bcast and allgather only move memory, so their fast paths take every dtype the backend
    carries, the 16-bit floats and bool too (which the reductions send the general way)."""
    root = comm.size - 1
    parts = [to_numpy(rank_tensor(r, (7, 3), dtype, seed=5)) for r in range(comm.size)]
    comm.bcast(rank_tensor(comm.rank, (1,), dtype))  # the first call fills the fast tables
    _refuse_general_path(monkeypatch)
    y = rank_tensor(comm.rank, (7, 3), dtype, seed=5)
    out = torch.empty((7 * comm.size, 3), dtype=dtype)
    assert comm.allgather(y, out=out) is out
    np.testing.assert_array_equal(to_numpy(out), np.concatenate(parts))
    flat = torch.empty(21 * comm.size, dtype=dtype)
    assert comm.allgather(y.view(-1), out=flat) is flat
    np.testing.assert_array_equal(to_numpy(flat), np.concatenate(parts).reshape(-1))
    assert comm.bcast(y, root=root) is y
    np.testing.assert_array_equal(to_numpy(y), parts[root])
    with pytest.raises(AssertionError, match="general path"):  # shapes differ: declined
        comm.allgather(y, out=torch.empty((3 * comm.size, 7), dtype=dtype))
    sparse = torch.ones(3, dtype=torch.float32).to_sparse()
    with pytest.raises(AssertionError, match="general path"):  # not strided: declined
        comm.bcast(sparse)


def test_fast_path_is_declined_where_the_general_path_has_work(comm):
    """Checks, accounting, copies, half-precision reductions, empty and over-long messages, bad
    arguments and freed communicators all go through the general path, with its results and
    errors."""
    from hpc_comm import _mpi

    x = torch.ones(4, dtype=torch.float32)
    assert _mpi.MPICommunicator._fast_spec(comm, x) == (4, _mpi._mpi_type(torch.float32), 16)
    declined = [
        torch.ones(4, 2).t(),  # not contiguous
        torch.ones(4, dtype=torch.float16),  # reduced by a user-defined op
        torch.ones(4, dtype=torch.bool),
        torch.ones(0),
        torch.nn.Parameter(torch.ones(4)),  # a subclass is fine ...
    ]
    specs = [_mpi.MPICommunicator._fast_spec(comm, t) for t in declined]
    assert specs[:4] == [None] * 4 and specs[4] is not None  # ... and takes the fast path
    with hc.traffic() as t:
        comm.allreduce(x)
    assert t.calls["allreduce"] == 1 and t.bytes_sent["allreduce"] == 16
    np.testing.assert_array_equal(x.numpy(), np.full(4, comm.size, np.float32))
    with pytest.raises(ValueError, match="root"):
        comm.bcast(x, root=comm.size)
    with pytest.raises(TypeError, match="root must be an int"):
        comm.bcast(x, root=True)
    with pytest.raises(ValueError, match="out must be a contiguous"):
        comm.allgather(x, out=torch.empty(4 * comm.size + 1))
    y = torch.arange(6, dtype=torch.float32).reshape(2, 3).t()  # non-contiguous: copied back
    comm.allreduce(y)
    expected = np.arange(6, dtype=np.float32).reshape(2, 3).T * comm.size
    np.testing.assert_array_equal(y.numpy(), expected)


@pytest.mark.bigmem
def test_message_over_two_to_the_31_elements(comm):
    n = 2**31 + 3
    x = torch.zeros(n, dtype=torch.int8)
    x[0], x[-1], x[2**31 - 1] = 1, comm.rank + 1, 2
    comm.allreduce(x, hc.SUM)
    assert x[0].item() == comm.size
    assert x[-1].item() == comm.size * (comm.size + 1) // 2
    assert x[2**31 - 1].item() == 2 * comm.size
    assert int(x[1 : 2**31 - 1].count_nonzero()) == 0
    if comm.rank == 0:
        x[-2] = 5
    comm.bcast(x, root=0)
    assert x[-2].item() == 5
