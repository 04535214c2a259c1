"""No operation gathers a whole split array onto one rank: the bytes any rank receives stay near
its share of the data (hpc-comm's traffic counters)."""

from __future__ import annotations

import numpy as np
import pytest

import heatlike as ht
from heatlike.testing import largest_receive_within_share, received_within_share, rng

pytestmark = pytest.mark.mpi

DATA = rng(100).random((300, 40))

OPERATIONS = {
    "resplit": lambda x: ht.resplit(x, 1),
    "add_other_split": lambda x: x + ht.array(DATA, split=1),
    "sum_axis0": lambda x: ht.sum(x, 0),
    "mean_var_axis0": lambda x: (ht.mean(x, 0), ht.var(x, 0)),
    "argmax_axis0": lambda x: ht.argmax(x, 0),
    "cumsum_axis0": lambda x: ht.cumsum(x, 0),
    "median_axis0": lambda x: ht.median(x, 0),
    "percentile_all": lambda x: ht.percentile(x, 30),
    "slice_step": lambda x: x[::-3],
    "index_array": lambda x: x[np.arange(0, 300, 7)],
    "mask": lambda x: x[x > 0.5],
    "setitem_slice": lambda x: x.__setitem__(slice(10, 200), 0.0),
    "reshape": lambda x: ht.reshape(x, (600, 20)),
    "flatten": lambda x: ht.flatten(x),
    "transpose": lambda x: ht.transpose(x),
    "concatenate": lambda x: ht.concatenate([x, x]),
    "flip": lambda x: ht.flip(x, 0),
    "roll": lambda x: ht.roll(x, 17, 0),
    "pad": lambda x: ht.pad(x, ((3, 4), (0, 0))),
    "sort_axis0": lambda x: ht.sort(x, 0),
    "unique": lambda x: ht.unique(ht.round(x * 10)),
    "balance": lambda x: ht.balance(x[:250]),
    "repr": lambda x: repr(x),
}


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_operation_does_not_gather(comm, name):
    x = ht.array(DATA, split=0)
    total = DATA.nbytes * (2 if name == "concatenate" else 1)  # the result's size
    # no single call brings a rank more than about its share (a gather would bring all of it)
    largest_receive_within_share(lambda: OPERATIONS[name](x), total, comm.size)


@pytest.mark.parametrize("name", ["resplit", "add_other_split", "slice_step", "reshape", "flip"])
def test_one_pass_operations_receive_one_share(comm, name):
    x = ht.array(DATA, split=0)
    received_within_share(lambda: OPERATIONS[name](x), DATA.nbytes, comm.size)


def test_a_gather_is_detected(comm):
    """The check above can fail: replicating the array brings every rank the whole of it."""
    x = ht.array(DATA, split=0)

    def check():
        largest_receive_within_share(lambda: ht.resplit(x, None), DATA.nbytes, comm.size)

    if comm.size == 1:
        check()  # one rank holds everything already: nothing moves, so nothing is flagged
        return
    with pytest.raises(AssertionError, match="in one call"):
        check()
