"""propulate_lite: asynchronous evolutionary hyperparameter optimisation over MPI (skeleton)."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("propulate-lite")
except _metadata.PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0.0.0+unknown"
