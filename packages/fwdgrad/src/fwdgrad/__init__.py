"""fwdgrad: multi-tangent forward gradients computed with forward-mode AD, no backward pass."""

from importlib import metadata as _metadata

from .aggregation import AGGREGATIONS, SCALINGS, aggregate, chi_mean, scaling_factor
from .estimator import ForwardGradientResult, forward_gradient, forward_gradient_result
from .model import ForwardGradientModel
from .tangents import SAMPLERS, TangentStream

try:
    __version__ = _metadata.version("fwdgrad")
except _metadata.PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "AGGREGATIONS",
    "SAMPLERS",
    "SCALINGS",
    "ForwardGradientModel",
    "ForwardGradientResult",
    "TangentStream",
    "__version__",
    "aggregate",
    "chi_mean",
    "forward_gradient",
    "forward_gradient_result",
    "scaling_factor",
]
