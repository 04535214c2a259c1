"""Indexing against NumPy: basic slicing on every axis (steps, negatives), ints, None/Ellipsis,
integer arrays, boolean masks, and assignment with broadcasting, for every split."""

from __future__ import annotations

import numpy as np
import pytest

import heatlike as ht
from heatlike.testing import assert_equal_np, rng, splits_of

pytestmark = pytest.mark.mpi

BASIC_KEYS = [
    (slice(None),),
    (slice(1, 6),),
    (slice(None, None, 2),),
    (slice(None, None, -1),),
    (slice(-2, None),),
    (slice(5, 0, -2),),
    (slice(6, 2),),
    (2,),
    (-1,),
    (slice(None), 3),
    (slice(None), slice(1, None, 2)),
    (slice(None), slice(None, None, -2)),
    (Ellipsis, 1),
    (None, slice(2, 5)),
    (slice(1, 4), None, -2),
    (3, 4),
    (-7, 0),
]


@pytest.mark.parametrize("key", BASIC_KEYS, ids=str)
def test_basic_getitem(comm, key):
    data = rng(50).random((7, 5))
    for split in splits_of(2):
        x = ht.array(data, split=split)
        assert_equal_np(x[key], data[key])


def test_basic_getitem_3d(comm):
    data = rng(51).random((2, 3, 4))
    keys = [
        (1,),
        (slice(None), 2),
        (slice(None), slice(None), -1),
        (Ellipsis, slice(1, 3)),
        (slice(None, None, -1), slice(None, None, 2)),
        (0, slice(None), 1),
        (slice(None), None, slice(None, None, -1), 2),
    ]
    for split in splits_of(3):
        x = ht.array(data, split=split)
        for key in keys:
            assert_equal_np(x[key], data[key])


def test_slice_keeps_split_and_may_be_unbalanced(comm):
    data = np.arange(20.0).reshape(10, 2)
    x = ht.array(data, split=0)
    y = x[2:9]
    assert y.split == 0
    assert_equal_np(y, data[2:9])
    assert ht.array(data, split=1)[:, 1].split is None  # the split axis was indexed away
    assert x[:, 1].split == 0


def test_scalar_get_and_set(comm):
    data = rng(52).random((7, 5))
    for split in splits_of(2):
        x = ht.array(data.copy(), split=split)
        expected = data.copy()
        for i, j in [(0, 0), (6, 4), (3, -1), (-4, 2)]:
            assert float(x[i, j].item()) == expected[i, j]
            x[i, j] = -float(i * 10 + j)
            expected[i, j] = -float(i * 10 + j)
        assert_equal_np(x, expected)
    v = ht.arange(5, split=0)
    assert int(v[3]) == 3 and int(v[-1]) == 4
    v[2] = 20
    assert_equal_np(v, np.array([0, 1, 20, 3, 4]))
    with pytest.raises(IndexError):
        v[5]
    with pytest.raises(IndexError):
        x[7, 0]


def test_integer_array_indexing(comm):
    data = rng(53).random((7, 5))
    idx = np.array([6, 0, 3, 3, -1])
    cols = np.array([4, 0, 2])
    for split in splits_of(2):
        x = ht.array(data, split=split)
        assert_equal_np(x[idx], data[idx])
        assert_equal_np(x[:, cols], data[:, cols])
        assert_equal_np(x[[1, 2]], data[[1, 2]])
        assert_equal_np(x[idx, 1], data[idx, 1])
        assert_equal_np(x[np.array([[0, 1], [6, 2]])], data[np.array([[0, 1], [6, 2]])])
        assert_equal_np(x[idx, cols[[0, 1, 2, 0, 1]]], data[idx, cols[[0, 1, 2, 0, 1]]])
        assert_equal_np(x[ht.array(idx, split=0)], data[idx])
        assert_equal_np(x[1:6, [0, 2]], data[1:6, [0, 2]])
    with pytest.raises(IndexError):
        ht.array(data, split=0)[np.array([7])]


def test_integer_array_on_3d(comm):
    data = rng(54).random((4, 3, 5))
    for split in splits_of(3):
        x = ht.array(data, split=split)
        assert_equal_np(x[:, [2, 0]], data[:, [2, 0]])
        assert_equal_np(x[[3, 1], :, 4], data[[3, 1], :, 4])
        assert_equal_np(x[..., [1, 1, 0]], data[..., [1, 1, 0]])


def test_boolean_mask_indexing(comm):
    data = rng(55).random((7, 5))
    mask = data > 0.5
    rows = data[:, 0] > 0.3
    for split in splits_of(2):
        x = ht.array(data, split=split)
        assert_equal_np(x[ht.array(mask, split=split)], data[mask])
        assert_equal_np(x[x > 0.5], data[mask])
        assert_equal_np(x[mask], data[mask])
        assert_equal_np(x[rows], data[rows])
        assert_equal_np(x[:, np.array([True, False, True, False, True])], data[:, [0, 2, 4]])


def test_mask_result_is_split_on_0(comm):
    data = rng(56).random((9, 4))
    x = ht.array(data, split=0)
    y = x[x > 0.5]
    assert y.split == 0
    assert_equal_np(y, data[data > 0.5])


@pytest.mark.parametrize("split", [None, 0, 1])
def test_setitem_basic_with_broadcasting(comm, split):
    data = rng(57).random((7, 5))
    cases = [
        ((slice(1, 4),), 0.0),
        ((slice(None), 2), -1.0),
        ((slice(None, None, 2),), np.arange(5.0)),
        ((slice(None), slice(1, 3)), np.array([[7.0], [8.0], [9.0], [1.0], [2.0], [3.0], [4.0]])),
        ((3,), np.arange(5.0) * 2),
        ((slice(None, None, -1), 0), np.arange(7.0)),
        ((Ellipsis, -1), 5.0),
        ((slice(5, 1, -2), slice(None)), np.ones((2, 5))),
    ]
    for key, value in cases:
        x = ht.array(data.copy(), split=split)
        expected = data.copy()
        expected[key] = value
        x[key] = value
        assert_equal_np(x, expected)


@pytest.mark.parametrize("split", [None, 0, 1])
def test_setitem_with_distributed_value(comm, split):
    data = rng(58).random((7, 5))
    for value_split in (None, 0, 1):
        value = rng(59).random((4, 5))
        x = ht.array(data.copy(), split=split)
        x[2:6] = ht.array(value, split=value_split)
        expected = data.copy()
        expected[2:6] = value
        assert_equal_np(x, expected)
    row = rng(60).random(5)
    x = ht.array(data.copy(), split=split)
    x[:] = ht.array(row, split=0)
    assert_equal_np(x, np.broadcast_to(row, (7, 5)))


@pytest.mark.parametrize("split", [None, 0, 1])
def test_setitem_arrays_and_masks(comm, split):
    data = rng(61).random((7, 5))
    x = ht.array(data.copy(), split=split)
    expected = data.copy()
    x[[0, 5, 3]] = 1.5
    expected[[0, 5, 3]] = 1.5
    assert_equal_np(x, expected)
    x[:, [4, 1]] = np.array([2.0, 3.0])
    expected[:, [4, 1]] = np.array([2.0, 3.0])
    assert_equal_np(x, expected)
    x[x > 0.7] = 0.0
    expected[expected > 0.7] = 0.0
    assert_equal_np(x, expected)
    mask = expected < 0.3
    vals = np.arange(mask.sum(), dtype=np.float64)
    x[ht.array(mask, split=split)] = vals
    expected[mask] = vals
    assert_equal_np(x, expected)


def test_empty_chunks_indexing(comm):
    data = np.array([[1.0, 2.0, 3.0]])
    for split in splits_of(2):
        x = ht.array(data, split=split)
        assert_equal_np(x[0], data[0])
        assert_equal_np(x[:, 1:], data[:, 1:])
        assert_equal_np(x[x > 1.5], data[data > 1.5])
        x[0, 1] = 9.0
        assert float(x[0, 1].item()) == 9.0


def test_iteration_and_len(comm):
    data = rng(62).random((4, 3))
    x = ht.array(data, split=0)
    assert len(x) == 4
    rows = [r.numpy() for r in x]
    np.testing.assert_array_equal(np.stack(rows), data)


def test_nonzero_and_take(comm):
    data = rng(63).integers(0, 3, (7, 5))
    for split in splits_of(2):
        x = ht.array(data, split=split)
        nz = ht.nonzero(x)
        np.testing.assert_array_equal(nz.numpy(), np.argwhere(data))
        np.testing.assert_array_equal(ht.where(x).numpy(), np.argwhere(data))
        for axis in (0, 1):
            assert_equal_np(ht.take(x, [2, 0, 4], axis), np.take(data, [2, 0, 4], axis))


def test_bad_keys_raise(comm):
    x = ht.zeros((3, 4), split=0)
    with pytest.raises(IndexError):
        x[0, 0, 0]
    with pytest.raises(IndexError):
        x[1.5]
    with pytest.raises(IndexError):
        x[..., ...]
    with pytest.raises(IndexError):
        x[np.array([0.5])]


def test_lloc_indexes_the_local_block(comm):
    data = np.arange(14.0).reshape(7, 2)
    x = ht.array(data, split=0)
    local = data[x.offset : x.offset + x.lshape[0]]
    np.testing.assert_array_equal(x.lloc[:, 1].numpy(), local[:, 1])
    x.lloc[:, 0] = -1.0
    expected = data.copy()
    expected[:, 0] = -1.0
    assert_equal_np(x, expected)


@pytest.mark.parametrize("shape", [(7, 5), (4, 3, 5)])
def test_setitem_several_index_arrays(comm, shape):
    data = rng(64).random(shape)
    nd = len(shape)
    g = rng(65)
    i0 = np.array([6, 0, 3]) % shape[0]
    i1 = np.array([[4], [0]]) % shape[1]  # broadcasts with i0 to (2, 3)
    keys = [(i0, i1)]
    if nd == 3:
        i2 = np.array([1, 4, 2])
        keys += [(i0, slice(None), i2), (slice(None), i0 % shape[1], i2)]
    for split in splits_of(nd):
        for key in keys:
            x = ht.array(data.copy(), split=split)
            expected = data.copy()
            sel_shape = expected[key].shape
            value = g.random(sel_shape)
            expected[key] = value
            x[key] = value
            assert_equal_np(x, expected)
            x[key] = 0.5  # scalar, broadcast
            expected[key] = 0.5
            assert_equal_np(x, expected)
