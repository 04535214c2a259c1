"""daso: hierarchical, asynchronous, selective data-parallel training (skeleton)."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("daso")
except _metadata.PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0.0.0+unknown"
