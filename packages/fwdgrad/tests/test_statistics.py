"""Monte-Carlo checks of the estimates' cosine similarity against closed-form distributions."""

import math

import pytest
import torch

import fwdgrad

N = 256
DRAWS = 1000


def beta_sqrt_moments(a: float, b: float) -> tuple[float, float]:
    """Mean and standard deviation of sqrt(X) for X ~ Beta(a, b) (so E sqrt X = B(a+1/2,b)/B(a,b))."""
    log_beta = lambda p, q: math.lgamma(p) + math.lgamma(q) - math.lgamma(p + q)  # noqa: E731
    mean = math.exp(log_beta(a + 0.5, b) - log_beta(a, b))
    return mean, math.sqrt(a / (a + b) - mean**2)


def cosines(aggregation: str, k: int, angle_deg: float | None = None, seed: int = 0, n: int = N):
    """cos(estimate, g) for DRAWS independent sets of k Gaussian tangents (batched)."""
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(n, generator=gen, dtype=torch.float64)
    v = torch.randn(DRAWS, n, k, generator=gen, dtype=torch.float64)
    if angle_deg is not None:
        v = fixed_angle_tangents(v, math.radians(angle_deg))
    estimate = fwdgrad.aggregate(v, v.transpose(1, 2) @ g, aggregation)
    return estimate @ g / (estimate.norm(dim=1) * g.norm())


def fixed_angle_tangents(raw: torch.Tensor, angle: float) -> torch.Tensor:
    """Unit tangents at ``angle`` to the first one; they span the same space as ``raw``."""
    first = raw[..., :1] / raw[..., :1].norm(dim=-2, keepdim=True)
    rest = raw[..., 1:] - first * (first.transpose(-1, -2) @ raw[..., 1:])
    rest = rest / rest.norm(dim=-2, keepdim=True)
    return torch.cat([first, math.cos(angle) * first + math.sin(angle) * rest], -1)


@pytest.mark.parametrize("k", [1, 4, 16, 64])
def test_projection_cosine_matches_beta_k_over_2_n_minus_k_over_2(k):
    observed = cosines("projection", k, seed=k)
    mean, sd = beta_sqrt_moments(k / 2, (N - k) / 2)
    assert mean == pytest.approx(fwdgrad.chi_mean(k) / fwdgrad.chi_mean(N), rel=1e-12)
    assert abs(float(observed.mean()) - mean) < 4 * sd / math.sqrt(DRAWS)


@pytest.mark.parametrize("k", [1, 4, 16, 64])
def test_mean_cosine_matches_beta_k_over_2_n_minus_1_over_2(k):
    observed = cosines("mean", k, seed=100 + k)
    mean, sd = beta_sqrt_moments(k / 2, (N - 1) / 2)
    assert abs(
        float(observed.abs().mean() if k == 1 else observed.mean()) - mean
    ) < 4 * sd / math.sqrt(DRAWS)


def test_beta_moments_agree_with_scipy():
    from scipy import stats

    a, b = 8.0, 120.0
    mean, sd = beta_sqrt_moments(a, b)
    assert mean == pytest.approx(stats.beta(a, b).expect(math.sqrt), rel=1e-8)
    assert sd**2 == pytest.approx(stats.beta(a, b).expect(lambda x: x) - mean**2, rel=1e-6)


def test_fixed_angle_leaves_projection_unchanged_while_the_mean_drops():
    n, k = 64, 16
    proj = {a: cosines("projection", k, a, seed=7, n=n) for a in (15, 45, 75)}
    mean = {a: cosines("mean", k, a, seed=7, n=n) for a in (15, 45, 75)}
    expected, sd = beta_sqrt_moments(k / 2, (n - k) / 2)
    for a in (45, 75):  # same draws, same span: identical projections
        torch.testing.assert_close(proj[a], proj[15], rtol=0, atol=1e-10)
    assert abs(float(proj[15].mean()) - expected) < 4 * sd / math.sqrt(DRAWS)
    assert mean[15].mean() < mean[45].mean() < mean[75].mean() < proj[75].mean()
    assert float(mean[15].mean()) < 0.6 * expected


def test_mean_is_unbiased_and_projection_scaled_by_n_over_k_is_unbiased():
    gen = torch.Generator().manual_seed(3)
    n, k, draws = 32, 4, 4000
    g = torch.randn(n, generator=gen, dtype=torch.float64)
    v = torch.randn(draws, n, k, generator=gen, dtype=torch.float64)
    d = v.transpose(1, 2) @ g
    mean_sum = fwdgrad.aggregate(v, d, "mean").sum(0)
    proj_sum = fwdgrad.aggregate(v, d, "projection", scaling="unbiased").sum(0)
    # E||mean - g||^2 = (n+1)/k ||g||^2 per draw; the projection's error is smaller.
    tolerance = 4 * math.sqrt((n + 1) / (k * draws)) * float(g.norm())
    assert float((mean_sum / draws - g).norm()) < tolerance
    assert float((proj_sum / draws - g).norm()) < tolerance


def test_norm_scaling_makes_projection_norm_match_on_average():
    gen = torch.Generator().manual_seed(4)
    n, k, draws = 64, 8, 1000
    g = torch.randn(n, generator=gen, dtype=torch.float64)
    v = torch.randn(draws, n, k, generator=gen, dtype=torch.float64)
    scaled = fwdgrad.aggregate(v, v.transpose(1, 2) @ g, "projection", scaling="norm")
    ratios = scaled.norm(dim=1) / g.norm()
    # ||P g|| / ||g|| = cos, so the scaled ratio is cos * E[chi_n] / E[chi_k], mean 1.
    _, sd = beta_sqrt_moments(k / 2, (n - k) / 2)
    sd *= fwdgrad.chi_mean(n) / fwdgrad.chi_mean(k)
    assert abs(float(ratios.mean()) - 1.0) < 4 * sd / math.sqrt(draws)
