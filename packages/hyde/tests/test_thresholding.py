"""Soft/hard thresholding and SURE against closed forms and brute force."""

import numpy as np
import pytest
import torch

from hyde.thresholding import hard_threshold, soft_threshold, sure_soft, sure_soft_threshold


def test_soft_and_hard_threshold_closed_form():
    x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.5], dtype=torch.float64)
    np.testing.assert_allclose(soft_threshold(x, 1.0).numpy(), [-2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.5])
    np.testing.assert_allclose(hard_threshold(x, 1.0).numpy(), [-3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.5])
    # broadcasting threshold per row
    m = torch.tensor([[2.0, -2.0], [2.0, -2.0]])
    np.testing.assert_allclose(
        soft_threshold(m, torch.tensor([[1.0], [3.0]])).numpy(), [[1.0, -1.0], [0.0, 0.0]]
    )


def _sure_numpy(x, t, s):
    # Stein: ||h(x) - x||^2 - n s^2 + 2 s^2 * div h, with div = #{|x| > t}
    h = np.sign(x) * np.maximum(np.abs(x) - t, 0)
    return ((h - x) ** 2).sum() - x.size * s**2 + 2 * s**2 * (np.abs(x) > t).sum()


def test_sure_soft_matches_stein_formula():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 200)) * 2
    for t in (0.0, 0.3, 1.0, 2.5):
        ours = sure_soft(torch.from_numpy(x), t, sigma=1.5).numpy()
        ref = [_sure_numpy(row, t, 1.5) for row in x]
        np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_sure_is_unbiased_for_the_risk():
    # average SURE over noise draws equals the true mean squared error (Monte Carlo, 4 sigma)
    rng = np.random.default_rng(1)
    clean = np.concatenate([np.zeros(800), rng.normal(0, 4, 200)])
    t, s = 1.2, 1.0
    sures, risks = [], []
    for _ in range(200):
        noisy = clean + rng.normal(0, s, clean.size)
        sures.append(float(sure_soft(torch.from_numpy(noisy), t, s)))
        est = np.sign(noisy) * np.maximum(np.abs(noisy) - t, 0)
        risks.append(((est - clean) ** 2).sum())
    diff = np.mean(sures) - np.mean(risks)
    assert abs(diff) < 4 * np.std(np.array(sures) - np.array(risks)) / np.sqrt(200) + 1e-9


def test_sure_optimal_threshold_matches_brute_force():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(0, 0.5, (4, 300)), rng.normal(0, 5, (4, 30))], axis=1)
    sigma = np.array([0.5, 0.7, 1.0, 0.3])
    t, risk = sure_soft_threshold(torch.from_numpy(x), torch.from_numpy(sigma))
    for i in range(4):
        candidates = np.concatenate([[0.0], np.abs(x[i])])
        risks = [_sure_numpy(x[i], c, sigma[i]) for c in candidates]
        best = int(np.argmin(risks))
        assert float(risk[i]) == pytest.approx(risks[best], rel=1e-10, abs=1e-10)
        assert float(t[i]) == pytest.approx(candidates[best], rel=1e-12)
        # and no threshold on a fine grid does better
        grid = np.linspace(0, np.abs(x[i]).max(), 500)
        assert min(_sure_numpy(x[i], g, sigma[i]) for g in grid) >= float(risk[i]) - 1e-9


def test_sure_threshold_zero_for_pure_signal_and_large_for_pure_noise():
    rng = np.random.default_rng(3)
    big = torch.from_numpy(rng.normal(0, 50, (1, 500)))
    t_big, _ = sure_soft_threshold(big, 1.0)
    assert float(t_big) < 1.0
    noise = torch.from_numpy(rng.normal(0, 1, (1, 5000)))
    t_noise, _ = sure_soft_threshold(noise, 1.0)
    assert float(t_noise) > 2.0
