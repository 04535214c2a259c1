"""abtrain: low-rank A·B data-parallel training with independent groups (skeleton)."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("abtrain")
except _metadata.PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "0.0.0+unknown"
