"""Shape and layout manipulation, sorting and unique against NumPy, for every split, on uneven
shapes and shapes with fewer rows than ranks."""

from __future__ import annotations

import numpy as np
import pytest

import heatlike as ht
from heatlike.testing import assert_equal_np, received_within_share, rng, splits_of

pytestmark = pytest.mark.mpi

SHAPES = [(7, 5), (2, 3, 4), (1, 4)]


@pytest.mark.parametrize("shape", SHAPES)
def test_reshape_flatten(comm, shape):
    data = rng(70).random(shape)
    targets = [(-1,), (shape[-1], -1), (1, -1), (-1, 1), tuple(reversed(shape))]
    for split in splits_of(len(shape)):
        x = ht.array(data, split=split)
        for target in targets:
            y = ht.reshape(x, target)
            assert_equal_np(y, data.reshape(target))
            assert (y.split is None) == (split is None)
        assert_equal_np(ht.flatten(x), data.ravel())
        assert_equal_np(ht.ravel(x), data.ravel())
        assert_equal_np(x.reshape(*reversed(shape)), data.reshape(*reversed(shape)))
        assert_equal_np(ht.reshape(x, (-1,), new_split=0), data.ravel())
    with pytest.raises(ValueError):
        ht.reshape(ht.array(data), (3, -1, -1))


def test_reshape_does_not_gather(comm):
    data = rng(71).random((120, 30))
    x = ht.array(data, split=0)
    received_within_share(lambda: ht.reshape(x, (30, 120)), data.nbytes, comm.size)


@pytest.mark.parametrize("shape", SHAPES)
def test_transpose_swapaxes_moveaxis(comm, shape):
    data = rng(72).random(shape)
    nd = len(shape)
    for split in splits_of(nd):
        x = ht.array(data, split=split)
        assert_equal_np(ht.transpose(x), data.T)
        assert_equal_np(x.T, data.T)
        perm = (nd - 1, *range(nd - 1))
        assert_equal_np(ht.transpose(x, perm), np.transpose(data, perm))
        assert_equal_np(ht.swapaxes(x, 0, -1), np.swapaxes(data, 0, -1))
        assert_equal_np(ht.moveaxis(x, 0, -1), np.moveaxis(data, 0, -1))
        if split is not None:
            assert ht.transpose(x).split == nd - 1 - split


def test_concatenate_stack(comm):
    g = rng(73)
    a, b, c = g.random((3, 4)), g.random((5, 4)), g.random((1, 4))
    for sa in splits_of(2):
        for sb in splits_of(2):
            xa, xb, xc = ht.array(a, split=sa), ht.array(b, split=sb), ht.array(c, split=sa)
            assert_equal_np(ht.concatenate([xa, xb, xc]), np.concatenate([a, b, c]))
            assert_equal_np(
                ht.concatenate([xa, ht.array(a * 2, split=sb)], axis=1),
                np.concatenate([a, a * 2], axis=1),
            )
            for axis in (0, 1, 2):
                assert_equal_np(
                    ht.stack([xa, ht.array(a + 1, split=sb)], axis=axis),
                    np.stack([a, a + 1], axis=axis),
                )
            assert_equal_np(ht.vstack([xa, xb]), np.vstack([a, b]))
            assert_equal_np(ht.hstack([xa, ht.array(a, split=sb)]), np.hstack([a, a]))
    v = np.arange(3.0)
    assert_equal_np(ht.hstack([ht.array(v, split=0), ht.array(v)]), np.hstack([v, v]))
    assert_equal_np(ht.vstack([ht.array(v, split=0), ht.array(v)]), np.vstack([v, v]))
    with pytest.raises(ValueError):
        ht.concatenate([ht.zeros((2, 3)), ht.zeros((2, 4))])


@pytest.mark.parametrize("shape", [(1, 5, 1), (3, 1, 4)])
def test_squeeze_expand_dims(comm, shape):
    data = rng(74).random(shape)
    for split in splits_of(len(shape)):
        x = ht.array(data, split=split)
        assert_equal_np(ht.squeeze(x), np.squeeze(data))
        assert_equal_np(
            ht.squeeze(x, 1 if shape[1] == 1 else 0), np.squeeze(data, 1 if shape[1] == 1 else 0)
        )
        for axis in (0, 1, -1):
            assert_equal_np(ht.expand_dims(x, axis), np.expand_dims(data, axis))
    with pytest.raises(ValueError):
        ht.squeeze(ht.zeros((2, 3)), 0)


@pytest.mark.parametrize("shape", SHAPES)
def test_flip_roll(comm, shape):
    data = rng(75).random(shape)
    for split in splits_of(len(shape)):
        x = ht.array(data, split=split)
        assert_equal_np(ht.flip(x), np.flip(data))
        for axis in range(len(shape)):
            assert_equal_np(ht.flip(x, axis), np.flip(data, axis))
            for shift in (1, -3, 11, 0):
                assert_equal_np(ht.roll(x, shift, axis), np.roll(data, shift, axis))
        assert_equal_np(ht.roll(x, 4), np.roll(data, 4))
        assert_equal_np(ht.roll(x, (1, 2), (0, 1)), np.roll(data, (1, 2), (0, 1)))
        if len(shape) == 2:
            assert_equal_np(ht.fliplr(x), np.fliplr(data))
            assert_equal_np(ht.flipud(x), np.flipud(data))


@pytest.mark.parametrize("shape", SHAPES)
def test_pad_repeat_tile(comm, shape):
    data = rng(76).random(shape)
    nd = len(shape)
    for split in splits_of(nd):
        x = ht.array(data, split=split)
        widths = [(1, 2)] + [(0, 1)] * (nd - 1)
        assert_equal_np(ht.pad(x, widths), np.pad(data, widths))
        assert_equal_np(ht.pad(x, 1, constant_values=3.0), np.pad(data, 1, constant_values=3.0))
        assert_equal_np(ht.repeat(x, 2), np.repeat(data, 2))
        for axis in range(nd):
            assert_equal_np(ht.repeat(x, 3, axis), np.repeat(data, 3, axis))
            reps = np.arange(shape[axis]) % 3
            assert_equal_np(ht.repeat(x, reps, axis), np.repeat(data, reps, axis))
        assert_equal_np(ht.tile(x, 2), np.tile(data, 2))
        assert_equal_np(ht.tile(x, (2,) + (1,) * (nd - 1)), np.tile(data, (2,) + (1,) * (nd - 1)))
        assert_equal_np(ht.tile(x, (2, 1, 1, 2)), np.tile(data, (2, 1, 1, 2)))


def test_diag_diagonal_tril_triu(comm):
    g = rng(77)
    for shape in [(5, 5), (7, 4), (3, 6), (1, 3)]:
        data = g.random(shape)
        for split in splits_of(2):
            x = ht.array(data, split=split)
            for k in (0, 1, -1, 2):
                assert_equal_np(ht.diagonal(x, k), np.diagonal(data, k))
                assert_equal_np(ht.diag(x, k), np.diag(data, k))
                assert_equal_np(ht.tril(x, k), np.tril(data, k))
                assert_equal_np(ht.triu(x, k), np.triu(data, k))
    v = g.random(5)
    for split in (None, 0):
        for k in (0, 2, -1):
            assert_equal_np(ht.diag(ht.array(v, split=split), k), np.diag(v, k))


@pytest.mark.parametrize("shape", [(11,), (2,), (7, 5), (2, 3, 4)])
def test_sort_argsort(comm, shape):
    data = rng(78).integers(0, 5, shape).astype(np.float64)  # ties: stable order
    for split in splits_of(len(shape)):
        x = ht.array(data, split=split)
        for axis in range(len(shape)):
            values, indices = ht.sort(x, axis)
            assert_equal_np(values, np.sort(data, axis, kind="stable"))
            assert_equal_np(indices, np.argsort(data, axis, kind="stable"))
            assert_equal_np(ht.argsort(x, axis), np.argsort(data, axis, kind="stable"))
            desc, _ = ht.sort(x, axis, descending=True)
            assert_equal_np(desc, np.flip(np.sort(data, axis), axis))
            assert values.split == split


def test_sample_sort_large_1d(comm):
    data = rng(79).normal(size=1003)
    x = ht.array(data, split=0)
    values, indices = ht.sort(x)
    assert_equal_np(values, np.sort(data))
    assert_equal_np(indices, np.argsort(data, kind="stable"))
    received_within_share(lambda: ht.sort(x), 2 * data.nbytes, comm.size, factor=2.0)


@pytest.mark.parametrize("shape", [(13,), (7, 5), (1, 2)])
def test_unique(comm, shape):
    data = rng(80).integers(0, 6, shape)
    for split in splits_of(len(shape)):
        x = ht.array(data, split=split)
        assert_equal_np(ht.unique(x), np.unique(data))
    u, inv = ht.unique(ht.array(data), return_inverse=True)
    nu = np.unique(data)
    assert_equal_np(u, nu)
    np.testing.assert_array_equal(u.numpy()[inv.numpy()].reshape(shape), data)


def test_balance_redistribute_resplit_methods(comm):
    data = rng(81).random((9, 4))
    x = ht.array(data, split=0)[1:8]
    y = ht.balance(x)
    assert y.is_balanced()
    assert_equal_np(y, data[1:8])
    z = ht.redistribute(y, target_map=y.lshape_map)
    assert_equal_np(z, data[1:8])
    w = ht.array(data, split=1)
    w.resplit_(0)
    assert w.split == 0
    assert_equal_np(w, data)
    assert_equal_np(ht.array(data, split=0).resplit(None), data)


def test_broadcast_to(comm):
    data = rng(82).random((1, 5))
    for split in splits_of(2):
        assert_equal_np(
            ht.broadcast_to(ht.array(data, split=split), (4, 5)), np.broadcast_to(data, (4, 5))
        )


@pytest.mark.parametrize("shape", [(6, 4), (2, 3, 4), (1, 4)])
def test_split_hsplit_vsplit_dsplit(comm, shape):
    data = rng(83).random(shape)
    nd = len(shape)
    for split in splits_of(nd):
        x = ht.array(data, split=split)
        for axis in range(nd):
            for spec in (1, [1, 3], [0, 2, 2]):
                got = ht.split(x, spec, axis)
                want = np.split(data, spec, axis)
                assert len(got) == len(want)
                for g, w in zip(got, want):
                    assert_equal_np(g, w)
        for g, w in zip(ht.hsplit(x, [1]), np.hsplit(data, [1])):
            assert_equal_np(g, w)
        for g, w in zip(ht.vsplit(x, [1]), np.vsplit(data, [1])):
            assert_equal_np(g, w)
        if nd == 3:
            for g, w in zip(ht.dsplit(x, 2), np.dsplit(data, 2)):
                assert_equal_np(g, w)
    with pytest.raises(ValueError):
        ht.split(ht.zeros((5, 2)), 2)


def test_column_stack_row_stack_copy(comm):
    a, b = rng(84).random(5), rng(85).random((5, 2))
    for split in (None, 0):
        xa, xb = ht.array(a, split=split), ht.array(b, split=split)
        assert_equal_np(ht.column_stack([xa, xb, xa]), np.column_stack([a, b, a]))
        assert_equal_np(ht.row_stack([xa, xa]), np.vstack([a, a]))
        c = ht.copy(xb)
        c[0, 0] = -1.0
        assert_equal_np(xb, b)
        assert c.split == xb.split


@pytest.mark.parametrize("join", ["concatenate", "stack", "hstack", "vstack", "column_stack"])
def test_joining_no_arrays_is_a_value_error_as_in_numpy(comm, join):
    with pytest.raises(ValueError, match="need at least one array"):
        getattr(np, join)([])
    with pytest.raises(ValueError, match="need at least one array"):
        getattr(ht, join)([])
