"""Search spaces: float intervals, integer intervals and categorical choices, parsed from a dict."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Float:
    """A continuous interval ``[low, high]``; ``log=True`` samples uniformly in log space."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self):
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"Float limits must be finite with low < high, got {self!r}")
        if self.log and self.low <= 0:
            raise ValueError(f"Float(log=True) needs low > 0, got {self!r}")

    def sample(self, rng: np.random.Generator) -> float:
        """A value drawn uniformly from [low, high] (log-uniformly with ``log``)."""
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def contains(self, value: Any) -> bool:
        """True for a Python float (exactly that type) within [low, high]."""
        return type(value) is float and self.low <= value <= self.high

    def clip(self, value: float) -> float:
        """``value`` clamped to [low, high], as a float."""
        return float(min(max(value, self.low), self.high))

    def encode(self, value: Any) -> float:
        """The value as a float (its coordinate for the propagators and checkpoints)."""
        return float(value)

    def decode(self, number: float) -> float:
        """The inverse of ``encode``: the number as a float."""
        return float(number)


@dataclass(frozen=True)
class Int:
    """An integer interval ``[low, high]``, both ends included."""

    low: int
    high: int

    def __post_init__(self):
        if self.low >= self.high:
            raise ValueError(f"Int limits need low < high, got {self!r}")

    def sample(self, rng: np.random.Generator) -> int:
        """An int drawn uniformly from low … high, both included."""
        return int(rng.integers(self.low, self.high + 1))

    def contains(self, value: Any) -> bool:
        """True for a Python int (exactly that type, so not a bool) within [low, high]."""
        return type(value) is int and self.low <= value <= self.high

    def clip(self, value: float) -> int:
        """``value`` rounded to the nearest int (halves to even) and clamped to [low, high]."""
        return int(min(max(round(value), self.low), self.high))

    def encode(self, value: Any) -> float:
        """The int as a float."""
        return float(value)

    def decode(self, number: float) -> int:
        """The nearest int to ``number`` (halves to even), not clamped."""
        return round(number)


@dataclass(frozen=True)
class Categorical:
    """A finite set of choices (strings, or an ordinal tuple of more than two ints)."""

    choices: tuple

    def __post_init__(self):
        if len(self.choices) < 1 or len(set(self.choices)) != len(self.choices):
            raise ValueError(f"Categorical choices must be non-empty and unique, got {self!r}")

    def sample(self, rng: np.random.Generator) -> Any:
        """One of the choices, each equally likely."""
        return self.choices[int(rng.integers(len(self.choices)))]

    def contains(self, value: Any) -> bool:
        """True when ``value`` equals one of the choices and has its exact type."""
        return any(type(value) is type(c) and value == c for c in self.choices)

    def encode(self, value: Any) -> float:
        """The index of ``value`` among the choices, as a float (ValueError if it is none)."""
        return float(self.choices.index(value))

    def decode(self, number: float) -> Any:
        """The choice at index ``round(number)``."""
        return self.choices[round(number)]


Parameter = Float | Int | Categorical


def parse_parameter(name: str, spec: Any) -> Parameter:
    """One entry of a ``limits`` dict: a parameter object, or a tuple typed by its first element."""
    if isinstance(spec, Float | Int | Categorical):
        return spec
    if not isinstance(spec, Sequence) or isinstance(spec, str) or len(spec) < 2:
        raise TypeError(
            f"limits[{name!r}] must be a tuple (low, high) or a tuple of choices, got {spec!r}"
        )
    first = spec[0]
    if isinstance(first, str):
        if not all(isinstance(c, str) for c in spec):
            raise TypeError(f"limits[{name!r}]: categorical choices must all be str, got {spec!r}")
        return Categorical(tuple(spec))
    if isinstance(first, bool):
        raise TypeError(f"limits[{name!r}]: bool is not a parameter type, got {spec!r}")
    if isinstance(first, int | np.integer):
        if not all(isinstance(c, int | np.integer) and not isinstance(c, bool) for c in spec):
            raise TypeError(f"limits[{name!r}]: an int range needs ints only, got {spec!r}")
        values = tuple(int(c) for c in spec)
        if len(values) == 2:
            return Int(*values)
        return Categorical(values)  # an ordinal tuple: exactly these values
    if isinstance(first, float | np.floating):
        if len(spec) != 2 or not all(isinstance(c, float | int | np.number) for c in spec):
            raise TypeError(f"limits[{name!r}]: a float interval is (low, high), got {spec!r}")
        return Float(float(spec[0]), float(spec[1]))
    raise TypeError(f"limits[{name!r}]: unsupported element type {type(first).__name__}")


class SearchSpace:
    """The ordered parameters of an optimisation; built from a ``limits`` dict."""

    def __init__(self, limits: Mapping[str, Any] | SearchSpace):
        if isinstance(limits, SearchSpace):
            self.params: dict[str, Parameter] = dict(limits.params)
            return
        if not isinstance(limits, Mapping) or not limits:
            raise TypeError(f"limits must be a non-empty dict name -> tuple, got {limits!r}")
        self.params = {}
        for name, spec in limits.items():
            if not isinstance(name, str) or not name or name.startswith("_"):
                raise ValueError(f"limits keys must be str not starting with '_', got {name!r}")
            self.params[name] = parse_parameter(name, spec)

    @property
    def names(self) -> list[str]:
        """The parameter names, in order."""
        return list(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __eq__(self, other) -> bool:
        return isinstance(other, SearchSpace) and self.params == other.params

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """One value per parameter, each drawn by that parameter's ``sample``."""
        return {name: p.sample(rng) for name, p in self.params.items()}

    def contains(self, values: Mapping[str, Any]) -> bool:
        """True when ``values`` has exactly these names, each of the right type and in range."""
        return list(values) == self.names and all(
            p.contains(values[n]) for n, p in self.params.items()
        )

    def numeric_names(self) -> list[str]:
        """The names of the Float and Int parameters, in order."""
        return [n for n, p in self.params.items() if isinstance(p, Float | Int)]

    def float_names(self) -> list[str]:
        """The names of the Float parameters, in order."""
        return [n for n, p in self.params.items() if isinstance(p, Float)]

    def encode(self, values: Mapping[str, Any]) -> np.ndarray:
        """Values as one float each (a categorical as its choice index)."""
        return np.array([p.encode(values[n]) for n, p in self.params.items()], dtype=np.float64)

    def decode(self, vector: Sequence[float]) -> dict[str, Any]:
        """The inverse of ``encode``: name -> value from one number per parameter (ValueError
        when the lengths differ)."""
        return {n: p.decode(v) for (n, p), v in zip(self.params.items(), vector, strict=True)}

    def to_config(self) -> dict[str, list]:
        """A JSON-able description, used to validate a checkpoint against the run resuming it."""
        out = {}
        for name, p in self.params.items():
            if isinstance(p, Float):
                out[name] = ["float", p.low, p.high, p.log]
            elif isinstance(p, Int):
                out[name] = ["int", p.low, p.high]
            else:
                out[name] = ["categorical", *p.choices]
        return out

    @classmethod
    def from_config(cls, config: Mapping[str, list]) -> SearchSpace:
        """The space that ``to_config`` described (e.g. the one stored in a checkpoint)."""
        limits: dict[str, Parameter] = {}
        for name, (kind, *rest) in config.items():
            if kind == "float":
                limits[name] = Float(float(rest[0]), float(rest[1]), bool(rest[2]))
            elif kind == "int":
                limits[name] = Int(int(rest[0]), int(rest[1]))
            else:
                limits[name] = Categorical(tuple(rest))
        return cls(limits)
