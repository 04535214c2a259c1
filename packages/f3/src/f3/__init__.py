"""f3: feed-forward training with delayed error feedback and its baselines (skeleton)."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("f3")
except _metadata.PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0.0.0+unknown"
