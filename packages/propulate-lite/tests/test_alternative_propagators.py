"""Particle swarm, CMA-ES and Nelder-Mead propagators: limits, the update rules, convergence."""

import math

import numpy as np
import pytest

import propulate_lite as pl
from propulate_lite import Individual, Propulator, SearchSpace
from propulate_lite.propagators import (
    CMAES,
    ActiveCMAES,
    BasicPSO,
    CanonicalPSO,
    ConstrictionPSO,
    NelderMead,
    VelocityClampingPSO,
)
from propulate_lite.propagators.cmaes import CMAParameters
from propulate_lite.propagators.nm import coefficients

LIMITS = {"a": (-2.0, 3.0), "b": (0.5, 1.5), "c": (-10.0, -1.0)}
SHIFT = {"a": 2.9, "b": 0.6, "c": -5.0}  # a minimum near two of the walls


def shifted_sphere(params):
    return sum((params[k] - SHIFT[k]) ** 2 for k in SHIFT)


def every_kind(limits, rng):
    return [
        BasicPSO(limits, particles=4, rng=rng),
        VelocityClampingPSO(limits, particles=4, rng=rng),
        ConstrictionPSO(limits, particles=4, rng=rng),
        CanonicalPSO(limits, particles=4, rng=rng),
        CMAES(limits, rng=rng),
        ActiveCMAES(limits, rng=rng),
        NelderMead(limits, rng=rng),
    ]


def drive(prop, loss, n, limits=LIMITS):
    """Ask/tell ``n`` times; every output must be a float point inside the limits."""
    space = SearchSpace(limits)
    opt = pl.AskTell(limits, propagator=prop)
    for _ in range(n):
        ind = opt.ask()
        assert isinstance(ind, Individual) and space.contains(ind), dict(ind)
        opt.tell(ind, loss(ind))
    return opt


@pytest.mark.parametrize("index", range(7))
def test_outputs_respect_the_limits_and_the_search_converges(index):
    prop = every_kind(LIMITS, np.random.default_rng(index))[index]
    opt = drive(prop, shifted_sphere, 1200)
    assert opt.best.loss < 1e-4, (type(prop).__name__, opt.best.loss)  # optimum 0 at SHIFT


@pytest.mark.parametrize("make", [BasicPSO, CMAES, NelderMead])
def test_non_float_spaces_are_rejected(make):
    with pytest.raises(ValueError, match="float"):
        make({"x": (0.0, 1.0), "n": (1, 4)})


def test_a_failed_evaluation_is_treated_as_infinitely_bad():
    def half_broken(params):
        return math.nan if params["a"] < 0 else shifted_sphere(params)

    for index, prop in enumerate(every_kind(LIMITS, np.random.default_rng(5))):
        opt = drive(prop, half_broken, 600)
        assert opt.best["a"] >= 0 and opt.best.loss < 1e-2, index


# ---------------------------------------------------------------- particle swarm
def test_constriction_factor_matches_clerc_kennedy():
    # chi = 2 / |2 - phi - sqrt(phi^2 - 4 phi)| = 0.72984... for phi = 4.1
    assert ConstrictionPSO(LIMITS).chi == pytest.approx(0.7298437881283576, rel=1e-12)
    with pytest.raises(ValueError, match="exceed 4"):
        ConstrictionPSO(LIMITS, c_cognitive=2.0, c_social=2.0)


def test_velocity_clamping_bounds_every_step():
    prop = VelocityClampingPSO(LIMITS, v_limit=0.05, particles=3, rng=0)
    width = np.array([hi - lo for lo, hi in LIMITS.values()])
    drive(prop, shifted_sphere, 300)
    assert np.all(np.abs(prop.velocity) <= 0.05 * width + 1e-12)


def test_basic_pso_step_follows_the_velocity_equation():
    """One move of a particle, recomputed in NumPy from the same random numbers."""
    limits = {"x": (-100.0, 100.0), "y": (-100.0, 100.0)}
    prop = BasicPSO(limits, inertia=0.5, c_cognitive=1.0, c_social=2.0, rng=7)
    first = prop([])
    first.loss = 10.0
    x, v = prop.position[0].copy(), prop.velocity[0].copy()
    best = Individual({"x": 1.0, "y": -2.0})
    best.loss = 0.0
    draws = np.random.default_rng(0)
    prop.rng = np.random.default_rng(0)  # the same stream for r1, r2 below
    r1, r2 = draws.random(2), draws.random(2)
    moved = prop([best])
    v_ref = 0.5 * v + 1.0 * r1 * (x - x) + 2.0 * r2 * (np.array([1.0, -2.0]) - x)
    np.testing.assert_allclose([moved["x"], moved["y"]], x + v_ref, rtol=1e-12)


# ----------------------------------------------------------------------- CMA-ES
@pytest.mark.parametrize("n, lam", [(2, 6), (10, 10), (30, 14)])
def test_cma_weights_and_rates_obey_the_constraints(n, lam):
    par = CMAParameters(n, lam, active=True)
    pos, neg = par.weights[: par.mu], par.weights[par.mu :]
    assert pos.sum() == pytest.approx(1.0) and np.all(np.diff(pos) < 0) and np.all(pos > 0)
    assert np.all(neg <= 0) and np.all(np.diff(neg) < 0)
    assert par.mu_eff == pytest.approx(1.0 / np.sum(pos**2))  # variance-effective mass
    assert 1.0 <= par.mu_eff <= par.mu
    # the decay factor of C stays >= 0 even with the negative weights (positive definiteness)
    assert 1 - par.c_1 - par.c_mu * par.weights.sum() >= 0
    assert -neg.sum() <= (1 - par.c_1 - par.c_mu) / (n * par.c_mu) + 1e-12
    basic = CMAParameters(n, lam, active=False)
    assert np.all(basic.weights[basic.mu :] == 0)


def test_cma_mean_moves_to_the_weighted_mean_of_the_best_half():
    prop = CMAES({"x": (0.0, 1.0), "y": (0.0, 1.0)}, lam=6, rng=0)
    rng = np.random.default_rng(1)
    points = rng.random((6, 2))
    losses = rng.random(6)
    weights = CMAParameters(2, 6, active=False).weights[:3]
    best = points[np.argsort(losses)[:3]]
    prop.tell(losses, points)
    np.testing.assert_allclose(prop.mean, weights @ best, rtol=1e-12)


def test_cma_learns_the_inverse_hessian_of_a_quadratic():
    """On f = (a - 0.3)^2 + 100 (b + 0.2)^2 the covariance becomes ~ H^-1: its axis ratio
    approaches 100 along a."""
    limits = {"a": (-1.0, 1.0), "b": (-1.0, 1.0)}
    for make in (CMAES, ActiveCMAES):
        for seed in range(2):
            prop = make(limits, rng=seed)
            opt = drive(
                prop, lambda p: (p["a"] - 0.3) ** 2 + 100 * (p["b"] + 0.2) ** 2, 300, limits
            )
            values, vectors = np.linalg.eigh(prop.cov)
            assert 20 < values[1] / values[0] < 500
            assert abs(vectors[0, 1]) > 0.99  # the long axis is a
            assert opt.best.loss < 1e-6 and prop.sigma < 0.01


# ------------------------------------------------------------------ Nelder-Mead
def test_nelder_mead_coefficients():
    assert coefficients(2) == (1.0, 2.0, 0.5, 0.5)  # the classic ones
    assert coefficients(1) == coefficients(2)
    assert coefficients(10) == pytest.approx((1.0, 1.2, 0.7, 0.9))  # Gao and Han


def test_nelder_mead_reflects_the_worst_vertex_through_the_centroid():
    limits = {"x": (-10.0, 10.0), "y": (-10.0, 10.0)}
    prop = NelderMead(limits, start_step=0.05, rng=3)
    simplex, losses = [], [3.0, 1.0, 2.0]  # the first vertex is the worst
    for loss in losses:
        ind = prop([])
        simplex.append(np.array([ind["x"], ind["y"]]))
        ind.loss = loss
    reflected = prop([])
    centroid = (simplex[1] + simplex[2]) / 2
    np.testing.assert_allclose(
        [reflected["x"], reflected["y"]], centroid + (centroid - simplex[0]), rtol=1e-12
    )
    # the simplex is the start point plus one step of 5 % of the width along each axis
    np.testing.assert_allclose(np.abs(simplex[1] - simplex[0]) + np.abs(simplex[2] - simplex[0]), 1)


def test_nelder_mead_solves_rosenbrock_and_restarts_after_converging():
    f = pl.get_function("rosenbrock")
    prop = NelderMead(f.limits, rng=0)
    opt = drive(prop, f.loss, 1500, f.limits)
    assert opt.best.loss < 1e-10
    assert prop.restarts >= 1


# ------------------------------------------------------------- in a Propulator
@pytest.mark.mpi
@pytest.mark.timeout(120)
@pytest.mark.parametrize("make", [CanonicalPSO, CMAES, NelderMead])
def test_alternative_propagators_drive_a_propulator_at_any_size(comm, make):
    kwargs = {"particles": 4} if make is CanonicalPSO else {}
    prop = make(LIMITS, rng=np.random.default_rng([11, comm.rank]), **kwargs)
    run = Propulator(shifted_sphere, prop, comm=comm, generations=300, rng=comm.rank)
    run.propulate()
    space = SearchSpace(LIMITS)
    assert len(run.population) == 300 * comm.size
    assert all(space.contains(ind) for ind in run.population)
    best = run.summarize(1)[0][0]
    assert best.loss == pytest.approx(shifted_sphere(best)) and best.loss < 1e-3
