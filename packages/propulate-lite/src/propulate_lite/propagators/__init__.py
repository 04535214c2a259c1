"""Propagators: small objects that breed new individuals from a population."""

from .base import Compose, Conditional, Propagator, Stochastic, as_rng
from .cmaes import CMAES, ActiveCMAES
from .ga import (
    CrossoverMulti,
    CrossoverUniform,
    InitUniform,
    IntervalMutationMultiScale,
    IntervalMutationNormal,
    PointMutation,
    RandomPointMutation,
    SelectMax,
    SelectMin,
    SelectUniform,
    get_default_propagator,
)
from .nm import NelderMead
from .pso import BasicPSO, CanonicalPSO, ConstrictionPSO, VelocityClampingPSO

__all__ = [
    "CMAES",
    "ActiveCMAES",
    "BasicPSO",
    "CanonicalPSO",
    "Compose",
    "Conditional",
    "ConstrictionPSO",
    "CrossoverMulti",
    "CrossoverUniform",
    "InitUniform",
    "IntervalMutationMultiScale",
    "IntervalMutationNormal",
    "NelderMead",
    "PointMutation",
    "Propagator",
    "RandomPointMutation",
    "SelectMax",
    "SelectMin",
    "SelectUniform",
    "Stochastic",
    "VelocityClampingPSO",
    "as_rng",
    "get_default_propagator",
]
