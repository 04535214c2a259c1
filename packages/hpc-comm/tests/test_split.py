"""Sub-communicators: split, node-local and leader groups, deterministic freeing."""

import os

import pytest
import torch

import hpc_comm as hc

pytestmark = pytest.mark.mpi


def test_split_by_parity_with_reversed_key(comm):
    with comm.split(comm.rank % 2, key=-comm.rank) as sub:
        members = [r for r in range(comm.size) if r % 2 == comm.rank % 2]
        assert sub.size == len(members)
        assert sub.rank == sorted(members, reverse=True).index(comm.rank)
        x = torch.tensor([comm.rank], dtype=torch.int64)
        sub.allreduce(x)
        assert x.item() == sum(members)
    assert sub.freed


def test_split_with_none_color_returns_none(comm):
    sub = comm.split(0 if comm.rank == 0 else None)
    if comm.rank == 0:
        assert sub.size == 1
        sub.free()
    else:
        assert sub is None


def test_freed_communicator_refuses_work(comm):
    sub = comm.split(0)
    sub.free()
    sub.free()  # idempotent
    with pytest.raises(RuntimeError, match="freed"):
        sub.barrier()


def test_ten_thousand_splits_do_not_exhaust_contexts(comm):
    # MPICH has about 2**11 to 2**14 context ids per process; leaking one per split dies early.
    n = 10_000 if comm.backend in ("mpi", "self") else 50  # torch groups are heavy TCP objects
    before = list(comm._children)  # e.g. the cached node communicator of earlier tests
    for _ in range(n):
        with comm.split(0) as sub:
            pass
    assert sub.freed and comm._children == before


def test_children_are_freed_with_their_parent(comm):
    parent = comm.split(0)
    child = parent.split(comm.rank % 2)
    parent.free()
    assert parent.freed and child.freed


def expected_node_size(size):
    k = os.environ.get("HPC_COMM_RANKS_PER_NODE")
    return size if not k else None


def test_node_and_leaders_follow_emulated_nodes(comm):
    k = int(os.environ.get("HPC_COMM_RANKS_PER_NODE", "0")) or comm.size  # one real machine
    node = comm.node()
    first = comm.rank // k * k
    members = list(range(first, min(first + k, comm.size)))
    assert node.size == len(members) and node.rank == members.index(comm.rank)
    assert node is comm.node()  # cached
    leaders = comm.leaders()
    if comm.rank == first:
        assert leaders.size == (comm.size + k - 1) // k
        assert leaders.rank == comm.rank // k
    else:
        assert leaders is None
    x = torch.ones(1)
    node.allreduce(x)
    assert x.item() == len(members)


def test_self_comm_is_this_rank_alone_and_made_without_a_collective(comm):
    children = list(comm._children)
    alone = hc.self_comm()
    assert (alone.rank, alone.size) == (0, 1)
    x = torch.arange(4.0) + comm.rank
    alone.allreduce(x)
    torch.testing.assert_close(x, torch.arange(4.0) + comm.rank)  # nothing from other ranks
    assert comm._children == children  # nothing was split from the world
