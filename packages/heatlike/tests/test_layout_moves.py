"""Moving rows between ranks point to point (resplit, reflow), the 1-d sample sort and the
one-pass reductions over several axes, against NumPy on uneven shapes, views and unbalanced
layouts."""

from __future__ import annotations

import numpy as np
import pytest

import heatlike as ht
from heatlike.testing import assert_equal_np, rng, splits_of

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("shape", [(7, 5, 3), (2, 5, 3), (5, 1, 4)])
def test_resplit_of_non_contiguous_views_matches_numpy(comm, shape):
    """Blocks that are views (a column slice of the caller's buffer, a transpose) travel
    through staged buffers; the result is still NumPy's array, balanced, on every pair of axes."""
    data = rng(120).random(shape)
    for src in range(len(shape)):
        view = ht.array(data, split=src, copy=False)
        transposed = ht.transpose(ht.array(np.ascontiguousarray(data.T), split=src))
        for x, ref in ((view, data), (transposed, data)):
            for dst in splits_of(len(shape)):
                y = ht.resplit(x, dst)
                assert y.split == dst and y.is_balanced()
                assert_equal_np(y, ref)


@pytest.mark.parametrize("piece_bytes", [8, 40, 1000])
@pytest.mark.parametrize("dtype", [np.float64, np.int16, np.complex64, np.bool_])
def test_resplit_in_pieces_matches_numpy(comm, monkeypatch, piece_bytes, dtype):
    """Messages larger than the piece size travel as row pieces through reused staging buffers
    (pieces are 2 MiB in use; tiny ones here so that every message is cut, into pieces of one
    row and more, with more pieces than the two in flight): every pair of axes, contiguous and
    view sources, unbalanced sources, 3-d arrays with an axis of extent 1 before the cut."""
    from heatlike import _redistribute

    monkeypatch.setattr(_redistribute, "_PIECE", piece_bytes)
    g = rng(124)
    for shape in [(13, 9), (9, 4, 11), (1, 10, 7), (5, 1, 12)]:
        data = (g.random(shape) * 100 - 50).astype(dtype)
        if dtype is np.complex64:
            data = data + 1j * data[::-1]
        for src in range(len(shape)):
            sources = [ht.array(data, split=src), ht.array(data, split=src, copy=False)]
            cut = [slice(None)] * len(shape)
            cut[src] = slice(comm.size - 1, None)
            sources.append(ht.array(data, split=src)[tuple(cut)])  # first ranks hold less
            for x in sources:
                ref = x.numpy()
                for dst in range(len(shape)):
                    y = ht.resplit(x, dst)
                    assert y.split == dst and y.is_balanced()
                    assert_equal_np(y, ref, check_dtype=True)


def test_resplit_of_unbalanced_source_matches_numpy(comm):
    """Rows sliced off the front leave the first ranks with fewer (or no) rows."""
    data = rng(121).integers(-50, 50, (11, 6, 2)).astype(np.int32)
    x = ht.array(data, split=0)[comm.size + 1 :]
    for dst in (1, 2):
        assert_equal_np(ht.resplit(x, dst), data[comm.size + 1 :], check_dtype=True)
    y = ht.array(data, split=2)[:, :, 1:]
    assert_equal_np(ht.resplit(y, 0), data[:, :, 1:], check_dtype=True)


def test_concatenate_of_sliced_pieces_keeps_row_order(comm):
    """Several pieces per rank, some empty, all reflowed to the balanced layout."""
    a = rng(122).random((10, 3))
    b = rng(123).random((2, 3))
    pieces = [ht.array(a, split=0)[3:], ht.array(b, split=0), ht.array(a, split=0)[::-2]]
    want = np.concatenate([a[3:], b, a[::-2]])
    assert_equal_np(ht.concatenate(pieces, 0), want)


@pytest.mark.parametrize("n", [1, 2, 23, 301])
def test_sort_1d_with_ties_infinities_and_nan_matches_numpy(comm, n):
    g = rng(124 + n)
    data = g.integers(0, 4, n).astype(np.float32)
    data[g.random(n) < 0.1] = np.nan
    data[g.random(n) < 0.1] = np.inf
    data[g.random(n) < 0.1] = -np.inf
    for split in (None, 0):
        x = ht.array(data, split=split)
        values, indices = ht.sort(x, axis=0)
        assert_equal_np(values, np.sort(data, kind="stable"))
        assert_equal_np(indices, np.argsort(data, kind="stable"))
        desc, _ = ht.sort(x, descending=True)
        assert_equal_np(desc, np.sort(data)[::-1])


@pytest.mark.parametrize("order", ["sorted", "reversed", "constant"])
def test_sort_1d_of_skewed_input_matches_numpy(comm, order):
    """Inputs where one value range holds (nearly) everything: the splitters send most rows to
    one rank and balancing must move them back."""
    data = {
        "sorted": np.arange(40, dtype=np.int64),
        "reversed": np.arange(40, dtype=np.int64)[::-1].copy(),
        "constant": np.full(40, 7, dtype=np.int64),
    }[order]
    values, indices = ht.sort(ht.array(data, split=0))
    assert values.is_balanced()
    assert_equal_np(values, np.sort(data, kind="stable"), check_dtype=True)
    assert_equal_np(indices, np.argsort(data, kind="stable"))


@pytest.mark.parametrize("where", ["first_row", "last_row"])
def test_max_min_propagate_a_nan_held_by_one_rank(comm, where):
    """The NaN sits on the first or the last rank only; infinities elsewhere must not be
    mistaken for it."""
    data = rng(125).random((7, 4)).astype(np.float32)
    data[1, 2], data[4, 0], data[5, 3] = np.inf, -np.inf, np.inf
    data[0 if where == "first_row" else -1, 1] = np.nan
    for split in splits_of(2):
        x = ht.array(data, split=split)
        for axis in (None, 0, 1, (0, 1)):
            for keepdims in (False, True):
                for ours, ref in ((ht.max, np.max), (ht.min, np.min)):
                    got = ours(x, axis=axis, keepdims=keepdims)
                    assert_equal_np(got, ref(data, axis=axis, keepdims=keepdims), check_dtype=True)


AXES_3D = [(0, 1), (0, 2), (1, 2), (0, 1, 2), (2, 0)]


@pytest.mark.parametrize("shape", [(4, 3, 5), (2, 1, 3)])
def test_reductions_over_axis_tuples_match_numpy(comm, shape):
    g = rng(126)
    floats = g.uniform(0.5, 1.5, shape)
    floats[(0,) * len(shape)] = np.nan
    ints = g.integers(-5, 6, shape).astype(np.int32)
    small = g.integers(-1, 3, shape).astype(np.int32)  # products of 60 stay inside int64
    for split in splits_of(3):
        xf, xi = ht.array(floats, split=split), ht.array(ints, split=split)
        xs = ht.array(small, split=split)
        xb = xi > 0
        for axis in AXES_3D:
            for kd in (False, True):
                pairs = [
                    (ht.sum(xi, axis, keepdims=kd), np.sum(ints, axis, keepdims=kd)),
                    (ht.prod(xs, axis, keepdims=kd), np.prod(small, axis, keepdims=kd)),
                    (ht.max(xi, axis, keepdims=kd), np.max(ints, axis, keepdims=kd)),
                    (ht.min(xf, axis, keepdims=kd), np.min(floats, axis, keepdims=kd)),
                    (ht.nansum(xf, axis, keepdims=kd), np.nansum(floats, axis, keepdims=kd)),
                    (ht.all(xb, axis, keepdims=kd), np.all(ints > 0, axis, keepdims=kd)),
                    (ht.any(xb, axis, keepdims=kd), np.any(ints > 0, axis, keepdims=kd)),
                    (ht.max(xb, axis, keepdims=kd), np.max(ints > 0, axis, keepdims=kd)),
                    (
                        ht.count_nonzero(xi, axis, keepdims=kd),
                        np.count_nonzero(ints, axis, keepdims=kd),
                    ),
                ]
                for got, want in pairs:
                    assert_equal_np(got, want)
                assert_equal_np(ht.sum(xi, axis), np.sum(ints, axis), check_dtype=True)
