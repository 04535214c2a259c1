"""Early stopping: models that cancel an evaluation whose intermediate losses look unpromising.

A loss function that is a generator yields intermediate losses (one per epoch, say); after each
one the worker asks its surrogate whether to stop. A cancelled evaluation keeps its last value.
"""

from __future__ import annotations

import math


class Surrogate:
    """Base: never cancels. ``start`` begins an evaluation, ``cancel`` sees each intermediate
    loss, ``finish`` sees the final loss of an evaluation that ran to the end."""

    def start(self) -> None:
        """Begin a new evaluation with an empty curve."""
        self.curve: list[float] = []

    def cancel(self, loss: float) -> bool:
        """Append an intermediate ``loss`` to the curve; True to stop the evaluation now (the
        base class never does)."""
        self.curve.append(float(loss))
        return False

    def finish(self, loss: float) -> None:
        """Take note of the final ``loss`` of an evaluation that ran to the end (the base class
        ignores it)."""
        pass


class StaticSurrogate(Surrogate):
    """Cancels at step t when the loss exceeds the best finished curve's loss at step t by more
    than ``margin`` times its magnitude (the first complete evaluation sets the baseline)."""

    def __init__(self, margin: float = 0.8):
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin!r}")
        self.margin = float(margin)
        self.baseline: list[float] = []
        self.best_final = math.inf
        self.curve = []

    def cancel(self, loss: float) -> bool:
        """Append ``loss`` as step t; True when it exceeds the baseline's loss at step t by more
        than ``margin`` times that loss's magnitude (never beyond the baseline's length)."""
        super().cancel(loss)
        t = len(self.curve) - 1
        if t >= len(self.baseline):
            return False
        ref = self.baseline[t]
        return loss > ref + self.margin * abs(ref)

    def finish(self, loss: float) -> None:
        """Make this curve the baseline when its final ``loss`` is the best so far."""
        if loss < self.best_final:
            self.best_final, self.baseline = loss, list(self.curve)


class LogLinearSurrogate(Surrogate):
    """Fits log(loss) = a + b·log(step) to the curve so far and cancels when the extrapolated
    loss at the final step (the longest finished curve) is worse than the best final loss.

    Needs positive losses; values <= 0 are never cancelled. ``min_steps`` points are needed
    before the first prediction.
    """

    def __init__(self, min_steps: int = 3, tolerance: float = 0.0):
        if min_steps < 2:
            raise ValueError(f"min_steps must be >= 2, got {min_steps!r}")
        self.min_steps, self.tolerance = int(min_steps), float(tolerance)
        self.horizon = 0
        self.best_final = math.inf
        self.curve = []

    def predict_final(self) -> float | None:
        """The extrapolated loss at step ``horizon``, or None when it cannot be predicted."""
        n = len(self.curve)
        if n < self.min_steps or self.horizon <= n or min(self.curve) <= 0:
            return None
        xs = [math.log(i + 1) for i in range(n)]
        ys = [math.log(v) for v in self.curve]
        mx, my = sum(xs) / n, sum(ys) / n
        sxx = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
        return math.exp(my + slope * (math.log(self.horizon) - mx))

    def cancel(self, loss: float) -> bool:
        """Append ``loss``; True when ``predict_final()`` exceeds the best final loss by more
        than ``tolerance`` times its magnitude."""
        super().cancel(loss)
        predicted = self.predict_final()
        if predicted is None or not math.isfinite(self.best_final):
            return False
        return predicted > self.best_final + self.tolerance * abs(self.best_final)

    def finish(self, loss: float) -> None:
        """Extend the horizon to this curve's length and keep the lowest final loss."""
        self.horizon = max(self.horizon, len(self.curve))
        self.best_final = min(self.best_final, loss)
