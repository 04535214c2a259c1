"""Propagator building blocks: the base class and the ways to combine propagators."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence

import numpy as np

from ..population import Individual


def as_rng(rng: int | np.random.Generator | None) -> np.random.Generator:
    """A NumPy Generator from a seed, a Generator (used as is) or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, int | np.integer | Sequence):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be an int seed, a numpy Generator or None, got {type(rng).__name__}")


class Propagator:
    """Turns ``parents`` individuals into ``offspring`` new ones.

    ``parents == -1`` takes any number. ``__call__`` takes a sequence (a worker hands in its
    active population, best first) and returns a list, or a single Individual when
    ``offspring == 1``.
    """

    def __init__(self, parents: int = -1, offspring: int = -1, rng=None):
        if not isinstance(parents, int) or parents < -1:
            raise ValueError(f"parents must be an int >= -1, got {parents!r}")
        if not isinstance(offspring, int) or offspring == 0 or offspring < -1:
            raise ValueError(f"offspring must be a positive int or -1, got {offspring!r}")
        self.parents, self.offspring = parents, offspring
        self.rng = as_rng(rng)

    def __call__(self, inds: Sequence[Individual]) -> list[Individual] | Individual:
        raise NotImplementedError

    def _one_or_list(self, out: list[Individual]):
        return out[0] if self.offspring == 1 else out


class Stochastic(Propagator):
    """A propagator applied with ``probability``; otherwise the parents pass unchanged."""

    def __init__(self, parents=-1, offspring=-1, probability: float = 1.0, rng=None):
        super().__init__(parents, offspring, rng)
        if not 0.0 <= float(probability) <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {probability!r}")
        self.probability = float(probability)

    def apply(self) -> bool:
        """Whether to act this time: always at probability 1, else one draw from ``rng``."""
        return self.probability >= 1.0 or self.rng.random() < self.probability


class Compose(Propagator):
    """Applies propagators in order; each one's offspring are the next one's parents."""

    def __init__(self, propagators: Sequence[Propagator]):
        props = list(propagators)
        if not props or not all(isinstance(p, Propagator) for p in props):
            raise TypeError("propagators must be a non-empty list of Propagator objects")
        for before, after in itertools.pairwise(props):
            if after.parents not in (-1, 0) and before.offspring not in (-1, after.parents):
                raise ValueError(
                    f"{type(before).__name__} makes {before.offspring} offspring but "
                    f"{type(after).__name__} needs {after.parents} parents"
                )
        super().__init__(props[0].parents, props[-1].offspring)
        self.propagators = props

    def __call__(self, inds):
        out = inds
        for prop in self.propagators:
            out = prop(out)
            if isinstance(out, Individual):
                out = [out]
        return self._one_or_list(list(out))


class Conditional(Propagator):
    """``true_prop`` once at least ``pop_size`` individuals exist, ``false_prop`` before that."""

    def __init__(self, pop_size: int, true_prop: Propagator, false_prop: Propagator):
        if not isinstance(pop_size, int) or pop_size < 1:
            raise ValueError(f"pop_size must be a positive int, got {pop_size!r}")
        if true_prop.offspring != false_prop.offspring:
            raise ValueError("true_prop and false_prop must make the same number of offspring")
        super().__init__(-1, true_prop.offspring)
        self.pop_size, self.true_prop, self.false_prop = pop_size, true_prop, false_prop

    def __call__(self, inds):
        return self.true_prop(inds) if len(inds) >= self.pop_size else self.false_prop(inds)


def smallest(inds: Sequence[Individual], n: int) -> list[Individual]:
    """The ``n`` lowest-loss individuals; O(n) on a worker's ranked view."""
    if getattr(inds, "sorted_by_loss", False):
        return list(inds[:n])
    return heapq.nsmallest(n, inds, key=lambda i: i.loss)


def largest(inds: Sequence[Individual], n: int) -> list[Individual]:
    """The ``n`` highest-loss individuals, worst first; O(n) on a worker's ranked view."""
    if getattr(inds, "sorted_by_loss", False):
        return list(inds[max(len(inds) - n, 0) :])[::-1]
    return heapq.nlargest(n, inds, key=lambda i: i.loss)
