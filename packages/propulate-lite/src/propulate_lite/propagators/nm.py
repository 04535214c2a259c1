"""Nelder-Mead as a propagator: each worker runs its own simplex search, one point per call.

The simplex method is sequential, so every worker walks its own simplex: a call returns the next
point the method wants evaluated, and the next call reads that point's loss (the worker evaluates
the same Individual object before breeding again). A simplex starts around the best individual
the worker knows (a uniform random point when it knows none) and restarts there when it has
shrunk below ``restart_tol``, so workers profit from each other's finds.

Coordinates are scaled to the unit cube. A point outside it counts as infinitely bad without
being evaluated (an extreme barrier), so the simplex never flattens against a wall. The coefficients are the
dimension-adaptive ones of Gao and Han (2012): reflection 1, expansion 1 + 2/n, contraction
0.75 - 1/(2n), shrink 1 - 1/n (the classic 1, 2, 1/2, 1/2 for n <= 2).
"""

from __future__ import annotations

import math
from collections.abc import Generator

import numpy as np

from ..population import Individual
from ..space import Float, SearchSpace
from .base import Propagator


def coefficients(n: int) -> tuple[float, float, float, float]:
    """(reflection, expansion, contraction, shrink) for dimension ``n``."""
    n = max(n, 2)  # in 1-D the adaptive rule would shrink to a point; use the classic values
    return 1.0, 1.0 + 2.0 / n, 0.75 - 1.0 / (2.0 * n), 1.0 - 1.0 / n


class NelderMead(Propagator):
    """One Nelder-Mead step per call on this worker's simplex (float parameters only).

    ``start_step`` is the initial simplex edge as a fraction of each interval's width;
    ``restart_tol`` the simplex size (in the unit cube) below which the search restarts around
    the best known individual, with the edge halved each restart (down to ``restart_tol``).
    """

    def __init__(self, limits, start_step: float = 0.1, restart_tol: float = 1e-8, rng=None):
        super().__init__(-1, 1, rng)
        self.space = SearchSpace(limits)
        if not all(isinstance(p, Float) and not p.log for p in self.space.params.values()):
            raise ValueError("NelderMead needs float parameters (linear scale) only")
        if not 0.0 < float(start_step) <= 0.5:
            raise ValueError(f"start_step must be in (0, 0.5], got {start_step!r}")
        if not float(restart_tol) > 0.0:
            raise ValueError(f"restart_tol must be > 0, got {restart_tol!r}")
        self.start_step, self.restart_tol = float(start_step), float(restart_tol)
        self.low = np.array([p.low for p in self.space.params.values()])
        self.width = np.array([p.high - p.low for p in self.space.params.values()])
        self.restarts = 0
        self._inds = ()
        self._last: Individual | None = None
        self._search = self._walk()
        self._pending: np.ndarray | None = None

    def __call__(self, inds):
        self._inds = inds
        if self._pending is None:  # the first call: start around the best known individual
            self._pending = next(self._search)
        elif self._last is not None:  # the loss of the point handed out last time
            loss = self._last.loss
            loss = loss if math.isfinite(loss) and not self._last.failed else math.inf
            self._pending = self._search.send(loss)
        self._last = _individual(self.space, self.low + self._pending * self.width)
        return self._last

    def _start(self) -> np.ndarray:
        inds = self._inds
        if len(inds):
            best = inds[0] if getattr(inds, "sorted_by_loss", False) else _best(inds)
            return (self.space.encode(best) - self.low) / self.width
        return self.rng.random(len(self.space))

    def _walk(self) -> Generator[np.ndarray, float, None]:
        """The simplex method as a coroutine: yields a point, receives its loss."""
        n = len(self.space)
        alpha, gamma, rho, shrink = coefficients(n)
        step = self.start_step
        while True:
            base = self._start()
            simplex = [base]
            for axis in range(n):
                vertex = base.copy()
                vertex[axis] += step if base[axis] + step <= 1.0 else -step
                simplex.append(vertex)
            losses = []
            for vertex in simplex:
                losses.append((yield vertex))
            while True:
                order = np.argsort(losses, kind="stable")
                simplex = [simplex[i] for i in order]
                losses = [losses[i] for i in order]
                if _diameter(simplex) < self.restart_tol:
                    break
                centroid = np.mean(simplex[:-1], axis=0)
                worst = simplex[-1]
                reflected = centroid + alpha * (centroid - worst)
                f_r = (yield reflected) if _inside(reflected) else math.inf
                if losses[0] <= f_r < losses[-2]:
                    simplex[-1], losses[-1] = reflected, f_r
                    continue
                if f_r < losses[0]:
                    expanded = centroid + gamma * (reflected - centroid)
                    f_e = (yield expanded) if _inside(expanded) else math.inf
                    if f_e < f_r:
                        simplex[-1], losses[-1] = expanded, f_e
                    else:
                        simplex[-1], losses[-1] = reflected, f_r
                    continue
                if f_r < losses[-1]:  # outside contraction
                    contracted = centroid + rho * (reflected - centroid)
                    f_c = (yield contracted) if _inside(contracted) else math.inf
                    accept = f_c <= f_r
                else:  # inside contraction
                    contracted = centroid + rho * (worst - centroid)  # inside the simplex
                    f_c = yield contracted
                    accept = f_c < losses[-1]
                if accept:
                    simplex[-1], losses[-1] = contracted, f_c
                    continue
                for i in range(1, n + 1):  # shrink towards the best vertex
                    simplex[i] = simplex[0] + shrink * (simplex[i] - simplex[0])
                    losses[i] = yield simplex[i]
            self.restarts += 1
            step = max(step / 2, self.restart_tol)


def _inside(point: np.ndarray) -> bool:
    return bool(np.all((point >= 0.0) & (point <= 1.0)))


def _diameter(simplex: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(v - simplex[0]))) for v in simplex[1:])


def _best(inds) -> Individual:
    return min(inds, key=lambda i: i.loss)


def _individual(space: SearchSpace, vector: np.ndarray) -> Individual:
    values = space.decode(vector)
    return Individual({n: space.params[n].clip(v) for n, v in values.items()})
