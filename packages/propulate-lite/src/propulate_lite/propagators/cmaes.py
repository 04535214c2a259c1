"""CMA-ES as a propagator: every worker samples from a shared-in-spirit normal distribution.

Each worker keeps its own distribution N(m, sigma^2 C) over the float parameters, scaled to the unit
cube, and hands out one sample per call. The individuals that reach the worker (its own and the
island's, in arrival order) are collected; whenever ``lam`` new evaluated ones are there, they
are ranked by loss and update m, sigma, C and the evolution paths as in the (μ/μ_w, λ)-CMA-ES. As all
workers of an island see the same evaluations, their distributions follow the same search.

The update follows the standard equations (N. Hansen, "The CMA Evolution Strategy: A Tutorial",
2016): cumulative step-size adaptation, rank-one and rank-μ covariance updates, and for
``active=True`` negative weights for the worst half of each batch (active CMA-ES).
Samples are clipped to the limits; the clipped points are used in the update.
"""

from __future__ import annotations

import math

import numpy as np

from ..population import Individual
from ..space import Float, SearchSpace
from .base import Propagator


class CMAParameters:
    """Weights and learning rates of CMA-ES for dimension ``n`` and batch size ``lam``."""

    def __init__(self, n: int, lam: int, active: bool):
        self.n, self.lam, self.active = n, lam, active
        self.mu = lam // 2
        raw = math.log((lam + 1) / 2) - np.log(np.arange(1, lam + 1))
        pos, neg = raw[: self.mu], raw[self.mu :]
        self.mu_eff = pos.sum() ** 2 / (pos**2).sum()
        self.c_sigma = (self.mu_eff + 2) / (n + self.mu_eff + 5)
        self.d_sigma = 1 + 2 * max(0.0, math.sqrt((self.mu_eff - 1) / (n + 1)) - 1) + self.c_sigma
        self.c_c = (4 + self.mu_eff / n) / (n + 4 + 2 * self.mu_eff / n)
        self.c_1 = 2 / ((n + 1.3) ** 2 + self.mu_eff)
        self.c_mu = min(
            1 - self.c_1,
            2 * (self.mu_eff - 2 + 1 / self.mu_eff) / ((n + 2) ** 2 + self.mu_eff),
        )
        weights = np.zeros(lam)
        weights[: self.mu] = pos / pos.sum()
        if active and neg.size and self.c_mu > 0:
            mu_eff_neg = neg.sum() ** 2 / (neg**2).sum()
            scale = min(
                1 + self.c_1 / self.c_mu,
                1 + 2 * mu_eff_neg / (self.mu_eff + 2),
                (1 - self.c_1 - self.c_mu) / (n * self.c_mu),
            )
            weights[self.mu :] = scale * neg / np.abs(neg).sum()
        self.weights = weights
        self.chi_n = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n))


class CMAES(Propagator):
    """One sample per call from N(m, sigma^2 C); an update after every ``lam`` new evaluations.

    ``limits`` must be float intervals only. ``sigma`` is the initial step size as a fraction
    of each interval's width; ``mean`` the initial mean (default: the centre of the box);
    ``lam`` the batch size (default 4 + ⌊3 ln n⌋, at least 4); ``active=True`` gives active
    CMA-ES (negative weights for the worse half of each batch).
    """

    def __init__(
        self,
        limits,
        sigma: float = 0.2,
        lam: int | None = None,
        mean=None,
        active: bool = False,
        rng=None,
    ):
        super().__init__(-1, 1, rng)
        self.space = SearchSpace(limits)
        if not all(isinstance(p, Float) and not p.log for p in self.space.params.values()):
            raise ValueError("CMA-ES propagators need float parameters (linear scale) only")
        n = len(self.space)
        lam = max(4, 4 + int(3 * math.log(n))) if lam is None else lam
        if not isinstance(lam, int) or lam < 2:
            raise ValueError(f"lam must be an int >= 2, got {lam!r}")
        if not 0.0 < float(sigma) <= 1.0:
            raise ValueError(f"sigma must be in (0, 1] (a fraction of the widths), got {sigma!r}")
        self.low = np.array([p.low for p in self.space.params.values()])
        self.width = np.array([p.high - p.low for p in self.space.params.values()])
        self.par = CMAParameters(n, lam, active)
        if mean is None:
            self.mean = np.full(n, 0.5)
        else:
            self.mean = (self.space.encode(mean) - self.low) / self.width
        self.sigma = float(sigma)
        self.cov = np.eye(n)
        self.p_sigma, self.p_c = np.zeros(n), np.zeros(n)
        self.updates = 0
        self._eigen()
        self._batch: list[tuple[float, np.ndarray]] = []
        self._cursor = 0
        self._seen: set = set()

    def _eigen(self) -> None:
        self.cov = (self.cov + self.cov.T) / 2
        values, self.basis = np.linalg.eigh(self.cov)
        self.scales = np.sqrt(np.maximum(values, 1e-20))  # D: square roots of the eigenvalues
        self.inv_sqrt = self.basis @ np.diag(1 / self.scales) @ self.basis.T

    def _unit(self, ind: Individual) -> np.ndarray:
        return (self.space.encode(ind) - self.low) / self.width

    def _collect(self, inds) -> None:
        arrivals = getattr(inds, "arrivals", None)
        if arrivals is not None:
            new, self._cursor = arrivals[self._cursor :], len(arrivals)
        else:
            new = inds
        for ind in new:
            if ind.uid in self._seen or ind.failed or not math.isfinite(ind.loss):
                continue
            self._seen.add(ind.uid)
            self._batch.append((ind.loss, self._unit(ind)))

    def tell(self, losses: np.ndarray, points: np.ndarray) -> None:
        """One CMA-ES update from ``lam`` evaluated points (rows, in unit-cube coordinates)."""
        par = self.par
        order = np.argsort(losses, kind="stable")
        y = (points[order] - self.mean) / self.sigma
        y_w = par.weights[: par.mu] @ y[: par.mu]
        self.mean = self.mean + self.sigma * y_w
        self.p_sigma = (1 - par.c_sigma) * self.p_sigma + math.sqrt(
            par.c_sigma * (2 - par.c_sigma) * par.mu_eff
        ) * (self.inv_sqrt @ y_w)
        norm = float(np.linalg.norm(self.p_sigma))
        self.updates += 1
        decay = math.sqrt(1 - (1 - par.c_sigma) ** (2 * self.updates))
        h_sigma = norm / decay < (1.4 + 2 / (par.n + 1)) * par.chi_n
        self.p_c = (1 - par.c_c) * self.p_c + h_sigma * math.sqrt(
            par.c_c * (2 - par.c_c) * par.mu_eff
        ) * y_w
        weights = par.weights.copy()
        negative = weights < 0
        if negative.any():  # negative weights act on Mahalanobis-normalised directions
            lengths = np.sum((y[negative] @ self.inv_sqrt.T) ** 2, axis=1)
            weights[negative] *= par.n / np.maximum(lengths, 1e-20)
        delta = (1 - h_sigma) * par.c_c * (2 - par.c_c)
        self.cov = (
            (1 + par.c_1 * delta - par.c_1 - par.c_mu * par.weights.sum()) * self.cov
            + par.c_1 * np.outer(self.p_c, self.p_c)
            + par.c_mu * (y.T * weights) @ y
        )
        self.sigma *= math.exp(min(1.0, (par.c_sigma / par.d_sigma) * (norm / par.chi_n - 1)))
        self._eigen()

    def __call__(self, inds):
        self._collect(inds)
        lam = self.par.lam
        while len(self._batch) >= lam:
            batch, self._batch = self._batch[:lam], self._batch[lam:]
            self.tell(np.array([b[0] for b in batch]), np.array([b[1] for b in batch]))
        z = self.rng.standard_normal(self.par.n)
        unit = np.clip(self.mean + self.sigma * (self.basis @ (self.scales * z)), 0.0, 1.0)
        return _individual(self.space, self.low + unit * self.width)


class ActiveCMAES(CMAES):
    """CMA-ES with negative weights for the worse half of each batch (active covariance update)."""

    def __init__(self, limits, sigma: float = 0.2, lam: int | None = None, mean=None, rng=None):
        super().__init__(limits, sigma, lam, mean, active=True, rng=rng)


def _individual(space: SearchSpace, vector: np.ndarray) -> Individual:
    """An individual at ``vector``, clipped once more so rounding cannot leave the limits."""
    values = space.decode(vector)
    return Individual({n: space.params[n].clip(v) for n, v in values.items()})
