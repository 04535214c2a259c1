"""Noise estimation by regression and HySime against known noise and known subspace dimension."""

import numpy as np
import pytest
import torch

from hyde.estimation import estimate_noise, hysime, regression_residuals
from hyde.noise_models import add_gaussian, add_mixture, band_sigmas


def test_regression_residuals_match_least_squares():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((6, 400))
    ours = regression_residuals(torch.from_numpy(y), ridge=0.0).numpy()
    for i in range(6):
        others = np.delete(y, i, axis=0)
        coef, *_ = np.linalg.lstsq(others.T, y[i], rcond=None)
        np.testing.assert_allclose(ours[i], y[i] - coef @ others, atol=1e-9)


def test_band_wise_sigma_within_ten_percent_above_floor(small_cube):
    cube = small_cube[0]
    sigma = band_sigmas(cube.shape[-1], 0.0, 0.1, seed=1)
    est = estimate_noise(add_gaussian(cube, sigma, seed=2))
    above = sigma >= 0.02  # noise floor: 2% of the [0, 1] dynamic range
    assert above.sum() >= 10
    rel = ((est - sigma).abs() / sigma)[above]
    assert float(rel.max()) < 0.10


@pytest.mark.parametrize("sigma", [0.01, 0.05, 0.1])
def test_iid_sigma_recovered(small_cube, sigma):
    est = estimate_noise(add_gaussian(small_cube[0], sigma, seed=5))
    assert float((est.mean() - sigma).abs() / sigma) < 0.05


@pytest.mark.parametrize("sigma", [0.01, 0.03, 0.1])
def test_hysime_recovers_subspace_dimension(small_cube, sigma):
    cube, _, spectra = small_cube
    sub = hysime(add_gaussian(cube, sigma, seed=7))
    assert sub.dimension == spectra.shape[0]
    # the basis is orthonormal and spans the endmember spectra
    basis = sub.basis
    torch.testing.assert_close(
        basis.T @ basis, torch.eye(4, dtype=torch.float64), atol=1e-10, rtol=0
    )
    residual = spectra.T - basis @ (basis.T @ spectra.T)
    assert float(residual.norm() / spectra.norm()) < 0.05


def test_hysime_floors_keep_more_components(small_cube):
    noisy = add_gaussian(small_cube[0], 0.03, seed=8)
    assert hysime(noisy, min_rank=9).dimension == 9
    base = hysime(noisy).dimension
    assert hysime(noisy, energy=1.0).dimension >= base
    with pytest.raises(ValueError, match="energy"):
        hysime(noisy, energy=1.5)


def test_estimate_noise_rejects_bad_input():
    with pytest.raises(TypeError, match="cube"):
        estimate_noise(np.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match="3 dimensions"):
        estimate_noise(torch.zeros(4, 4))


def test_wavelet_noise_estimate_on_smooth_bands():
    # constant bands: the finest diagonal details are pure noise, median(|N(0, s^2)|) = 0.6745 s
    flat = torch.full((128, 128, 4), 0.3, dtype=torch.float64)
    sigma = torch.tensor([0.01, 0.03, 0.05, 0.1], dtype=torch.float64)
    from hyde.estimation import estimate_noise_wavelet

    est = estimate_noise_wavelet(add_gaussian(flat, sigma, seed=4))
    rel = (est - sigma).abs() / sigma
    assert float(rel.max()) < 0.06  # 4096 coefficients per band: MAD std error ~2%


def test_gram_shortcut_equals_explicit_residuals(small_cube):
    # hysime and the noise estimate work from Y Y^T alone; compare with residuals formed
    # explicitly and with a plain least-squares fit per band
    noisy = add_gaussian(small_cube[0], 0.03, seed=9)
    y = noisy.reshape(-1, noisy.shape[-1]).T
    explicit = hysime(noisy, noise=regression_residuals(y))
    fast = hysime(noisy)
    assert fast.dimension == explicit.dimension
    torch.testing.assert_close(fast.costs, explicit.costs, rtol=1e-6, atol=1e-12)
    overlap = (fast.basis.T @ explicit.basis).abs()
    torch.testing.assert_close(
        overlap, torch.eye(fast.dimension, dtype=torch.float64), atol=1e-8, rtol=0
    )
    yn = y.numpy()
    rms = []
    for i in range(yn.shape[0]):
        others = np.delete(yn, i, axis=0)
        coef, *_ = np.linalg.lstsq(others.T, yn[i], rcond=None)
        rms.append(np.sqrt(np.mean((yn[i] - coef @ others) ** 2)))
    np.testing.assert_allclose(estimate_noise(noisy, debias=False).numpy(), rms, rtol=1e-6)


def test_debiased_noise_never_falls_to_zero_under_mixed_noise():
    # sparse noise inflates the residuals of other bands, and solving for sigma^2 used to give
    # 0 for a band here (whitening then blew that band up); the floor is half the plain RMS
    from hyde.data import make_cube

    noisy = add_mixture(make_cube(32, 32, 32, 4, seed=3, dtype=torch.float64), seed=11)
    plain = estimate_noise(noisy, debias=False)
    est = estimate_noise(noisy)
    assert bool((est >= plain / 2 - 1e-12).all())
    assert float(est.min()) > 0.02


def test_noise_edge_is_the_top_eigenvalue_of_least_squares_residuals():
    from hyde.estimation import gram, noise_edge

    rng = np.random.default_rng(4)
    mixing = rng.standard_normal((3, 7))
    y = rng.standard_normal((500, 3)) @ mixing + rng.normal(0, 0.2, (500, 7)) * np.arange(1, 8)
    residuals = np.empty_like(y)
    for i in range(7):
        others = np.delete(y, i, axis=1)
        coef, *_ = np.linalg.lstsq(others, y[:, i], rcond=None)
        residuals[:, i] = y[:, i] - others @ coef
    expected = np.linalg.eigvalsh(residuals.T @ residuals / 500)[-1]
    g, pixels = gram(torch.from_numpy(y.reshape(25, 20, 7)))
    assert noise_edge(g, pixels) == pytest.approx(expected, rel=1e-5)


def test_signal_dimension_counts_endmembers_where_hysime_counts_sparse_noise():
    from hyde.data import make_cube
    from hyde.estimation import (
        gram,
        hysime_from_gram,
        noise_from_gram,
        signal_dimension,
        sparse_noise,
    )

    cube = make_cube(128, 128, 64, endmembers=5, seed=0, dtype=torch.float64)
    dims, flags = [], []
    for noisy in (add_mixture(cube, seed=1, amounts=(0.1, 0.3)), add_gaussian(cube, 0.05, seed=1)):
        g, pixels = gram(noisy)
        sigma = noise_from_gram(g, pixels)
        white = g / (sigma[:, None] * sigma[None, :])
        assert signal_dimension(white, pixels) == 5  # the generated cube's endmembers
        dims.append(hysime_from_gram(white, pixels).dimension)
        flags.append(sparse_noise(noisy.reshape(-1, 64), g))
    assert flags == [True, False]
    assert dims[0] > 5 and dims[1] == 5  # HySime: too many on mixed noise, right on Gaussian


def test_sparse_noise_flags_impulses_but_not_gaussian_noise():
    from scipy.stats import kurtosis

    from hyde.estimation import gram, sparse_noise

    rng = np.random.default_rng(7)
    signal = rng.standard_normal((4096, 3)) @ rng.standard_normal((3, 12))
    gaussian = signal + rng.normal(0, 0.1, signal.shape)
    impulses = gaussian.copy()
    hit = rng.random(4096) < 0.05
    impulses[hit, 4] += rng.choice([-2.0, 2.0], hit.sum())
    for y, expected in ((gaussian, False), (impulses, True)):
        g, _ = gram(torch.from_numpy(y.reshape(64, 64, 12)))
        # the reference: SciPy's kurtosis of NumPy least-squares residuals, band by band
        residuals = np.stack(
            [
                y[:, i]
                - np.delete(y, i, 1) @ np.linalg.lstsq(np.delete(y, i, 1), y[:, i], rcond=None)[0]
                for i in range(12)
            ],
            1,
        )
        excess = kurtosis(residuals, axis=0, fisher=True).max()
        assert (excess > 10 * np.sqrt(24 / 4096)) == expected
        assert sparse_noise(torch.from_numpy(y), g) == expected
