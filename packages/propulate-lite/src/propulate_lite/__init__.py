"""propulate_lite: asynchronous evolutionary hyperparameter optimisation over MPI with islands."""

from importlib import metadata as _metadata

from . import propagators
from .asktell import AskTell
from .functions import FUNCTIONS, get_function
from .optuna_style import Study, Trial, create_study
from .population import Individual, Population
from .propagators import get_default_propagator
from .propulator import Islands, Propulator
from .space import Categorical, Float, Int, SearchSpace
from .surrogate import LogLinearSurrogate, StaticSurrogate, Surrogate

try:
    __version__ = _metadata.version("propulate-lite")
except _metadata.PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "FUNCTIONS",
    "AskTell",
    "Categorical",
    "Float",
    "Individual",
    "Int",
    "Islands",
    "LogLinearSurrogate",
    "Population",
    "Propulator",
    "SearchSpace",
    "StaticSurrogate",
    "Study",
    "Surrogate",
    "Trial",
    "create_study",
    "get_default_propagator",
    "get_function",
    "propagators",
]
