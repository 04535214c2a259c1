"""Run configurations from TOML: search space, loss, propagator, islands, checkpointing."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .functions import FUNCTIONS, get_function
from .space import Float, SearchSpace

_TOP_KEYS = {
    "loss",
    "function",
    "dim",
    "seed",
    "generations",
    "checkpoint",
    "resume",
    "limits",
    "propagator",
    "islands",
    "checkpoint_interval",
}
# [propagator] kind -> the options it takes (besides "kind")
PROPAGATOR_OPTIONS = {
    "ga": {
        "pop_size",
        "crossover_prob",
        "mutation_prob",
        "random_init_prob",
        "sigma_factor",
        "sigma_decades",
    },
    "pso": {"particles", "inertia", "c_cognitive", "c_social", "v_init"},
    "pso-clamped": {"particles", "inertia", "c_cognitive", "c_social", "v_limit", "v_init"},
    "pso-constriction": {"particles", "c_cognitive", "c_social", "v_init"},
    "pso-canonical": {"particles", "v_init"},
    "cmaes": {"sigma", "lam"},
    "active-cmaes": {"sigma", "lam"},
    "nelder-mead": {"start_step", "restart_tol"},
}
_ISLAND_KEYS = {
    "num_islands",
    "island_sizes",
    "migration_probability",
    "exchange",
    "migration_topology",
    "emigrant_selection",
    "immigrant_selection",
    "ranks_per_worker",
}


@dataclass
class RunConfig:
    """Everything ``propulate-lite run`` needs, checked before any rank communicates."""

    loss: Callable
    limits: dict[str, Any]
    seed: int = 0
    generations: int = 100
    checkpoint: Path | None = None
    resume: bool = False
    checkpoint_interval: float = 1.0
    propagator: dict[str, Any] = field(default_factory=dict)
    islands: dict[str, Any] = field(default_factory=dict)
    kind: str = "ga"


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a TOML run configuration (ValueError naming the bad entry)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"CONFIG {str(path)!r} is not a file")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"CONFIG {str(path)!r} is not valid TOML: {exc}") from None
    return parse_config(raw, base=path.parent)


def parse_config(raw: Mapping[str, Any], base: Path = Path(".")) -> RunConfig:
    """Validate a configuration already read from TOML and build its RunConfig.

    Parameters
    ----------
    raw
        The top-level table, as ``load_config`` reads it from a file.
    base
        The folder a relative ``checkpoint`` path is taken from.

    Raises
    ------
    ValueError
        Naming the entry that is unknown, missing or out of range (a TypeError from a malformed
        search-space entry is passed on).
    """
    _no_unknown(raw, _TOP_KEYS, "config")
    propagator = dict(raw.get("propagator", {}))
    kind = propagator.pop("kind", "ga")
    if kind not in PROPAGATOR_OPTIONS:
        raise ValueError(
            f"[propagator] kind must be one of {sorted(PROPAGATOR_OPTIONS)}, got {kind!r}"
        )
    _no_unknown(propagator, PROPAGATOR_OPTIONS[kind], f"[propagator] kind = {kind!r}")
    _no_unknown(raw.get("islands", {}), _ISLAND_KEYS, "[islands]")
    if ("loss" in raw) == ("function" in raw):
        raise ValueError(
            "config needs exactly one of 'loss' (module:function) or 'function' "
            f"(one of {', '.join(FUNCTIONS)})"
        )
    if "function" in raw:
        bench = get_function(raw["function"], raw.get("dim"))
        loss, limits = bench.loss, dict(raw.get("limits") or bench.limits)
    else:
        loss = import_loss(raw["loss"])
        if "limits" not in raw:
            raise ValueError("config needs a [limits] table when 'loss' is given")
        limits = {name: _limit(name, spec) for name, spec in raw["limits"].items()}
    SearchSpace(limits)  # validates
    checkpoint = raw.get("checkpoint")
    try:  # a throwaway instance checks the options against the search space, before any MPI
        make_propagator(kind, propagator, limits, workers=1, rng=0)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"[propagator]: {exc}") from None
    config = RunConfig(
        loss=loss,
        limits=limits,
        seed=_int(raw, "seed", 0, minimum=0),
        generations=_int(raw, "generations", 100, minimum=0),
        checkpoint=None if checkpoint is None else (base / checkpoint),
        resume=bool(raw.get("resume", False)),
        checkpoint_interval=float(raw.get("checkpoint_interval", 1.0)),
        propagator=propagator,
        islands=dict(raw.get("islands", {})),
        kind=kind,
    )
    return config


def make_propagator(kind: str, options: Mapping[str, Any], limits, workers: int, rng):
    """The propagator a config's [propagator] table describes (``kind`` default "ga")."""
    from . import propagators as p

    options = dict(options)
    if kind == "ga":
        pop_size = options.pop("pop_size", 2 * workers if workers > 1 else 8)
        return p.get_default_propagator(max(pop_size, 2), limits, rng=rng, **options)
    make = {
        "pso": p.BasicPSO,
        "pso-clamped": p.VelocityClampingPSO,
        "pso-constriction": p.ConstrictionPSO,
        "pso-canonical": p.CanonicalPSO,
        "cmaes": p.CMAES,
        "active-cmaes": p.ActiveCMAES,
        "nelder-mead": p.NelderMead,
    }[kind]
    return make(limits, rng=rng, **options)


def import_loss(spec: str) -> Callable:
    """``"package.module:function"`` -> the function."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(f"loss must be 'module:function', got {spec!r}")
    module_name, attr = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"loss: cannot import module {module_name!r}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValueError(f"loss: {module_name!r} has no function {attr!r}")
    return fn


def _limit(name: str, spec):
    if isinstance(spec, Mapping):  # {low = 1e-4, high = 1e-1, log = true}
        try:
            return Float(float(spec["low"]), float(spec["high"]), bool(spec.get("log", False)))
        except KeyError as exc:
            raise ValueError(f"limits.{name} needs 'low' and 'high'") from exc
    if not isinstance(spec, list):
        raise ValueError(f"limits.{name} must be an array or a table, got {spec!r}")
    return tuple(spec)


def _int(raw, key, default, minimum):
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{key} must be an int >= {minimum}, got {value!r}")
    return value


def _no_unknown(table, allowed, where):
    if not isinstance(table, Mapping):
        raise ValueError(f"{where} must be a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")
