"""Operations on unbalanced arrays (after slicing, or moved to an arbitrary layout by hand):
every result still equals NumPy's, whatever the layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import heatlike as ht
from heatlike.testing import assert_equal_np, rng

pytestmark = pytest.mark.mpi


def _layouts(comm, data):
    """The same (9, 4) data in several layouts split on 0: balanced, all rows on the last rank,
    a sliced (unbalanced) view, and one rank empty in the middle."""
    n = data.shape[0]
    p = comm.size
    out = {"balanced": ht.array(data, split=0)}
    x = ht.array(data, split=0)
    target = x.lshape_map
    target[:, 0] = 0
    target[-1, 0] = n
    x.redistribute_(target_map=target)
    out["all_on_last"] = x
    padded = np.concatenate([np.zeros((2, data.shape[1])), data])
    out["sliced"] = ht.array(padded, split=0)[2:]
    y = ht.array(data, split=0)
    target = y.lshape_map
    counts = [n // max(p - 1, 1)] * p
    if p > 1:
        counts[p // 2] = 0
        counts[-1] = n - sum(counts[:-1])
    else:
        counts = [n]
    target[:, 0] = torch.tensor(counts)
    y.redistribute_(target_map=target)
    out["hole"] = y
    return out


@pytest.mark.parametrize("layout", ["balanced", "all_on_last", "sliced", "hole"])
def test_operations_on_unbalanced_layouts(comm, layout):
    data = rng(110).random((9, 4))
    other = rng(111).random((9, 4))
    for x in [_layouts(comm, data)[layout]]:
        assert_equal_np(x, data)
        assert_equal_np(x + ht.array(other, split=0), data + other)
        assert_equal_np(x * ht.array(other, split=1), data * other)
        assert_equal_np(ht.array(other, split=0) - x, other - data)
        assert_equal_np(ht.sum(x, 0), data.sum(0))
        assert_equal_np(ht.mean(x, 0), data.mean(0))
        assert_equal_np(ht.var(x), data.var())
        assert_equal_np(ht.argmax(x), np.argmax(data))
        assert_equal_np(ht.argmin(x, 0), np.argmin(data, 0))
        assert_equal_np(ht.max(x, 0), data.max(0))
        assert_equal_np(ht.cumsum(x, 0), np.cumsum(data, 0))
        assert_equal_np(ht.sort(x, 0)[0], np.sort(data, 0))
        assert_equal_np(ht.sort(x[:, 1])[0], np.sort(data[:, 1]))
        assert_equal_np(ht.median(x, 0), np.median(data, 0))
        assert_equal_np(ht.percentile(x, 75), np.percentile(data, 75))
        assert_equal_np(ht.reshape(x, (4, 9)), data.reshape(4, 9))
        assert_equal_np(ht.resplit(x, 1), data)
        assert_equal_np(ht.resplit(x, None), data)
        assert_equal_np(x[::2], data[::2])
        assert_equal_np(x[::-1], data[::-1])
        assert_equal_np(x[[8, 0, 4]], data[[8, 0, 4]])
        assert_equal_np(x[x > 0.5], data[data > 0.5])
        assert_equal_np(ht.flip(x, 0), np.flip(data, 0))
        assert_equal_np(ht.roll(x, 2, 0), np.roll(data, 2, 0))
        assert_equal_np(ht.concatenate([x, x]), np.concatenate([data, data]))
        assert_equal_np(ht.diagonal(x), np.diagonal(data))
        assert_equal_np(ht.unique(ht.round(x * 3)), np.unique(np.round(data * 3)))
        assert float(x[5, 2].item()) == data[5, 2]
        y = x.copy()
        y[3:7, 1] = -1.0
        expected = data.copy()
        expected[3:7, 1] = -1.0
        assert_equal_np(y, expected)
        y.balance_()
        assert y.is_balanced()
        assert_equal_np(y, expected)
