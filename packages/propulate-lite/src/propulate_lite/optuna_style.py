"""An Optuna-style front end: a study hands out trials with ``suggest_float/int/categorical``.

The first trial defines the search space (values drawn uniformly as they are suggested); later
trials are bred by the evolutionary propagators from the results so far. The space must stay
the same in every trial (no conditional parameters).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

from .asktell import AskTell
from .population import Individual
from .propagators import as_rng
from .space import Categorical, Float, Int

log = logging.getLogger(__name__)


class Trial:
    """One evaluation: answers ``suggest_*`` from a bred individual (or draws the first one)."""

    def __init__(self, study: Study, number: int, individual: Individual | None):
        self.study, self.number, self._ind = study, number, individual
        self.params: dict[str, Any] = {}
        self.value: float | None = None

    def _suggest(self, name: str, param) -> Any:
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        known = self.study._params.get(name)
        if self._ind is None:  # defining the space
            if known is not None and known != param:
                raise ValueError(f"parameter {name!r} suggested twice with different ranges")
            self.study._params[name] = param
            value = param.sample(self.study._rng)
        else:
            if known != param:
                raise ValueError(
                    f"parameter {name!r} differs from the first trial's search space "
                    "(conditional or changing spaces are not supported)"
                )
            value = self._ind[name]
        self.params[name] = value
        return value

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        """A float in [low, high] for the parameter ``name`` (log-uniform with ``log``).

        The first trial draws it at random; later trials return the bred individual's value.

        Raises
        ------
        ValueError
            If the range differs from the one the first trial gave ``name``.
        """
        return self._suggest(name, Float(float(low), float(high), log))

    def suggest_int(self, name: str, low: int, high: int) -> int:
        """An int in low … high (both included) for ``name``; otherwise as ``suggest_float``."""
        return self._suggest(name, Int(int(low), int(high)))

    def suggest_categorical(self, name: str, choices: Sequence) -> Any:
        """One of ``choices`` for ``name``; otherwise as ``suggest_float``."""
        return self._suggest(name, Categorical(tuple(choices)))


class Study:
    """``optimize(objective, n_trials)`` with ``objective(trial) -> float``, like Optuna's."""

    def __init__(self, direction: str = "minimize", pop_size: int = 8, seed=None):
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
        self.direction, self.pop_size = direction, pop_size
        self._rng = as_rng(seed)
        self._params: dict[str, Any] = {}
        self._engine: AskTell | None = None
        self._defining = False  # a space-defining trial is out and not told yet
        self.trials: list[Trial] = []

    def ask(self) -> Trial:
        """A new trial: the first one to finish defines the search space, later ones carry an
        individual bred from the results told so far (RuntimeError while a space-defining trial
        has not been told)."""
        ind = None
        if self._engine is not None:
            ind = self._engine.ask()
        elif self._defining:
            raise RuntimeError("tell() the first trial before asking for another")
        else:
            self._defining = True
        trial = Trial(self, len(self.trials), ind)
        self.trials.append(trial)
        return trial

    def tell(self, trial: Trial, value: float | None) -> None:
        """Record the objective ``value`` of ``trial``; None or NaN marks it failed."""
        trial.value = None if value is None else float(value)
        if self._engine is None:
            self._defining = False
            if trial.value is None or math.isnan(trial.value) or not self._params:
                # a failed space-defining trial may have suggested only part of the space:
                # forget it, and let the next trial define the space afresh
                trial.value = None
                self._params = {}
                return
            self._engine = AskTell(self._params, pop_size=self.pop_size, seed=self._rng)
        ind = trial._ind or Individual({n: trial.params[n] for n in self._params})
        if trial._ind is None:
            ind.uid = (1, 0, trial.number)  # the space-defining trial, not bred by the engine
        sign = -1.0 if self.direction == "maximize" else 1.0
        loss = math.nan if trial.value is None else sign * trial.value
        self._engine.tell(ind, loss)

    def optimize(self, objective: Callable[[Trial], float], n_trials: int) -> None:
        """Ask, evaluate with ``objective`` and tell ``n_trials`` trials in turn.

        An exception raised by ``objective`` is logged and the trial counts as failed.
        """
        if not isinstance(n_trials, int) or n_trials < 1:
            raise ValueError(f"n_trials must be a positive int, got {n_trials!r}")
        for _ in range(n_trials):
            trial = self.ask()
            try:
                value = objective(trial)
            except Exception:
                log.warning("trial %d failed", trial.number, exc_info=True)
                value = None
            self.tell(trial, value)

    @property
    def search_space(self) -> dict[str, Any]:
        """The space the first trial defined, as a ``limits`` dict for a Propulator."""
        return dict(self._params)

    @property
    def best_trial(self) -> Trial:
        """The finished trial with the best value for ``direction`` (ValueError if none)."""
        done = [t for t in self.trials if t.value is not None and not math.isnan(t.value)]
        if not done:
            raise ValueError("no trial has finished yet")
        pick = max if self.direction == "maximize" else min
        return pick(done, key=lambda t: t.value)

    @property
    def best_value(self) -> float:
        """The value of ``best_trial``."""
        return self.best_trial.value

    @property
    def best_params(self) -> dict[str, Any]:
        """The parameters of ``best_trial`` (a copy)."""
        return dict(self.best_trial.params)


def create_study(direction: str = "minimize", pop_size: int = 8, seed=None) -> Study:
    """A new Study (``direction`` "minimize" or "maximize"), as ``optuna.create_study``."""
    return Study(direction, pop_size, seed)


def objective_as_loss(objective: Callable[[Trial], float]) -> Callable[[Individual], float]:
    """Wrap an Optuna-style objective as a Propulator loss (use ``Study.search_space`` as limits)."""

    def loss(params: Individual) -> float:
        return float(objective(_FixedTrial(params)))

    return loss


class _FixedTrial:
    """A trial whose values are fixed (an individual bred by a Propulator)."""

    def __init__(self, params: Individual):
        self._params, self.params = params, {}

    def _get(self, name: str):
        if name not in self._params:
            raise ValueError(f"parameter {name!r} is not in the search space")
        self.params[name] = self._params[name]
        return self.params[name]

    def suggest_float(self, name, low, high, *, log=False):
        return self._get(name)

    def suggest_int(self, name, low, high):
        return self._get(name)

    def suggest_categorical(self, name, choices):
        return self._get(name)
