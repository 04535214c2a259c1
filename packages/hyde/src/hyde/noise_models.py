"""Noise models for evaluation: Gaussian i.i.d. and band-wise, stripes, dead lines, impulse, mixture."""

from __future__ import annotations

import torch

from ._checks import as_cube, positive


def _generator(seed: int) -> torch.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    return torch.Generator().manual_seed(seed)


def _randn(shape, gen, like: torch.Tensor) -> torch.Tensor:
    return torch.randn(shape, generator=gen, dtype=torch.float64).to(like.dtype).to(like.device)


def band_sigmas(bands: int, low: float = 0.0, high: float = 0.1, seed: int = 0) -> torch.Tensor:
    """Band-wise noise levels drawn uniformly from ``[low, high]`` (float64, length ``bands``)."""
    if not 0 <= low <= high:
        raise ValueError(f"need 0 <= low <= high, got low={low}, high={high}")
    gen = _generator(seed)
    return low + (high - low) * torch.rand(bands, generator=gen, dtype=torch.float64)


def add_gaussian(cube: torch.Tensor, sigma=0.05, seed: int = 0) -> torch.Tensor:
    """Add zero-mean Gaussian noise; ``sigma`` is a number (i.i.d.) or one value per band."""
    cube = as_cube(cube)
    gen = _generator(seed)
    sigma = torch.as_tensor(sigma, dtype=torch.float64)
    if sigma.ndim not in (0, 1) or (sigma.ndim == 1 and sigma.numel() != cube.shape[-1]):
        raise ValueError(f"sigma must be a number or have one value per band ({cube.shape[-1]})")
    if (sigma < 0).any():
        raise ValueError("sigma must be >= 0")
    noise = _randn(cube.shape, gen, cube) * sigma.to(cube.dtype).to(cube.device)
    return cube + noise


def add_noniid(
    cube: torch.Tensor, high: float = 0.1, low: float = 0.0, seed: int = 0
) -> torch.Tensor:
    """Gaussian noise with a band-wise sigma drawn from U[low, high] (same draw as band_sigmas)."""
    cube = as_cube(cube)
    return add_gaussian(cube, band_sigmas(cube.shape[-1], low, high, seed), seed + 1)


def _pick_bands(
    bands: int, fraction: float, gen, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    count = max(1, round(fraction * bands))
    order = torch.randperm(bands, generator=gen)
    if exclude is not None:
        order = order[~torch.isin(order, exclude)]
    return order[:count]


def _pick_columns(cols: int, col_fraction, gen) -> torch.Tensor:
    low, high = col_fraction
    frac = low + (high - low) * torch.rand((), generator=gen).item()
    return torch.randperm(cols, generator=gen)[: max(1, round(frac * cols))]


def add_stripes(
    cube, band_fraction=1 / 3, col_fraction=(0.05, 0.15), amplitude=0.25, seed=0, bands=None
) -> torch.Tensor:
    """On a fraction of bands, shift a random 5-15% of the columns by U(-amplitude, amplitude)."""
    cube = as_cube(cube).clone()
    gen = _generator(seed)
    chosen = bands if bands is not None else _pick_bands(cube.shape[-1], band_fraction, gen)
    for b in chosen.tolist():
        cols = _pick_columns(cube.shape[1], col_fraction, gen)
        shift = (torch.rand(cols.numel(), generator=gen, dtype=torch.float64) * 2 - 1) * amplitude
        cube[:, cols, b] += shift.to(cube.dtype).to(cube.device)
    return cube


def add_deadlines(
    cube, band_fraction=1 / 3, col_fraction=(0.05, 0.15), seed=0, bands=None
) -> torch.Tensor:
    """On a fraction of bands, set a random 5-15% of the columns to zero."""
    cube = as_cube(cube).clone()
    gen = _generator(seed)
    chosen = bands if bands is not None else _pick_bands(cube.shape[-1], band_fraction, gen)
    for b in chosen.tolist():
        cube[:, _pick_columns(cube.shape[1], col_fraction, gen), b] = 0
    return cube


def add_impulse(
    cube, band_fraction=1 / 3, amounts=(0.1, 0.3, 0.5, 0.7), salt_vs_pepper=0.5, seed=0, bands=None
) -> torch.Tensor:
    """Salt-and-pepper noise (values 1 and 0) on a fraction of bands at a density from ``amounts``."""
    cube = as_cube(cube).clone()
    gen = _generator(seed)
    chosen = bands if bands is not None else _pick_bands(cube.shape[-1], band_fraction, gen)
    rows, cols = cube.shape[:2]
    for b in chosen.tolist():
        amount = amounts[int(torch.randint(len(amounts), (), generator=gen))]
        u = torch.rand(rows, cols, generator=gen).to(cube.device)
        cube[..., b][u < amount * salt_vs_pepper] = 1
        cube[..., b][(u >= amount * salt_vs_pepper) & (u < amount)] = 0
    return cube


def add_mixture(
    cube, high: float = 0.1, seed: int = 0, amounts=(0.1, 0.3, 0.5, 0.7)
) -> torch.Tensor:
    """Band-wise Gaussian noise, then stripes, dead lines and impulse on disjoint thirds of bands."""
    cube = add_noniid(cube, high=high, seed=seed)
    gen = _generator(seed + 2)
    order = torch.randperm(cube.shape[-1], generator=gen)
    third = max(1, cube.shape[-1] // 3)
    cube = add_stripes(cube, seed=seed + 3, bands=order[:third])
    cube = add_deadlines(cube, seed=seed + 4, bands=order[third : 2 * third])
    return add_impulse(cube, seed=seed + 5, bands=order[2 * third : 3 * third], amounts=amounts)


NOISE_MODELS = {
    "gaussian": add_gaussian,
    "noniid": add_noniid,
    "stripes": add_stripes,
    "deadlines": add_deadlines,
    "impulse": add_impulse,
    "mixture": add_mixture,
}


def add_noise(cube: torch.Tensor, model: str = "gaussian", seed: int = 0, **kwargs) -> torch.Tensor:
    """Apply the named noise model (one of ``NOISE_MODELS``) with ``seed``."""
    if model not in NOISE_MODELS:
        raise ValueError(f"model must be one of {sorted(NOISE_MODELS)}, got {model!r}")
    positive(seed, "seed", integer=True, allow_zero=True)
    return NOISE_MODELS[model](cube, seed=seed, **kwargs)
