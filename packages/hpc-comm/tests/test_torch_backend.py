"""The torch backend on its own: dtype rules of its reductions, the header-first message protocol
(probe, any-tag, eager sends, matching order), process-group naming and the backend choice.

Whatever backend the suite runs under, these tests run on a TorchCommunicator: the world
communicator itself under ``HPC_COMM_BACKEND=torch``, else one made here over the same ranks.
"""

import time

import numpy as np
import pytest
import torch
import torch.distributed as dist

import hpc_comm as hc
from hpc_comm import _launcher
from hpc_comm._ops import effective_op
from hpc_comm._torch import EAGER_LIMIT, TorchCommunicator, _codec, torch_backend
from hpc_comm.testing import numpy_reduce, ops_for

pytestmark = pytest.mark.mpi

DEADLINE = 30.0


@pytest.fixture(scope="module")
def tc(comm):
    """A TorchCommunicator over every rank of the job."""
    if comm.backend == "torch":
        return comm
    return TorchCommunicator.world()[0]


def ring(c):
    return (c.rank + 1) % c.size, (c.rank - 1) % c.size


def poll(req, what):
    deadline = time.monotonic() + DEADLINE
    while not req.test():
        assert time.monotonic() < deadline, f"{what} never completed"
        time.sleep(0.001)


# ------------------------------------------------------------------------ reductions
# Values at the edges of each type gloo cannot reduce directly: a signed view would order them
# wrongly (MIN/MAX) and their sums and products wrap.
EDGES = {
    np.int16: lambda r: [32767 - r, -32768 + r, 181 * (r + 1), -(r + 2), 0, 1 << (r % 15)],
    np.uint16: lambda r: [65535 - r, 32768 + r, r, 40000 * (r % 2), 255 * (r + 1), 1 << (r % 16)],
    np.uint32: lambda r: [2**32 - 1 - r, 2**31 + r, r, 3 * 10**9 * (r % 2), 65537 * (r + 1), 1],
    np.uint64: lambda r: [2**64 - 1 - r, 2**63 + r, r, 2**63 * (r % 2), 2**40 * (r + 3), 7],
}
EDGE_CASES = [
    (np_t, op) for np_t in EDGES for op in ops_for(torch.from_numpy(np.zeros(1, np_t)).dtype)
]


def edge_tensor(np_t, rank):
    return torch.from_numpy(np.array(EDGES[np_t](rank), dtype=np_t))


def edge_id(case):
    np_t, op = case
    return f"{np.dtype(np_t).name}-{op.name}"


@pytest.mark.parametrize("case", EDGE_CASES, ids=edge_id)
def test_reductions_of_types_gloo_lacks_wrap_and_order_like_numpy(tc, case):
    np_t, op = case
    inputs = [edge_tensor(np_t, r).numpy() for r in range(tc.size)]
    expected = numpy_reduce(inputs, op)
    x = edge_tensor(np_t, tc.rank)
    tc.allreduce(x, op)
    np.testing.assert_array_equal(x.numpy(), expected)
    y = edge_tensor(np_t, tc.rank)
    tc.iallreduce(y, op).wait()
    np.testing.assert_array_equal(y.numpy(), expected)
    root = tc.size - 1
    z = edge_tensor(np_t, tc.rank)
    tc.reduce(z, op, root=root)
    np.testing.assert_array_equal(z.numpy(), expected if tc.rank == root else inputs[tc.rank])
    counts = hc.chunk_counts(6, tc.size)
    start = sum(counts[: tc.rank])
    piece = tc.reduce_scatter(edge_tensor(np_t, tc.rank), op)
    np.testing.assert_array_equal(piece.numpy(), expected[start : start + counts[tc.rank]])


@pytest.mark.parametrize(
    "dtype",
    [torch.bool, torch.int16, torch.uint16, torch.uint32, torch.uint64, torch.complex64],
    ids=str,
)
def test_codecs_round_trip_and_use_types_gloo_reduces(dtype):
    gloo_lacks = {torch.int16, torch.uint16, torch.uint32, torch.uint64}
    x = torch.arange(6).to(dtype) if dtype is not torch.bool else torch.arange(6) % 2 == 0
    for op in hc.ReduceOp:
        try:
            eff = effective_op(op, dtype)
        except TypeError:
            continue
        codec = _codec(dtype, eff)
        wire = codec.encode(x)
        assert wire.dtype not in gloo_lacks
        assert not wire.dtype.is_complex or eff is not hc.SUM  # complex SUM travels as reals
        if codec.in_place:
            assert wire.data_ptr() == x.data_ptr()  # no copy
        out = torch.empty_like(x)
        codec.decode(wire, out)
        assert torch.equal(out, x)


def test_complex_product_falls_back_to_a_local_reduction_in_rank_order(tc):
    values = [complex(r + 1, (-1) ** r) for r in range(tc.size)]
    x = torch.full((3,), values[tc.rank], dtype=torch.complex128)
    tc.allreduce(x, hc.PROD)
    expected = np.prod(np.array(values, dtype=np.complex128))
    np.testing.assert_array_equal(x.numpy(), np.full(3, expected))


# ------------------------------------------------------------------------ messages
def test_messages_of_one_sender_can_be_received_in_any_tag_order(tc):
    right, left = ring(tc)
    reqs = [tc.isend(torch.full((k + 1,), 10 * tc.rank + k), right, tag=k) for k in range(3)]
    status = tc.probe(source=left)  # any tag: the first that arrived
    assert status.source == left and status.tag in (0, 1, 2)
    assert status.nbytes == 8 * (status.tag + 1)
    for k in (2, 0, 1):
        got = torch.empty(k + 1, dtype=torch.int64)
        st = tc.recv(got, source=left, tag=k)
        assert (st.source, st.tag, st.nbytes) == (left, k, 8 * (k + 1))
        assert got.tolist() == [10 * left + k] * (k + 1)
    for r in reqs:
        r.wait()
    tc.barrier()


def test_posted_receives_match_in_posting_order_and_complete_by_polling(tc):
    right, left = ring(tc)
    first, second = torch.zeros(2), torch.zeros(2)
    r1 = tc.irecv(first, source=left)
    r2 = tc.irecv(second, source=left, tag=hc.ANY_TAG)
    sends = [tc.isend(torch.full((2,), float(tc.rank + k)), right, tag=7 + k) for k in range(2)]
    poll(r2, "irecv")
    poll(r1, "irecv")
    for s in sends:
        poll(s, "isend")
    assert first.tolist() == [float(left)] * 2 and second.tolist() == [float(left + 1)] * 2
    tc.barrier()


def test_receive_buffer_may_be_larger_but_not_smaller(tc):
    right, left = ring(tc)
    req = tc.isend(torch.arange(4, dtype=torch.int32), right, tag=3)
    req2 = tc.isend(torch.arange(6, dtype=torch.int32), right, tag=4)
    big = torch.full((10,), -1, dtype=torch.int32)
    st = tc.recv(big, source=left, tag=3)
    assert st.nbytes == 16 and big.tolist() == [0, 1, 2, 3] + [-1] * 6
    with pytest.raises(ValueError, match="does not fit"):
        tc.recv(torch.empty(2, dtype=torch.int32), source=left, tag=4)
    req.wait()
    req2.wait()
    again = tc.isend(torch.ones(1), right, tag=5)  # the channel still works after the error
    got = torch.zeros(1)
    tc.recv(got, source=left, tag=5)
    again.wait()
    assert got.item() == 1.0
    tc.barrier()


def test_small_blocking_sends_are_eager_so_a_ring_of_sends_does_not_deadlock(tc):
    right, left = ring(tc)
    n = EAGER_LIMIT // 8
    out = torch.full((n,), tc.rank, dtype=torch.int64)
    tc.send(out, right, tag=11)  # every rank sends before any receives
    out.fill_(-1)  # the send buffer is free at once
    got = torch.empty(n, dtype=torch.int64)
    tc.recv(got, source=left, tag=11)
    assert int(got.min()) == int(got.max()) == left
    tc.send_obj({"from": tc.rank}, right, tag=12)
    assert tc.recv_obj(source=left, tag=12) == {"from": left}
    tc.barrier()


def test_large_isend_completes_once_received(tc):
    right, left = ring(tc)
    n = 4 * EAGER_LIMIT // 4
    req = tc.isend(torch.full((n,), float(tc.rank)), right, tag=13)
    got = torch.empty(n)
    tc.recv(got, source=left, tag=13)
    poll(req, "large isend")
    assert got[0].item() == got[-1].item() == float(left)
    tc.barrier()


def test_messages_to_oneself_and_what_would_wait_forever(tc):
    tc.send(torch.arange(3), dest=tc.rank, tag=21)
    tc.isend_obj("me", dest=tc.rank, tag=22).wait()
    assert tc.probe(source=tc.rank, tag=21).nbytes == 24
    status = tc.iprobe(source=tc.rank)
    assert (status.source, status.tag) == (tc.rank, 22)
    got = torch.empty(3, dtype=torch.int64)
    assert tc.recv(got, source=tc.rank).source == tc.rank and got.tolist() == [0, 1, 2]
    assert tc.recv_obj(source=tc.rank) == "me"
    with pytest.raises(RuntimeError, match="wait forever"):
        tc.recv(got, source=tc.rank)
    with pytest.raises(RuntimeError, match="wait forever"):
        tc.recv_obj(source=tc.rank, tag=22)
    assert tc.iprobe(source=tc.rank) is None


def test_tensor_and_object_messages_are_separate_channels(tc):
    right, left = ring(tc)
    t = tc.isend(torch.tensor([tc.rank]), right, tag=30)
    o = tc.isend_obj(("obj", tc.rank), right, tag=30)
    assert tc.recv_obj(source=left, tag=30) == ("obj", left)  # the tensor went first
    got = torch.empty(1, dtype=torch.int64)
    assert tc.recv(got, source=left, tag=hc.ANY_TAG).tag == 30 and got.item() == left
    t.wait()
    o.wait()
    tc.barrier()


# ------------------------------------------------------------------------ groups
def test_groups_are_named_so_uneven_and_repeated_splits_agree(tc):
    # dist.new_group(use_local_synchronization=True) hangs on both of these.
    lone = tc.split(0 if tc.rank == 0 else None)
    for _ in range(3):
        with tc.split(0) as everyone:
            x = torch.ones(1)
            everyone.allreduce(x)
            assert x.item() == tc.size
    if lone is not None:
        assert lone.size == 1
        lone.free()


def test_handle_is_a_registered_group_in_key_order(tc):
    with tc.split(0, key=-tc.rank) as sub:
        world = dist.get_rank()
        assert dist.get_group_rank(sub.handle, world) == sub.rank == tc.size - 1 - tc.rank
        x = torch.ones(2)
        dist.all_reduce(x, group=sub.handle)
        assert x.tolist() == [tc.size] * 2
        right, left = ring(sub)
        req = sub.isend(torch.tensor([sub.rank]), right, tag=1)
        got = torch.empty(1, dtype=torch.int64)
        assert sub.recv(got).source == left and got.item() == left  # ranks of sub, any source
        req.wait()


# ------------------------------------------------------------------------ configuration
def test_library_choice_follows_environment():
    assert torch_backend({}) == "gloo"
    assert torch_backend({"HPC_COMM_TORCH_BACKEND": " NCCL "}) == "nccl"
    assert torch_backend({"HPC_COMM_TORCH_BACKEND": "gloo", "LOCAL_RANK": "0"}) == "gloo"
    expected = "nccl" if torch.cuda.is_available() else "gloo"
    assert torch_backend({"LOCAL_RANK": "0"}) == expected
    with pytest.raises(ValueError, match="HPC_COMM_TORCH_BACKEND must be gloo or nccl"):
        torch_backend({"HPC_COMM_TORCH_BACKEND": "mpi"})


def test_emulated_ranks_per_node_is_parsed_for_every_backend():
    assert _launcher.ranks_per_node({}) is None
    assert _launcher.ranks_per_node({"HPC_COMM_RANKS_PER_NODE": "2"}) == 2
    with pytest.raises(ValueError, match="positive integer"):
        _launcher.ranks_per_node({"HPC_COMM_RANKS_PER_NODE": "0"})
