"""Counter-based random numbers: the same values for a seed whatever the number of ranks and the
split; distributions checked against their closed-form moments."""

from __future__ import annotations

import numpy as np
import pytest

import heatlike as ht
from heatlike.testing import assert_equal_np

pytestmark = pytest.mark.mpi


def _replicated_reference(make):
    """The values of ``make(split=None)``: every rank computes the whole array itself, which is
    exactly what a single rank computes."""
    ht.random.seed(1234)
    return make(None).larray.numpy().copy()


GENERATORS = {
    "rand": lambda s: ht.random.rand(7, 5, split=s),
    "randn": lambda s: ht.random.randn(7, 5, split=s, dtype=ht.float64),
    "randint": lambda s: ht.random.randint(-3, 9, (7, 5), split=s),
    "normal": lambda s: ht.random.normal(2.0, 0.5, (7, 5), split=s),
    "uniform": lambda s: ht.random.uniform(-1.0, 3.0, (7, 5), split=s),
    "random": lambda s: ht.random.random((2, 3, 4), split=s),
    "randperm": lambda s: ht.random.randperm(11, split=None if s is None else 0),
}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_same_values_for_every_split_and_rank_count(comm, name):
    make = GENERATORS[name]
    expected = _replicated_reference(make)
    for split in (None, 0, 1):
        if name == "randperm" and split == 1:
            continue
        if name == "random" and split == 1:
            split = 2
        ht.random.seed(1234)
        assert_equal_np(make(split), expected, rtol=0, atol=0)


def test_seed_reproducible_and_counter_advances(comm):
    ht.random.seed(7)
    a = ht.random.rand(10, split=0).numpy()
    b = ht.random.rand(10, split=0).numpy()
    ht.random.seed(7)
    np.testing.assert_array_equal(ht.random.rand(10, split=0).numpy(), a)
    assert not np.array_equal(a, b)
    state = ht.random.get_state()
    c = ht.random.rand(4).numpy()
    ht.random.set_state(state)
    np.testing.assert_array_equal(ht.random.rand(4).numpy(), c)


def test_distributions_match_their_moments(comm):
    ht.random.seed(3)
    n = 20000
    u = ht.random.rand(n, split=0, dtype=ht.float64)
    assert u.dtype is ht.float64
    assert 0.0 <= float(ht.min(u)) and float(ht.max(u)) < 1.0
    assert abs(float(ht.mean(u)) - 0.5) < 0.01
    assert abs(float(ht.var(u)) - 1 / 12) < 0.005
    z = ht.random.randn(n, split=0, dtype=ht.float64)
    assert abs(float(ht.mean(z))) < 0.03
    assert abs(float(ht.std(z)) - 1.0) < 0.03
    r = ht.random.randint(0, 5, (n,), split=0)
    assert r.dtype is ht.int32
    counts = np.bincount(r.numpy(), minlength=5)
    assert counts.min() > 0.18 * n and counts.max() < 0.22 * n


def test_permutation_is_a_permutation(comm):
    ht.random.seed(5)
    p = ht.random.randperm(23, split=0)
    assert p.dtype is ht.int64
    np.testing.assert_array_equal(np.sort(p.numpy()), np.arange(23))
    data = np.arange(18.0).reshape(6, 3)
    x = ht.random.permutation(ht.array(data, split=0))
    got = x.numpy()
    np.testing.assert_array_equal(got[np.argsort(got[:, 0])], data)


def test_bad_arguments_raise(comm):
    with pytest.raises(ValueError):
        ht.random.randint(5, 2, (3,))
    with pytest.raises(ValueError):
        ht.random.normal(0.0, -1.0, (3,))
    with pytest.raises(ValueError):
        ht.random.rand(3, dtype=ht.int32)
    with pytest.raises(TypeError):
        ht.random.seed(1.5)
