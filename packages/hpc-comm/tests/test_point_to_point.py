"""Tensor and object messages between ranks: rings, wildcards, probes, statuses."""

import time

import numpy as np
import pytest
import torch

import hpc_comm as hc
from hpc_comm.testing import all_dtypes, rank_tensor, to_numpy

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("dtype", all_dtypes(), ids=str)
def test_ring_of_blocking_sends(comm, dtype):
    right, left = (comm.rank + 1) % comm.size, (comm.rank - 1) % comm.size
    out = rank_tensor(comm.rank, (3, 4), dtype, seed=20)
    got = torch.empty((3, 4), dtype=dtype)
    req = comm.isend(out, right, tag=5)
    status = comm.recv(got, source=left, tag=5)
    req.wait()
    assert (status.source, status.tag, status.nbytes) == (left, 5, got.numel() * got.element_size())
    np.testing.assert_array_equal(to_numpy(got), to_numpy(rank_tensor(left, (3, 4), dtype, 20)))


def test_irecv_from_any_source_into_non_contiguous_buffer(comm):
    right, left = (comm.rank + 1) % comm.size, (comm.rank - 1) % comm.size
    buf = torch.zeros(4, 3).t()
    recv = comm.irecv(buf)
    send = comm.isend(torch.full((3, 4), float(comm.rank)), right, tag=1)
    assert recv.wait() is buf
    send.wait()
    assert torch.equal(buf, torch.full((3, 4), float(left)))


def test_probe_reports_size_before_receive(comm):
    right, left = (comm.rank + 1) % comm.size, (comm.rank - 1) % comm.size
    n = 3 + comm.rank
    req = comm.isend(torch.arange(n, dtype=torch.int64), right, tag=9)
    status = comm.probe(source=left, tag=9)
    assert status.source == left and status.tag == 9
    got = torch.empty(status.nbytes // 8, dtype=torch.int64)
    comm.recv(got, source=left, tag=9)
    req.wait()
    assert got.tolist() == list(range(3 + left))


def test_object_collectives(comm):
    assert comm.bcast_obj({"lr": 0.1} if comm.rank == 0 else None) == {"lr": 0.1}
    assert comm.allgather_obj(("rank", comm.rank)) == [("rank", r) for r in range(comm.size)]
    gathered = comm.gather_obj(comm.rank**2, root=comm.size - 1)
    if comm.rank == comm.size - 1:
        assert gathered == [r**2 for r in range(comm.size)]
    else:
        assert gathered is None


def test_isend_obj_iprobe_recv_obj(comm):
    right, left = (comm.rank + 1) % comm.size, (comm.rank - 1) % comm.size
    assert comm.iprobe(tag=77) is None  # nothing was sent with this tag
    payload = {"from": comm.rank, "genome": list(range(comm.rank + 1))}
    req = comm.isend_obj(payload, right, tag=42)
    deadline = time.monotonic() + 30
    status = comm.iprobe(tag=42)
    while status is None:
        assert time.monotonic() < deadline, "no message arrived"
        time.sleep(0.001)
        status = comm.iprobe(tag=42)
    assert status.source == left and status.tag == 42 and status.nbytes > 0
    statuses = []
    got = comm.recv_obj(source=status.source, tag=42, status=statuses)
    req.wait()
    assert got == {"from": left, "genome": list(range(left + 1))}
    assert statuses[0].source == left
    comm.barrier()


def test_send_obj_with_any_tag(comm):
    right = (comm.rank + 1) % comm.size
    req = comm.isend_obj(comm.rank, right, tag=3 + comm.rank)
    statuses = []
    got = comm.recv_obj(status=statuses)
    req.wait()
    left = (comm.rank - 1) % comm.size
    assert got == left and statuses[0].tag == 3 + left
    comm.barrier()


def test_wildcards_are_the_documented_values():
    assert hc.ANY_SOURCE == -1 and hc.ANY_TAG == -1


# Non-contiguous views as heatlike's resplit sends and receives them (blocks of columns, stepped
# rows, one column, an inner block of a 3-d array) and a transpose.
STRIDED_VIEWS = {
    "column block": lambda t: t.narrow(1, 1, 3),
    "every other row": lambda t: t[::2],
    "one column": lambda t: t[:, 2],
    "3-d inner block": lambda t: t.reshape(3, 2, 6).narrow(2, 2, 3),
    "transpose": lambda t: t.t(),
}


@pytest.mark.parametrize("dtype", all_dtypes(), ids=str)
@pytest.mark.parametrize("view", list(STRIDED_VIEWS), ids=str)
def test_strided_views_travel_both_ways(comm, dtype, view):
    """A strided view sent around a ring arrives into a strided view of a fresh buffer and
    nowhere else, and the sent view is unchanged: irecv + isend, recv after isend, send after
    irecv."""
    right, left = (comm.rank + 1) % comm.size, (comm.rank - 1) % comm.size
    take = STRIDED_VIEWS[view]
    source = rank_tensor(comm.rank, (6, 6), dtype, seed=31)
    expect = to_numpy(take(rank_tensor(left, (6, 6), dtype, seed=31)))
    inside = take(torch.ones((6, 6), dtype=torch.bool).reshape(6, 6)).clone()
    for form in ("irecv+isend", "isend+recv", "irecv+send"):
        target = torch.zeros((6, 6), dtype=dtype)
        window = take(target)
        if form == "irecv+isend":
            recv = comm.irecv(window, source=left, tag=12)
            send = comm.isend(take(source), right, tag=12)
            assert recv.wait() is window
            send.wait()
        elif form == "isend+recv":
            send = comm.isend(take(source), right, tag=12)
            status = comm.recv(window, source=left, tag=12)
            send.wait()
            assert status.nbytes == window.numel() * window.element_size()
        else:
            recv = comm.irecv(window, source=left, tag=12)
            comm.send(take(source), right, tag=12)
            recv.wait()
        np.testing.assert_array_equal(to_numpy(window), expect, err_msg=form)
        written = torch.zeros((6, 6), dtype=torch.bool)
        take(written).copy_(inside)
        untouched = ~to_numpy(written)
        np.testing.assert_array_equal(
            to_numpy(target)[untouched], to_numpy(torch.zeros((6, 6), dtype=dtype))[untouched]
        )
    np.testing.assert_array_equal(
        to_numpy(source), to_numpy(rank_tensor(comm.rank, (6, 6), dtype, seed=31))
    )
