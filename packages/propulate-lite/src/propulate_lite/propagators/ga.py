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
        n = len(inds)
        k = min(self.offspring, n)
        picks = self.rng.choice(n, size=k, replace=False) if k else []
        return [inds[int(i)] for i in picks]


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
        for pos in self.rng.choice(len(names), size=count, replace=False):
            name = names[int(pos)]
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
            for pos in self.rng.choice(len(self.numeric), size=self.points, replace=False):
                name = self.numeric[int(pos)]
                param = self.space.params[name]
                step = self.rng.normal(0.0, self.sigma_factor * (param.high - param.low))
                values[name] = param.clip(values[name] + step)
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
) -> Propagator:
    """Uniform random individuals until ``pop_size`` exist; then: the ``pop_size`` best, two of
    them at random, uniform crossover (with ``crossover_prob``), point mutation (with
    ``mutation_prob``), Gaussian interval mutation of a numeric trait, and a random restart
    (with ``random_init_prob``)."""
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
        steps.append(IntervalMutationNormal(space, sigma_factor, probability=1.0, rng=rng))
    steps.append(InitUniform(space, parents=1, probability=random_init_prob, rng=rng))
    return Conditional(pop_size, Compose(steps), InitUniform(space, rng=rng))
