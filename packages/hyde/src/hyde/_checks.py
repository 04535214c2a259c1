"""Argument checks shared by the public functions of hyde."""

from __future__ import annotations

import torch


def as_cube(cube, name: str = "cube") -> torch.Tensor:
    """Return ``cube`` as a floating 3-D tensor (rows x cols x bands) or raise naming ``name``."""
    if not isinstance(cube, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (rows, cols, bands), got {type(cube).__name__}"
        )
    if cube.ndim != 3:
        raise ValueError(
            f"{name} must have 3 dimensions (rows, cols, bands), got shape {tuple(cube.shape)}"
        )
    if min(cube.shape) < 2:
        raise ValueError(
            f"{name} must have at least 2 rows, cols and bands, got {tuple(cube.shape)}"
        )
    if not cube.is_floating_point():
        cube = cube.to(torch.get_default_dtype())
    return cube


def positive(value, name: str, integer: bool = False, allow_zero: bool = False):
    """Check that ``value`` is a (non-negative if ``allow_zero``) positive number."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an int" if integer else "a number"
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return value
