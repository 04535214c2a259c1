"""Pairwise distances against SciPy and scikit-learn for every split pair, uneven shapes and more
ranks than rows; the ring exchange never brings all of Y (let alone X and Y) onto one rank."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist as scipy_cdist
from sklearn.metrics.pairwise import rbf_kernel

import heatlike as ht
import hpc_comm as hc
from heatlike.testing import assert_equal_np, largest_receive_within_share, rng, splits_of

pytestmark = pytest.mark.mpi

X = rng(1).normal(size=(7, 3))
Y = rng(2).normal(size=(5, 3)) + 0.5


def _expected_split(split_x, split_y):
    if split_x is not None:
        return 0
    return None if split_y is None else 1


@pytest.mark.parametrize("quadratic_expansion", [False, True])
def test_cdist_matches_scipy_for_every_split_pair(comm, quadratic_expansion):
    want = scipy_cdist(X, Y)
    for sx in splits_of(2):
        for sy in splits_of(2):
            got = ht.spatial.cdist(
                ht.array(X, split=sx), ht.array(Y, split=sy), quadratic_expansion
            )
            assert got.split == _expected_split(sx, sy), (sx, sy, got.split)
            assert_equal_np(got, want, rtol=1e-10, atol=1e-10)


def test_cdist_of_x_with_itself_matches_scipy(comm):
    for sx in splits_of(2):
        for expand in (False, True):
            got = ht.spatial.cdist(ht.array(X, split=sx), quadratic_expansion=expand)
            assert_equal_np(got, scipy_cdist(X, X), rtol=1e-10, atol=1e-7)


def test_manhattan_matches_scipy_cityblock(comm):
    for sx in splits_of(2):
        for sy in splits_of(2):
            got = ht.spatial.manhattan(ht.array(X, split=sx), ht.array(Y, split=sy))
            assert_equal_np(got, scipy_cdist(X, Y, "cityblock"), rtol=1e-12, atol=1e-12)
    assert_equal_np(ht.spatial.manhattan(ht.array(X, split=0)), scipy_cdist(X, X, "cityblock"))


@pytest.mark.parametrize("quadratic_expansion", [False, True])
def test_rbf_matches_sklearn_rbf_kernel(comm, quadratic_expansion):
    sigma = 1.7
    want = rbf_kernel(X, Y, gamma=1.0 / (2 * sigma**2))
    for sx in splits_of(2):
        for sy in (None, 0):
            x, y = ht.array(X, split=sx), ht.array(Y, split=sy)
            got = ht.spatial.rbf(x, y, sigma=sigma, quadratic_expansion=quadratic_expansion)
            assert_equal_np(got, want, rtol=1e-10, atol=1e-12)
    got = ht.spatial.rbf(ht.array(X, split=0), sigma=sigma)
    assert_equal_np(got, rbf_kernel(X, gamma=1.0 / (2 * sigma**2)), rtol=1e-10, atol=1e-12)


def test_more_ranks_than_rows(comm):
    a, b = X[:2], Y[:1]
    for sx in splits_of(2):
        for sy in splits_of(2):
            got = ht.spatial.cdist(ht.array(a, split=sx), ht.array(b, split=sy))
            assert_equal_np(got, scipy_cdist(a, b), rtol=1e-12)
    assert_equal_np(ht.spatial.cdist(ht.array(a, split=0)), scipy_cdist(a, a), atol=1e-12)


def test_result_dtype_follows_the_operands(comm):
    ints = rng(3).integers(-5, 5, (6, 2))
    got = ht.spatial.cdist(ht.array(ints, split=0), ht.array(ints.astype(np.float32), split=0))
    assert got.dtype is ht.float32
    assert_equal_np(got, scipy_cdist(ints, ints), rtol=1e-6, atol=1e-5)
    assert ht.spatial.cdist(ht.array(X.astype(np.float32)), ht.array(Y)).dtype is ht.float64


def test_quadratic_expansion_is_clamped_at_zero(comm):
    """||x||² + ||y||² - 2x·y rounds below zero for equal rows of large norm; the square root
    of such a value would be NaN."""
    rows = np.repeat(rng(4).normal(size=(1, 8)) * 1e4, 5, axis=0)
    got = ht.spatial.cdist(ht.array(rows, split=0), quadratic_expansion=True).numpy()
    assert not np.isnan(got).any()
    np.testing.assert_allclose(got, scipy_cdist(rows, rows), atol=1e-3)


def test_ring_exchange_never_holds_both_full_operands(comm):
    """No single receive brings a rank more than about one block of Y, and only point-to-point
    messages are used: no rank ever gathers Y (or X)."""
    a = rng(5).normal(size=(60, 16))
    b = rng(6).normal(size=(900, 16))  # large enough that a gathered Y would exceed the limit
    x, y = ht.array(a, split=0), ht.array(b, split=0)
    with hc.traffic() as t:
        got = ht.spatial.cdist(x, y, quadratic_expansion=True)
    assert set(t.calls) <= {"isend", "irecv"}, t.as_dict()
    own = y.counts[comm.rank] * 16 * 8
    assert t.total_bytes_received == b.nbytes - own, t.as_dict()
    largest_receive_within_share(lambda: ht.spatial.cdist(x, y), b.nbytes, comm.size, 1.2)
    assert_equal_np(got, scipy_cdist(a, b), rtol=1e-9, atol=1e-9)


def test_replicated_x_with_split_y_needs_no_communication(comm):
    x, y = ht.array(X), ht.array(Y, split=0)
    with hc.traffic() as t:
        got = ht.spatial.cdist(x, y)
    assert t.total_calls == 0, t.as_dict()
    assert got.split == 1
    assert_equal_np(got, scipy_cdist(X, Y), rtol=1e-12)


def test_bad_arguments_raise_value_error_naming_the_argument(comm):
    x = ht.array(X, split=0)
    with pytest.raises(ValueError, match="X must be 2-dimensional"):
        ht.spatial.cdist(ht.zeros((2, 3, 4), split=0))
    with pytest.raises(ValueError, match="Y must have as many columns"):
        ht.spatial.cdist(x, ht.zeros((4, 2), split=0))
    with pytest.raises(ValueError, match="sigma"):
        ht.spatial.rbf(x, sigma=0.0)
    with pytest.raises(ValueError, match="quadratic_expansion"):
        ht.spatial.cdist(x, quadratic_expansion="yes")
    with pytest.raises(TypeError, match="X must be a DNDarray"):
        ht.spatial.cdist("not an array")
