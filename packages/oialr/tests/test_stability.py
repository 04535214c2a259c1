"""Basis-stability analysis: polar factor and column cosine against NumPy."""

import numpy as np
import torch
from torch import nn

from oialr import OIALR
from oialr.stability import BasisTracker, mean_column_cosine, polar_factor, weight_matrices


def test_polar_factor_matches_numpy_and_is_invariant_to_scale():
    g = np.random.default_rng(0)
    w = g.standard_normal((6, 15))  # wide: Q is taken of the 15 x 6 transpose
    u, _, vh = np.linalg.svd(w.T, full_matrices=False)
    q = polar_factor(torch.from_numpy(w))
    np.testing.assert_allclose(q.numpy(), u @ vh, atol=1e-12)
    np.testing.assert_allclose(q.T.numpy() @ q.numpy(), np.eye(6), atol=1e-12)
    np.testing.assert_allclose(polar_factor(torch.from_numpy(3.5 * w)).numpy(), u @ vh, atol=1e-12)


def test_mean_column_cosine_is_trace_over_columns_for_orthonormal_columns():
    g = np.random.default_rng(1)
    a, _ = np.linalg.qr(g.standard_normal((10, 4)))
    b, _ = np.linalg.qr(g.standard_normal((10, 4)))
    want = np.trace(a.T @ b) / 4
    got = mean_column_cosine(torch.from_numpy(a), torch.from_numpy(b))
    assert abs(got - want) < 1e-12
    assert abs(mean_column_cosine(torch.from_numpy(a), torch.from_numpy(-2 * a)) + 1) < 1e-12


def test_tracker_follows_weights_across_the_conversion():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = BasisTracker(model)
    tracker.snapshot(0)
    before = weight_matrices(model)
    ctl = OIALR(model, opt, delay=0, sigma_cutoff_fraction=0.0)
    tracker.snapshot(1)  # same weights, now factorised: Q is unchanged
    assert set(weight_matrices(model)) == set(before)
    result = tracker.stability()
    assert set(result) == {"0", "2", "3"}
    for entry in result.values():
        assert abs(entry["basis"][0] - 1) < 1e-6 and abs(entry["weight"][0] - 1) < 1e-6
    with torch.no_grad():
        model[2].S.mul_(-1)  # W -> -W: the basis flips
    tracker.snapshot(2)
    assert abs(tracker.stability()["2"]["basis"][1] + 1) < 1e-6
    assert list(ctl.ranks()) == ["0", "2"]
