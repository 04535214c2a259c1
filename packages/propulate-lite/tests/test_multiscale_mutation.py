"""The default Gaussian step on a log-uniform scale: its step distribution matches the closed
form, all numeric traits share one scale, and the default propagator reaches known optima."""

import math
import statistics

import numpy as np
import pytest

import propulate_lite as pl
from propulate_lite import Individual, SearchSpace
from propulate_lite.propagators import (
    IntervalMutationMultiScale,
    IntervalMutationNormal,
    get_default_propagator,
)
from propulate_lite.propagators.ga import distinct_indices

EULER_GAMMA = 0.5772156649015329
WIDTH = 2000.0  # wide limits around a parent at 0: clipping never happens at these scales


def steps(prop, names, draws):
    parent = Individual(dict.fromkeys(names, 0.0))
    children = [prop([parent]) for _ in range(draws)]
    return np.array([[child[n] for n in names] for child in children])


@pytest.mark.parametrize("decades", [0.0, 3.0])
def test_step_moments_match_the_closed_form_of_a_log_uniform_scale(decades):
    space = SearchSpace({"x": (-WIDTH / 2, WIDTH / 2)})
    factor = 0.01
    prop = IntervalMutationMultiScale(space, sigma_factor=factor, decades=decades, rng=0)
    x = steps(prop, ["x"], 20000)[:, 0]
    top = factor * WIDTH  # the largest standard deviation
    ln10 = math.log(10.0)
    # sigma = top * 10**(-d u), u ~ U(0, 1): E[sigma^2] = top^2 (1 - 10**(-2d)) / (2 d ln 10)
    mean_square = top**2 * ((1 - 10 ** (-2 * decades)) / (2 * decades * ln10) if decades else 1)
    # ln|step| = ln sigma + ln|z|, E[ln|z|] = -(gamma + ln 2) / 2 for z ~ N(0, 1)
    mean_log = math.log(top) - decades * ln10 / 2 - (EULER_GAMMA + math.log(2)) / 2
    se_square = np.std(x**2) / math.sqrt(x.size)
    se_log = np.std(np.log(np.abs(x))) / math.sqrt(x.size)
    assert abs(np.mean(x**2) - mean_square) < 5 * se_square
    assert abs(np.mean(np.log(np.abs(x))) - mean_log) < 5 * se_log


def test_all_numeric_traits_move_with_one_shared_scale():
    space = SearchSpace({"a": (-WIDTH / 2, WIDTH / 2), "b": (-WIDTH / 2, WIDTH / 2)})
    prop = IntervalMutationMultiScale(space, sigma_factor=0.01, decades=4.0, rng=1)
    x = steps(prop, ["a", "b"], 8000)
    assert np.all(x != 0.0)  # both traits moved in every call
    # a / b for two N(0, s^2) with the same s is standard Cauchy whatever s is: the quartiles
    # of |a / b| are tan(pi / 8) and tan(3 pi / 8); independent scales would spread them
    q1, q3 = np.quantile(np.abs(x[:, 0] / x[:, 1]), [0.25, 0.75])
    assert q1 == pytest.approx(math.tan(math.pi / 8), rel=0.08)
    assert q3 == pytest.approx(math.tan(3 * math.pi / 8), rel=0.08)


def test_points_limits_the_number_of_traits_moved_and_ints_stay_ints():
    space = SearchSpace({"a": (0.0, 1.0), "b": (0.0, 1.0), "n": (0, 9), "c": ("u", "v")})
    prop = IntervalMutationMultiScale(space, sigma_factor=0.5, decades=0.0, points=1, rng=2)
    parent = Individual({"a": 0.5, "b": 0.5, "n": 5, "c": "u"})
    for _ in range(300):
        child = prop([parent])
        changed = [k for k in ("a", "b", "n") if child[k] != parent[k]]
        assert len(changed) <= 1 and child["c"] == "u"
        assert space.contains(child)


@pytest.mark.parametrize(
    "kwargs", [{"sigma_factor": 0.0}, {"decades": -1.0}, {"points": 0}, {"points": 4}]
)
def test_bad_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        IntervalMutationMultiScale({"a": (0.0, 1.0), "b": (0.0, 1.0), "n": (0, 3)}, **kwargs)


def test_distinct_indices_draws_every_ordered_pair_equally_often():
    rng = np.random.default_rng(3)
    n, draws = 5, 20000
    counts = np.zeros((n, n))
    for _ in range(draws):
        i, j = distinct_indices(rng, n, 2)
        counts[i, j] += 1
    assert np.all(np.diag(counts) == 0)
    expected = draws / (n * (n - 1))  # 20 ordered pairs, binomial counts
    spread = math.sqrt(expected * (1 - 1 / (n * (n - 1))))
    off = counts[~np.eye(n, dtype=bool)]
    assert np.all(np.abs(off - expected) < 5 * spread)


def test_default_propagator_uses_the_multiscale_step_and_sigma_decades():
    prop = get_default_propagator(4, {"x": (0.0, 1.0)}, sigma_decades=2.5, rng=0)
    kinds = [type(p) for p in prop.true_prop.propagators]
    assert IntervalMutationMultiScale in kinds and IntervalMutationNormal not in kinds
    step = next(p for p in prop.true_prop.propagators if isinstance(p, IntervalMutationMultiScale))
    assert step.decades == 2.5 and step.sigma_factor == 0.05


def best_after(name, evaluations, seed):
    f = pl.get_function(name)
    opt = pl.AskTell(f.limits, propagator=get_default_propagator(4, f.limits, rng=seed))
    for _ in range(evaluations):
        ind = opt.ask()
        opt.tell(ind, f.loss(ind))
    return opt.best.loss - f.optimum


def test_default_propagator_reaches_the_known_minima_to_many_digits():
    # sphere and Rosenbrock (narrow curved valley) have their minimum 0 at 0 and at (1, 1)
    assert max(best_after("sphere", 2000, seed) for seed in range(3)) < 1e-8
    assert statistics.median(best_after("rosenbrock", 10000, seed) for seed in range(5)) < 1e-6
