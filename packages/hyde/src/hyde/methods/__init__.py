"""Denoising methods behind one interface, and the registry that names them."""

from __future__ import annotations

from ..nn import train as _nn  # noqa: F401  (registers qrnn3d)
from . import lowrank, subspace, wavelet  # noqa: F401  (registers the methods)
from .base import METHODS, Denoiser, register
from .lowrank import LRMR, NAILRMA, OTVCA, WSRRR
from .subspace import FastHyDe, L1HyMixDe, SubspaceProjection
from .wavelet import FORPDN, HyMiNoR, HyRes

__all__ = [
    "FORPDN",
    "LRMR",
    "METHODS",
    "NAILRMA",
    "OTVCA",
    "WSRRR",
    "Denoiser",
    "FastHyDe",
    "HyMiNoR",
    "HyRes",
    "L1HyMixDe",
    "SubspaceProjection",
    "get",
    "register",
]


def get(name: str, **params) -> Denoiser:
    """The method registered as ``name``, configured with ``params``."""
    if not isinstance(name, str) or name not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {name!r}")
    return METHODS[name](**params)
