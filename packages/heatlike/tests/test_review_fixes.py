"""nanmax/nanmin of NaN-only slices, and sizes after the local tensor is replaced by hand."""

import warnings

import numpy as np
import pytest
import torch

import heatlike as ht
from heatlike.testing import assert_equal_np

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("split", [None, 0, 1])
@pytest.mark.parametrize("name", ["nanmax", "nanmin"])
def test_nan_reductions_give_nan_for_slices_without_a_number_as_numpy(split, name):
    data = np.array(
        [[np.nan, 1.0, -np.inf, 2.0], [np.nan, np.nan, np.nan, 5.0], [np.nan, 3.0, np.inf, -1.0]]
    )
    x = ht.array(data, split=split)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy warns about the NaN column
        expected0 = getattr(np, name)(data, axis=0)
        expected1 = getattr(np, name)(data, axis=1)
    assert_equal_np(getattr(ht, name)(x, axis=0), expected0)
    assert_equal_np(getattr(ht, name)(x, axis=1), expected1)
    flat = ht.array(np.full(5, np.nan), split=None if split is None else 0)
    assert np.isnan(getattr(ht, name)(flat).item())


def test_size_and_lshape_map_follow_a_replaced_local_tensor(comm):
    x = ht.zeros((2 * comm.size, 3), split=0)
    x.larray = torch.zeros(3, 3)  # every rank now holds 3 rows
    assert x.size == 9 * comm.size
    assert x.nbytes == 9 * comm.size * 4
    assert x.lshape_map.tolist() == [[3, 3]] * comm.size
