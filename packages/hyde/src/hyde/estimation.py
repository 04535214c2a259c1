"""Per-band noise estimation by multiple regression and HySime signal-subspace identification."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._checks import as_cube


def _as_matrix(cube: torch.Tensor) -> torch.Tensor:
    """(rows x cols x bands) -> (bands x pixels) in float64."""
    cube = as_cube(cube)
    return cube.reshape(-1, cube.shape[-1]).T.to(torch.float64)


def regression_residuals(y: torch.Tensor, ridge: float = 1e-6) -> torch.Tensor:
    """Noise of each band of ``y`` (bands x pixels) as its residual regressed on all other bands.

    With R = Y Y^T, the residual of band i on the others equals (R^-1 Y)_i / (R^-1)_ii, so all
    bands are regressed at once (Bioucas-Dias & Nascimento 2008, HySime's noise estimator).
    """
    gram = y @ y.T
    gram = gram + ridge * gram.diagonal().mean() * torch.eye(
        gram.shape[0], dtype=y.dtype, device=y.device
    )
    inv = torch.linalg.inv(gram)
    return (inv @ y) / inv.diagonal().unsqueeze(1)


def estimate_noise(cube: torch.Tensor, debias: bool = True) -> torch.Tensor:
    """Standard deviation of the noise in each band (length ``bands``), by regression.

    The residual of band i also carries the noise of the regressors, weighted by the regression
    coefficients: E r_i^2 = sum_j (R^-1_ij / R^-1_ii)^2 sigma_j^2. ``debias`` solves that linear
    system for sigma^2 and corrects for the fitted degrees of freedom; without it the estimate
    is HySime's plain residual RMS, which runs high when there are few bands.
    """
    y = _as_matrix(cube)
    bands, pixels = y.shape
    gram = y @ y.T
    gram = gram + 1e-9 * gram.diagonal().mean() * torch.eye(bands, dtype=y.dtype, device=y.device)
    inv = torch.linalg.inv(gram)
    weights = inv / inv.diagonal().unsqueeze(1)
    residual_power = (weights @ y).pow(2).mean(1)
    if debias:
        residual_power = (
            torch.linalg.solve(weights**2, residual_power) * pixels / max(pixels - bands + 1, 1)
        )
    out_dtype = cube.dtype if cube.is_floating_point() else torch.float64
    return residual_power.clamp(min=0).sqrt().to(out_dtype)


def estimate_noise_wavelet(cube: torch.Tensor, wavelet: str = "db1") -> torch.Tensor:
    """Noise std of each band from the finest diagonal wavelet details: median(|HH1|) / 0.6745.

    Donoho's robust estimator looks at each band alone, so, unlike the regression estimator, it
    does not mistake spectral structure that no other band predicts (a narrow absorption line
    in part of the scene) for noise; it runs high on strongly textured bands.
    """
    from .wavelets import dwt2

    cube = as_cube(cube)
    _, (_, _, diagonal) = dwt2(cube.to(torch.float64).permute(2, 0, 1), wavelet, "symmetric")
    mad = diagonal.reshape(diagonal.shape[0], -1).abs().median(dim=1).values
    out_dtype = cube.dtype if cube.is_floating_point() else torch.float64
    return (mad / 0.6744897501960817).to(out_dtype)


@dataclass
class Subspace:
    """A signal subspace: orthonormal ``basis`` (bands x k), its ``dimension`` and HySime ``costs``."""

    basis: torch.Tensor
    dimension: int
    costs: torch.Tensor
    eigenvalues: torch.Tensor


def hysime(
    cube: torch.Tensor,
    noise: torch.Tensor | None = None,
    min_rank: int = 0,
    energy: float | None = None,
) -> Subspace:
    """HySime (Bioucas-Dias & Nascimento 2008): the subspace minimising projection + noise error.

    ``noise`` is a (bands x pixels) noise matrix (default: the regression residuals). The
    dimension is the number of signal-correlation eigenvectors whose power exceeds twice the
    noise power along them. ``min_rank`` and ``energy`` (fraction of the signal power, e.g. 0.999)
    keep more components than HySime would, for weak spectral structure such as gas absorption.
    """
    y = _as_matrix(cube)
    if noise is None:
        noise = regression_residuals(y)
    n_pixels = y.shape[1]
    signal = y - noise
    r_signal = signal @ signal.T / n_pixels
    r_noise = noise @ noise.T / n_pixels
    r_noise = r_noise + 1e-5 * r_noise.trace() / r_noise.shape[0] * torch.eye(
        r_noise.shape[0], dtype=y.dtype
    )
    r_y = y @ y.T / n_pixels
    eigvals, eigvecs = torch.linalg.eigh(r_signal)
    power_y = (eigvecs * (r_y @ eigvecs)).sum(0)
    power_n = (eigvecs * (r_noise @ eigvecs)).sum(0)
    costs = -power_y + 2 * power_n
    order = torch.argsort(costs)
    k = int((costs < 0).sum())
    if energy is not None:
        if not 0 < energy <= 1:
            raise ValueError(f"energy must be in (0, 1], got {energy}")
        power_sorted = power_y[order].clamp(min=0)
        cumulative = torch.cumsum(power_sorted, 0) / power_sorted.sum()
        k = max(k, int((cumulative < energy).sum()) + 1)
    k = min(max(k, int(min_rank), 1), y.shape[0])
    basis = eigvecs[:, order[:k]].contiguous()
    return Subspace(basis=basis, dimension=k, costs=costs[order], eigenvalues=eigvals[order])
