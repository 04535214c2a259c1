"""Particle swarm propagators: each worker moves its particles; the swarm shares the global best.

A particle remembers the individual it bred last; when its turn comes again, that individual
has been evaluated (the worker evaluates the same object before breeding again), so the personal
best is updated without scanning the history. The global best is the best of the population
handed in, which holds every worker's evaluations. Only float parameters are supported.
"""

from __future__ import annotations

import math

import numpy as np

from ..population import Individual
from ..space import Float, SearchSpace
from .base import Propagator


class BasicPSO(Propagator):
    """v <- w·v + c1·r1·(p − x) + c2·r2·(g − x); x <- x + v; a coordinate that leaves its
    interval is mirrored back in and its velocity reversed with a random damping.

    ``w`` inertia, ``c1`` cognitive (personal best p), ``c2`` social (global best g: the best
    individual the worker knows); r1, r2 are uniform in [0, 1) per coordinate. A worker moves
    its ``particles`` particles in turn, one per call (1, Propulate's choice, makes the swarm
    the set of workers; more give a swarm on a single process). A particle's first position is
    uniform and its velocity uniform in ±``v_init`` times each interval's width.
    """

    def __init__(
        self,
        limits,
        inertia=0.729,
        c_cognitive=1.49445,
        c_social=1.49445,
        v_init=0.1,
        particles: int = 1,
        rng=None,
    ):
        super().__init__(-1, 1, rng)
        self.space = SearchSpace(limits)
        if not all(isinstance(p, Float) and not p.log for p in self.space.params.values()):
            raise ValueError("particle swarm propagators need float parameters (linear) only")
        if not isinstance(particles, int) or particles < 1:
            raise ValueError(f"particles must be a positive int, got {particles!r}")
        self.low = np.array([p.low for p in self.space.params.values()])
        self.high = np.array([p.high for p in self.space.params.values()])
        self.w, self.c1, self.c2, self.v_init = inertia, c_cognitive, c_social, v_init
        shape = (particles, self.low.size)
        self.position = np.zeros(shape)
        self.velocity = np.zeros(shape)
        self.best_position = np.zeros(shape)
        self.best_loss = np.full(particles, math.inf)
        self._last: list[Individual | None] = [None] * particles
        self._turn = 0

    def _remember_last(self, k: int) -> None:
        last = self._last[k]
        if last is not None and not last.failed and last.loss < self.best_loss[k]:
            self.best_loss[k], self.best_position[k] = last.loss, self.position[k]

    def _velocity(self, k: int, personal: np.ndarray, social: np.ndarray) -> np.ndarray:
        r1, r2 = self.rng.random(self.low.size), self.rng.random(self.low.size)
        x = self.position[k]
        return (
            self.w * self.velocity[k] + self.c1 * r1 * (personal - x) + self.c2 * r2 * (social - x)
        )

    def __call__(self, inds):
        k = self._turn % len(self.best_loss)
        self._turn += 1
        self._remember_last(k)
        width = self.high - self.low
        if self._last[k] is None:
            self.position[k] = self.rng.uniform(self.low, self.high)
            self.velocity[k] = self.rng.uniform(-self.v_init, self.v_init, self.low.size) * width
        else:
            personal = (
                self.best_position[k] if math.isfinite(self.best_loss[k]) else self.position[k]
            )
            best = _global_best(inds)
            social = self.space.encode(best) if best is not None else personal
            self.velocity[k] = self._clamp(self._velocity(k, personal, social))
            self.position[k] = self._bounce(k, self.position[k] + self.velocity[k])
        values = self.space.decode(self.position[k])
        self._last[k] = Individual({n: self.space.params[n].clip(v) for n, v in values.items()})
        return self._last[k]

    def _clamp(self, velocity: np.ndarray) -> np.ndarray:
        return velocity

    def _bounce(self, k: int, moved: np.ndarray) -> np.ndarray:
        """Mirror a coordinate that left its interval back inside; its velocity turns around,
        damped by a uniform random factor (a wall neither traps nor keeps pushing a particle)."""
        out = (moved < self.low) | (moved > self.high)
        if out.any():
            mirrored = np.where(moved < self.low, 2 * self.low - moved, 2 * self.high - moved)
            moved = np.where(out, np.clip(mirrored, self.low, self.high), moved)
            self.velocity[k][out] *= -self.rng.random(int(out.sum()))
        return moved


class VelocityClampingPSO(BasicPSO):
    """BasicPSO with each velocity component clipped to ±``v_limit`` times the interval width."""

    def __init__(
        self,
        limits,
        inertia=0.729,
        c_cognitive=1.49445,
        c_social=1.49445,
        v_limit=0.2,
        v_init=0.1,
        particles: int = 1,
        rng=None,
    ):
        super().__init__(limits, inertia, c_cognitive, c_social, v_init, particles, rng)
        if v_limit <= 0:
            raise ValueError(f"v_limit must be > 0, got {v_limit!r}")
        self.v_limit = v_limit

    def _clamp(self, velocity):
        bound = self.v_limit * (self.high - self.low)
        return np.clip(velocity, -bound, bound)


class ConstrictionPSO(BasicPSO):
    """Clerc's constriction: v <- χ(v + c1·r1·(p − x) + c2·r2·(g − x)),
    χ = 2 / |2 − φ − √(φ² − 4φ)| with φ = c1 + c2 > 4."""

    def __init__(
        self, limits, c_cognitive=2.05, c_social=2.05, v_init=0.1, particles: int = 1, rng=None
    ):
        phi = c_cognitive + c_social
        if phi <= 4:
            raise ValueError(f"c_cognitive + c_social must exceed 4, got {phi!r}")
        self.chi = 2.0 / abs(2.0 - phi - math.sqrt(phi * phi - 4.0 * phi))
        super().__init__(limits, 1.0, c_cognitive, c_social, v_init, particles, rng)

    def _velocity(self, k, personal, social):
        return self.chi * super()._velocity(k, personal, social)


class CanonicalPSO(ConstrictionPSO):
    """The canonical swarm: constriction with c1 = c2 = 2.05 (χ ≈ 0.7298) and velocities clipped
    to the interval width."""

    def __init__(self, limits, v_init=0.1, particles: int = 1, rng=None):
        super().__init__(limits, 2.05, 2.05, v_init, particles, rng)

    def _clamp(self, velocity):
        bound = self.high - self.low
        return np.clip(velocity, -bound, bound)


def _global_best(inds) -> Individual | None:
    if not len(inds):
        return None
    if getattr(inds, "sorted_by_loss", False):
        return inds[0]
    return min(inds, key=lambda i: i.loss)
