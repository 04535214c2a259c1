"""Sub-communicators are freed deterministically: 10,000 splits in one process do not exhaust
MPI's communicator contexts (about 2,000 in MPICH and Open MPI)."""

from __future__ import annotations

import numpy as np
import pytest

import heatlike as ht
from heatlike.testing import assert_equal_np

pytestmark = pytest.mark.mpi


def test_ten_thousand_splits_do_not_leak(comm):
    world = ht.MPI_WORLD
    color = world.rank % 2
    members = [r for r in range(world.size) if r % 2 == color]
    live_before = len(world.handle._children)
    for i in range(10_000):
        with world.Split(color, world.rank) as sub:
            if i % 2500 == 0:  # the sub-communicator works: an array lives and reduces on it
                x = ht.arange(5, split=0, comm=sub)
                assert_equal_np(x * 2, np.arange(5) * 2)
                assert sub.size == len(members)
                assert int(ht.sum(x).item()) == 10
    assert len(world.handle._children) == live_before  # every sub-communicator was freed


def test_split_then_free_by_hand(comm):
    sub = ht.MPI_WORLD.Split(0, ht.MPI_WORLD.rank)
    assert sub.size == ht.MPI_WORLD.size and sub.rank == ht.MPI_WORLD.rank
    sub.Free()
    assert sub.handle.freed
