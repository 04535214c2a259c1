"""Reductions, scans and statistics against NumPy: every axis and all, keepdims, every split,
uneven shapes and shapes with fewer rows than ranks; numerically stable distributed moments."""

from __future__ import annotations

import numpy as np
import pytest

import heatlike as ht
from heatlike.testing import assert_equal_np, rng, splits_of

pytestmark = pytest.mark.mpi

SHAPES = [(7, 5), (2, 3, 4), (1, 4), (5,), (2,)]


def _axes(ndim):
    return [None, *range(ndim), *(((0, ndim - 1),) if ndim > 1 else ())]


REDUCTIONS = {
    "sum": (ht.sum, np.sum),
    "prod": (ht.prod, np.prod),
    "min": (ht.min, np.min),
    "max": (ht.max, np.max),
    "mean": (ht.mean, np.mean),
    "var": (ht.var, np.var),
    "std": (ht.std, np.std),
    "all": (lambda x, axis, keepdims: ht.all(x > 0.2, axis, keepdims=keepdims),
            lambda a, axis, keepdims: np.all(a > 0.2, axis, keepdims=keepdims)),
    "any": (lambda x, axis, keepdims: ht.any(x > 0.8, axis, keepdims=keepdims),
            lambda a, axis, keepdims: np.any(a > 0.8, axis, keepdims=keepdims)),
    "count_nonzero": (lambda x, axis, keepdims: ht.count_nonzero(x > 0.5, axis, keepdims=keepdims),
                      lambda a, axis, keepdims: np.count_nonzero(a > 0.5, axis, keepdims=keepdims)),
    "ptp": (ht.ptp, np.ptp),
    "nansum": (ht.nansum, np.nansum),
}  # fmt: skip


@pytest.mark.parametrize("shape", SHAPES)
def test_reductions_every_axis_and_split(comm, shape):
    data = rng(30).uniform(0.1, 1.0, shape)
    for split in splits_of(len(shape)):
        x = ht.array(data, split=split)
        for axis in _axes(len(shape)):
            for keepdims in (False, True):
                for ours, ref in REDUCTIONS.values():
                    got = ours(x, axis=axis, keepdims=keepdims)
                    want = ref(data, axis=axis, keepdims=keepdims)
                    assert_equal_np(got, want, rtol=1e-6, atol=1e-9)


def test_reduction_result_split_follows_heat(comm):
    x = ht.zeros((7, 5, 3), split=1)
    assert ht.sum(x, axis=0).split == 0
    assert ht.sum(x, axis=1).split is None
    assert ht.sum(x, axis=2).split == 1
    assert ht.sum(x, axis=0, keepdims=True).split == 1
    assert ht.sum(x).split is None


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy warns on ddof >= n (gives nan)
@pytest.mark.parametrize("shape", SHAPES)
def test_ddof_and_bessel(comm, shape):
    data = rng(31).normal(size=shape)
    for split in splits_of(len(shape)):
        x = ht.array(data, split=split)
        for axis in _axes(len(shape)):
            assert_equal_np(ht.var(x, axis, ddof=1), np.var(data, axis, ddof=1))
            assert_equal_np(ht.std(x, axis, ddof=1), np.std(data, axis, ddof=1))
        assert_equal_np(ht.var(x, bessel=True), np.var(data, ddof=1))


def test_mean_var_are_numerically_stable(comm):
    """A large offset would cancel catastrophically in sum(x^2) - n*mean^2 in float32; merged
    partial moments keep the variance exact to float32 precision."""
    g = rng(32)
    data = (1e4 + g.normal(0.0, 1.0, (1001, 3))).astype(np.float32)
    ref = data.astype(np.float64)
    for split in (None, 0):
        x = ht.array(data, split=split)
        assert x.dtype is ht.float32
        np.testing.assert_allclose(ht.var(x, axis=0).numpy(), ref.var(axis=0), rtol=1e-3)
        np.testing.assert_allclose(ht.mean(x, axis=0).numpy(), ref.mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(float(ht.std(x).item()), ref.std(), rtol=1e-3)


@pytest.mark.parametrize("shape", SHAPES)
def test_argmin_argmax(comm, shape):
    data = rng(33).integers(0, 4, shape).astype(np.float64)  # many ties: first index wins
    for split in splits_of(len(shape)):
        x = ht.array(data, split=split)
        for axis in [None, *range(len(shape))]:
            assert_equal_np(ht.argmax(x, axis), np.argmax(data, axis))
            assert_equal_np(ht.argmin(x, axis), np.argmin(data, axis))
            assert_equal_np(ht.argmax(x, axis, keepdims=True), np.argmax(data, axis, keepdims=True))


def test_nan_handling(comm):
    data = rng(34).random((7, 5))
    data[2, 3] = np.nan
    data[5, 0] = np.nan
    for split in splits_of(2):
        x = ht.array(data, split=split)
        for axis in (None, 0, 1):
            assert_equal_np(ht.max(x, axis), np.max(data, axis))
            assert_equal_np(ht.min(x, axis), np.min(data, axis))
            assert_equal_np(ht.nanmax(x, axis), np.nanmax(data, axis))
            assert_equal_np(ht.nanmin(x, axis), np.nanmin(data, axis))
            assert_equal_np(ht.nansum(x, axis), np.nansum(data, axis))
            assert_equal_np(ht.argmax(x, axis), np.argmax(data, axis))
            assert_equal_np(ht.argmin(x, axis), np.argmin(data, axis))


@pytest.mark.parametrize("shape", SHAPES)
def test_cumsum_cumprod(comm, shape):
    data = rng(35).uniform(0.5, 1.5, shape)
    ints = rng(36).integers(-3, 4, shape)
    for split in splits_of(len(shape)):
        x = ht.array(data, split=split)
        xi = ht.array(ints, split=split)
        for axis in [None, *range(len(shape))]:
            assert_equal_np(ht.cumsum(x, axis), np.cumsum(data, axis))
            assert_equal_np(ht.cumprod(x, axis), np.cumprod(data, axis))
            assert_equal_np(ht.cumsum(xi, axis), np.cumsum(ints, axis))
        assert ht.cumsum(x, 0).split == split


@pytest.mark.parametrize("shape", [(7, 5), (2, 3, 4), (1, 4), (9,)])
def test_median_percentile(comm, shape):
    data = rng(37).normal(size=shape)
    for split in splits_of(len(shape)):
        x = ht.array(data, split=split)
        for axis in [None, *range(len(shape))]:
            assert_equal_np(ht.median(x, axis), np.median(data, axis))
            assert_equal_np(ht.percentile(x, 30, axis), np.percentile(data, 30, axis))
            assert_equal_np(
                ht.percentile(x, [10, 50, 95], axis), np.percentile(data, [10, 50, 95], axis)
            )
            assert_equal_np(ht.median(x, axis, keepdims=True), np.median(data, axis, keepdims=True))
        for method in ("lower", "higher", "midpoint", "nearest"):
            assert_equal_np(
                ht.percentile(x, 40, interpolation=method),
                np.percentile(data, 40, method=method),
            )


def test_reduction_dtypes_follow_numpy(comm):
    i = ht.arange(6, split=0)
    assert ht.sum(i).dtype is ht.int64
    assert ht.prod(ht.ones(3, dtype=ht.int8)).dtype is ht.int64
    assert ht.sum(ht.ones(3, dtype=ht.bool, split=0)).dtype is ht.int64
    assert ht.sum(ht.ones(3, dtype=ht.float32)).dtype is ht.float32
    assert ht.mean(i).dtype is ht.float32
    assert ht.argmax(i).dtype is ht.int64
    assert ht.all(i).dtype is ht.bool
    assert ht.max(i).dtype is ht.int32


def test_integer_and_bool_reductions(comm):
    ints = rng(38).integers(-100, 100, (7, 5))
    for split in splits_of(2):
        x = ht.array(ints, split=split)
        for axis in (None, 0, 1):
            assert_equal_np(ht.sum(x, axis), np.sum(ints, axis))
            assert_equal_np(ht.max(x, axis), np.max(ints, axis))
            assert_equal_np(ht.min(x, axis), np.min(ints, axis))
            assert_equal_np(ht.mean(x, axis), np.mean(ints, axis))


def test_average_weights(comm):
    data = rng(39).random((7, 5))
    w = rng(40).random((7, 5))
    w1 = rng(41).random(7)
    for split in splits_of(2):
        x = ht.array(data, split=split)
        assert_equal_np(ht.average(x), np.average(data))
        assert_equal_np(ht.average(x, 0, ht.array(w, split=split)), np.average(data, 0, w))
        assert_equal_np(ht.average(x, 0, w1), np.average(data, 0, w1))


def test_methods_and_out(comm):
    data = rng(42).random((7, 5))
    x = ht.array(data, split=0)
    assert_equal_np(x.sum(0), data.sum(0))
    assert_equal_np(x.mean(1), data.mean(1))
    assert_equal_np(x.max(), data.max())
    out = ht.zeros(5, dtype=ht.float64)
    ht.sum(x, 0, out=out)
    assert_equal_np(out, data.sum(0))
    assert float(x.sum()) == pytest.approx(data.sum())


def test_bad_axis_raises(comm):
    x = ht.zeros((3, 4), split=0)
    with pytest.raises(ValueError):
        ht.sum(x, axis=2)
    with pytest.raises(TypeError):
        ht.sum(x, axis=1.0)
    with pytest.raises(ValueError):
        ht.sum(x, axis=(0, 0))
    with pytest.raises(ValueError):
        ht.var(x, ddof=-1)
    with pytest.raises(ValueError):
        ht.max(ht.zeros((0,), split=0))
    with pytest.raises(TypeError):
        ht.sum(np.zeros(3))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy warns on the mean of nothing
def test_empty_arrays(comm):
    data = np.zeros((0, 3))
    for split in splits_of(2):
        x = ht.array(data, split=split)
        for axis in (None, 0, 1):
            assert_equal_np(ht.sum(x, axis), np.sum(data, axis))
            assert_equal_np(ht.prod(x, axis), np.prod(data, axis))
            assert_equal_np(ht.mean(x, axis), np.mean(data, axis))
            assert_equal_np(ht.any(x, axis), np.any(data, axis))
            assert_equal_np(ht.all(x, axis), np.all(data, axis))
        assert_equal_np(ht.cumsum(x, 0), np.cumsum(data, 0))
