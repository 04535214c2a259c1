"""Ask/tell optimisation in one process, without MPI: ``ask()`` a point, ``tell()`` its loss."""

from __future__ import annotations

import math

from .population import Individual, Population
from .propagators import Propagator, as_rng, get_default_propagator
from .space import SearchSpace


class AskTell:
    """Breeds candidates from every told result with the same propagators as a Propulator.

    ``propagator`` defaults to ``get_default_propagator(pop_size, limits, rng=seed)``.
    A NaN loss (or ``tell(ind, None)``) records the candidate as failed.
    """

    def __init__(self, limits, propagator: Propagator | None = None, pop_size: int = 8, seed=None):
        self.space = SearchSpace(limits)
        rng = as_rng(seed)
        self.propagator = propagator or get_default_propagator(pop_size, self.space, rng=rng)
        if not isinstance(self.propagator, Propagator):
            raise TypeError(f"propagator must be a Propagator, got {type(propagator).__name__}")
        self.population = Population()
        self._asked = 0

    def ask(self) -> Individual:
        """The next candidate, bred by the propagator from the successful results told so far.

        It is unevaluated (loss NaN) and its ``uid`` is (0, 0, i) for the i-th call; when the
        propagator makes several offspring, only the first is used.
        """
        child = self.propagator(self.population.active())
        if isinstance(child, list):
            child = child[0]
        child.uid, child.generation = (0, 0, self._asked), self._asked
        self._asked += 1
        return child

    def tell(self, ind: Individual, loss: float | None) -> None:
        """Record the ``loss`` of ``ind``; None or NaN marks it failed (it then breeds nothing).

        Raises
        ------
        TypeError
            If ``ind`` is not an Individual.
        ValueError
            If ``ind`` was already told.
        """
        if not isinstance(ind, Individual):
            raise TypeError(f"ind must be an Individual from ask(), got {type(ind).__name__}")
        if ind.handle in self.population:
            raise ValueError(f"ind {ind.uid} was already told")
        value = math.nan if loss is None else float(loss)
        ind.loss, ind.failed = value, math.isnan(value)
        ind.active = not ind.failed
        self.population.add(ind)

    @property
    def best(self) -> Individual | None:
        """The told individual with the lowest loss; None before the first successful tell."""
        best = self.population.best(1)
        return best[0] if best else None
