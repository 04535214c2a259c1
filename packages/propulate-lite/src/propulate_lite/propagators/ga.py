"""Genetic operators: initialisation, selection, mutation and crossover."""

from __future__ import annotations

import numpy as np

from ..population import Individual
from ..space import Categorical, Float, Int, SearchSpace
from .base import Propagator, Stochastic, largest, smallest


def _fresh(values: dict) -> Individual:
    return Individual(values)


class InitUniform(Stochastic):
    """A uniformly random individual. With ``parents=1`` it replaces its parent with
    ``probability`` (a random restart inside a pipeline); with ``parents=0`` it always creates."""

    def __init__(self, limits, parents: int = 0, probability: float = 1.0, rng=None):
        if parents not in (0, 1):
            raise ValueError(f"parents must be 0 or 1, got {parents!r}")
        super().__init__(parents, 1, probability, rng)
        self.space = SearchSpace(limits)

    def __call__(self, inds=()):
        if self.parents == 0 or not inds or self.apply():
            return _fresh(self.space.sample(self.rng))
        return _fresh(dict(inds[0]))


class SelectMin(Propagator):
    """The ``offspring`` best (lowest-loss) individuals."""

    def __init__(self, offspring: int):
        super().__init__(-1, offspring)

    def __call__(self, inds):
        return smallest(inds, self.offspring)


class SelectMax(Propagator):
    """The ``offspring`` worst (highest-loss) individuals."""

    def __init__(self, offspring: int):
        super().__init__(-1, offspring)

    def __call__(self, inds):
        return largest(inds, self.offspring)


class SelectUniform(Propagator):
    """``offspring`` distinct individuals drawn uniformly."""

    def __init__(self, offspring: int, rng=None):
        super().__init__(-1, offspring, rng)

    def __call__(self, inds):
        k = min(self.offspring, len(inds))
        return [inds[i] for i in distinct_indices(self.rng, len(inds), k)]


class PointMutation(Stochastic):
    """Sets ``points`` randomly chosen traits to new uniformly random values."""

    def __init__(self, limits, points: int = 1, probability: float = 1.0, rng=None):
        super().__init__(1, 1, probability, rng)
        self.space = SearchSpace(limits)
        if not isinstance(points, int) or not 1 <= points <= len(self.space):
            raise ValueError(f"points must be an int in [1, {len(self.space)}], got {points!r}")
        self.points = points

    def _mutate(self, values: dict, count: int) -> dict:
        names = self.space.names
        for pos in distinct_indices(self.rng, len(names), count):
            name = names[pos]
            values[name] = _different_value(self.space.params[name], values[name], self.rng)
        return values

    def __call__(self, inds):
        values = dict(inds[0])
        if self.apply():
            values = self._mutate(values, self.points)
        return _fresh(values)


class RandomPointMutation(PointMutation):
    """Like PointMutation, with the number of points drawn from [min_points, max_points]."""

    def __init__(self, limits, min_points: int = 1, max_points: int = 1, probability=1.0, rng=None):
        super().__init__(limits, max_points, probability, rng)
        if not 1 <= min_points <= max_points:
            raise ValueError(f"need 1 <= min_points <= max_points, got {min_points}, {max_points}")
        self.min_points = min_points

    def __call__(self, inds):
        values = dict(inds[0])
        if self.apply():
            count = int(self.rng.integers(self.min_points, self.points + 1))
            values = self._mutate(values, count)
        return _fresh(values)


class IntervalMutationNormal(Stochastic):
    """Adds N(0, (sigma_factor * (high - low))^2) to ``points`` numeric traits, clipped to limits."""

    def __init__(
        self, limits, sigma_factor: float = 0.05, points: int = 1, probability=1.0, rng=None
    ):
        super().__init__(1, 1, probability, rng)
        self.space = SearchSpace(limits)
        self.numeric = self.space.numeric_names()
        if not self.numeric:
            raise ValueError("IntervalMutationNormal needs at least one float or int parameter")
        if not 1 <= points <= len(self.numeric):
            raise ValueError(f"points must be in [1, {len(self.numeric)}], got {points!r}")
        if sigma_factor <= 0:
            raise ValueError(f"sigma_factor must be > 0, got {sigma_factor!r}")
        self.sigma_factor, self.points = float(sigma_factor), points

    def __call__(self, inds):
        values = dict(inds[0])
        if self.apply():
            for pos in distinct_indices(self.rng, len(self.numeric), self.points):
                name = self.numeric[pos]
                param = self.space.params[name]
                step = self.rng.normal(0.0, self.sigma_factor * (param.high - param.low))
                values[name] = param.clip(values[name] + step)
        return _fresh(values)


class IntervalMutationMultiScale(Stochastic):
    """Adds Gaussian noise on a random scale to numeric traits, clipped to the limits.

    Each call draws one scale factor ``f = sigma_factor * 10**(-decades * u)`` with ``u``
    uniform in [0, 1) (log-uniform over ``decades`` decades below ``sigma_factor``) and adds
    N(0, (f * (high - low))^2) to ``points`` numeric traits (all of them when ``points`` is
    None). Coarse steps keep exploring while fine ones refine a good point to many digits, with
    no schedule to tune to the budget; moving all traits together follows narrow, curved valleys
    that single-trait steps cross only by luck.
    """

    def __init__(
        self,
        limits,
        sigma_factor: float = 0.05,
        decades: float = 4.0,
        points: int | None = None,
        probability: float = 1.0,
        rng=None,
    ):
        super().__init__(1, 1, probability, rng)
        self.space = SearchSpace(limits)
        self.numeric = self.space.numeric_names()
        if not self.numeric:
            raise ValueError("IntervalMutationMultiScale needs at least one float or int parameter")
        points = len(self.numeric) if points is None else points
        if not isinstance(points, int) or not 1 <= points <= len(self.numeric):
            raise ValueError(f"points must be None or an int in [1, {len(self.numeric)}]")
        if not sigma_factor > 0:
            raise ValueError(f"sigma_factor must be > 0, got {sigma_factor!r}")
        if not decades >= 0:
            raise ValueError(f"decades must be >= 0, got {decades!r}")
        self.sigma_factor, self.decades, self.points = float(sigma_factor), float(decades), points
        self._widths = {
            n: self.space.params[n].high - self.space.params[n].low for n in self.numeric
        }

    def scale(self) -> float:
        """One draw of the scale factor ``sigma_factor * 10**(-decades * u)``."""
        return self.sigma_factor * 10.0 ** (-self.decades * self.rng.random())

    def __call__(self, inds):
        values = dict(inds[0])
        if self.apply():
            factor = self.scale()
            names = self.numeric
            if self.points < len(names):
                names = [names[i] for i in distinct_indices(self.rng, len(names), self.points)]
            steps = self.rng.normal(0.0, factor, size=len(names))
            for name, step in zip(names, steps):
                value = values[name] + float(step) * self._widths[name]
                values[name] = self.space.params[name].clip(value)
        return _fresh(values)


class CrossoverUniform(Stochastic):
    """With ``probability``, each trait comes from the first parent with probability
    ``relative_parent_contribution`` and from the second otherwise; else a copy of the first."""

    def __init__(self, probability: float = 0.7, relative_parent_contribution=0.5, rng=None):
        super().__init__(2, 1, probability, rng)
        if not 0.0 <= relative_parent_contribution <= 1.0:
            raise ValueError("relative_parent_contribution must be in [0, 1]")
        self.contribution = float(relative_parent_contribution)

    def __call__(self, inds):
        first = dict(inds[0])
        if len(inds) < 2 or not self.apply():
            return _fresh(first)
        second = inds[1]
        take_first = self.rng.random(len(first)) < self.contribution
        return _fresh({k: (v if t else second[k]) for (k, v), t in zip(first.items(), take_first)})


class CrossoverMulti(Stochastic):
    """With ``probability``, each trait comes from a uniformly chosen parent (any number)."""

    def __init__(self, probability: float = 0.7, rng=None):
        super().__init__(-1, 1, probability, rng)

    def __call__(self, inds):
        first = dict(inds[0])
        if len(inds) < 2 or not self.apply():
            return _fresh(first)
        donors = self.rng.integers(len(inds), size=len(first))
        return _fresh({k: inds[int(d)][k] for k, d in zip(first, donors)})


def distinct_indices(rng: np.random.Generator, n: int, k: int) -> list[int]:
    """``k`` distinct indices drawn uniformly from range(n), in random order.

    One or two draws for k <= 2 (what the default propagator needs on every evaluation);
    ``rng.choice`` without replacement costs far more for such small k.
    """
    if k == 1:
        return [int(rng.integers(n))]
    if k == 2:
        first, second = int(rng.integers(n)), int(rng.integers(n - 1))
        return [first, second + (second >= first)]
    return [int(i) for i in rng.choice(n, size=k, replace=False)] if k > 0 else []


def _different_value(param, old, rng: np.random.Generator):
    """A uniformly random value of ``param``; for a categorical a different choice if any."""
    if isinstance(param, Categorical) and len(param.choices) > 1:
        others = [c for c in param.choices if c != old]
        return others[int(rng.integers(len(others)))]
    if isinstance(param, Float | Int):
        return param.sample(rng)
    return old


def get_default_propagator(
    pop_size: int,
    limits,
    crossover_prob: float = 0.7,
    mutation_prob: float = 0.4,
    random_init_prob: float = 0.1,
    sigma_factor: float = 0.05,
    rng=None,
    sigma_decades: float = 4.0,
) -> Propagator:
    """The genetic algorithm used unless another propagator is given.

    Uniform random individuals until ``pop_size`` exist; then: the ``pop_size`` best, two of
    them at random, uniform crossover (with ``crossover_prob``), point mutation of one trait
    (with ``mutation_prob``), a Gaussian step of every numeric trait on a log-uniform scale
    between ``sigma_factor * 10**-sigma_decades`` and ``sigma_factor`` of each range (see
    IntervalMutationMultiScale; ``sigma_decades=0`` gives a fixed scale), and a random restart
    (with ``random_init_prob``).
    """
    from .base import Compose, Conditional, as_rng

    if not isinstance(pop_size, int) or pop_size < 2:
        raise ValueError(f"pop_size must be an int >= 2, got {pop_size!r}")
    rng = as_rng(rng)
    space = SearchSpace(limits)
    steps: list[Propagator] = [
        SelectMin(pop_size),
        SelectUniform(2, rng=rng),
        CrossoverUniform(probability=crossover_prob, rng=rng),
        PointMutation(space, probability=mutation_prob, rng=rng),
    ]
    if space.numeric_names():
        steps.append(IntervalMutationMultiScale(space, sigma_factor, sigma_decades, rng=rng))
    steps.append(InitUniform(space, parents=1, probability=random_init_prob, rng=rng))
    return Conditional(pop_size, Compose(steps), InitUniform(space, rng=rng))
