"""oialr: orthogonality-informed adaptive low-rank training (skeleton)."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("oialr")
except _metadata.PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0.0.0+unknown"
