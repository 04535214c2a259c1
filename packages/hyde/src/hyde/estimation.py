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


def gram(cube: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(Y Y^T, pixels) of a cube in float64, with Y its (bands x pixels) matrix.

    Both estimators below need only this bands x bands matrix, so a method that uses both (and
    whitens, which only rescales it) reads the cube once.
    """
    y = _as_matrix(cube)
    return y @ y.T, y.shape[1]


def _regression_weights(g: torch.Tensor, ridge: float) -> torch.Tensor:
    """W with W Y = the regression residuals of every band on the others (from G = Y Y^T)."""
    eye = torch.eye(g.shape[0], dtype=g.dtype, device=g.device)
    inv = torch.linalg.inv(g + ridge * g.diagonal().mean() * eye)
    return inv / inv.diagonal().unsqueeze(1)


def noise_from_gram(g: torch.Tensor, pixels: int, debias: bool = True) -> torch.Tensor:
    """Band noise std from G = Y Y^T: the residual power diag(W G W^T) / pixels (see below)."""
    bands = g.shape[0]
    weights = _regression_weights(g, 1e-9)
    residual_power = (weights @ g * weights).sum(1) / pixels
    if debias:
        # the plain residual power bounds sigma^2 from above (W_ii = 1); the solve can go to 0
        # or below when sparse noise inflates other bands' residuals, so keep a quarter of it
        plain = residual_power
        residual_power = (
            torch.linalg.solve(weights**2, residual_power) * pixels / max(pixels - bands + 1, 1)
        )
        residual_power = torch.maximum(residual_power, plain / 4)
    return residual_power.clamp(min=0).sqrt()


def estimate_noise(cube: torch.Tensor, debias: bool = True) -> torch.Tensor:
    """Standard deviation of the noise in each band (length ``bands``), by regression.

    The residual of band i also carries the noise of the regressors, weighted by the regression
    coefficients: E r_i^2 = sum_j (R^-1_ij / R^-1_ii)^2 sigma_j^2. ``debias`` solves that linear
    system for sigma^2 and corrects for the fitted degrees of freedom; without it the estimate
    is HySime's plain residual RMS, which runs high when there are few bands.
    """
    g, pixels = gram(cube)
    out_dtype = cube.dtype if cube.is_floating_point() else torch.float64
    return noise_from_gram(g, pixels, debias).to(out_dtype)


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
    if noise is None:
        g, pixels = gram(cube)
        return hysime_from_gram(g, pixels, min_rank, energy)
    y = _as_matrix(cube)
    n_pixels = y.shape[1]
    signal = y - noise
    return _hysime(
        signal @ signal.T / n_pixels,
        noise @ noise.T / n_pixels,
        y @ y.T / n_pixels,
        min_rank,
        energy,
    )


def hysime_from_gram(
    g: torch.Tensor, pixels: int, min_rank: int = 0, energy: float | None = None
) -> Subspace:
    """`hysime` with the regression residuals, from G = Y Y^T alone.

    The residuals are W Y (W from the inverse of G), so their correlation is W G W^T / pixels
    and the signal's (I - W) G (I - W)^T / pixels.
    """
    w = _regression_weights(g, 1e-6)
    eye = torch.eye(g.shape[0], dtype=g.dtype, device=g.device)
    keep = eye - w
    return _hysime(keep @ g @ keep.T / pixels, w @ g @ w.T / pixels, g / pixels, min_rank, energy)


def noise_edge(g: torch.Tensor, pixels: int) -> float:
    """Largest eigenvalue of the correlation of the regression residuals, W G W^T / pixels.

    The noise power along its strongest direction; a principal component of the data is
    signal only if its power exceeds it (He, Zhang, Zhang & Shen 2015 choose NAILRMA's rank
    so). For white Gaussian noise of unit variance it is about 1, the top of the noise
    eigenvalues; sparse noise (stripes, dead lines, impulses) spreads the noise eigenvalues
    upwards, and this edge moves up with them, where HySime's twice-the-noise-power test along
    each signal eigenvector counts part of that spread as signal.
    """
    w = _regression_weights(g, 1e-6)
    r_noise = w @ g @ w.T / pixels
    return float(torch.linalg.eigvalsh((r_noise + r_noise.T) / 2)[-1])


def signal_dimension(white_gram: torch.Tensor, pixels: int) -> int:
    """Number of principal components of the noise-whitened data (Gram matrix ``white_gram``)
    whose power exceeds that of the strongest noise direction (`noise_edge`).

    On generated cubes with mixed noise (5 endmembers; 128 x 128 x 64, three noise draws, and
    256 x 256 x 128) this gave 5 each time where HySime gave 8-13; on smaller cubes with fewer
    bands the weakest endmember can fall below the edge (4 of 5 at 64 x 64 x 32).
    """
    power = torch.linalg.eigvalsh(white_gram / pixels)
    return int((power > noise_edge(white_gram, pixels)).sum())


def sparse_noise(y: torch.Tensor, g: torch.Tensor, z: float = 10.0, samples: int = 1 << 11) -> bool:
    """Whether some band's regression residual is heavy-tailed, i.e. the noise is not Gaussian.

    ``y`` is the (pixels x bands) data and ``g = y^T y``. True when the kurtosis of a band's
    residual exceeds the Gaussian 3 by more than ``z`` standard errors, sqrt(24 / n), over
    every k-th pixel, n of about ``samples`` (the full cube made OTVCA 2x slower at
    256 x 256 x 128). On generated cubes Gaussian noise (i.i.d. and band-wise) stayed within
    2.7 standard errors and mixed noise (stripes, dead lines, impulses) was 68-630 above
    (kurtosis 13-19).
    """
    y = y.reshape(-1, g.shape[0])
    y = y[:: max(1, y.shape[0] // samples)].to(g.dtype)
    residuals = y @ _regression_weights(g, 1e-6).T
    residuals = residuals - residuals.mean(0)
    power = residuals.pow(2).mean(0).clamp(min=1e-300)
    kurtosis = residuals.pow(4).mean(0) / power**2
    return bool((kurtosis - 3).max() > z * (24 / y.shape[0]) ** 0.5)


def _hysime(r_signal, r_noise, r_y, min_rank, energy) -> Subspace:
    bands = r_y.shape[0]
    r_signal = (r_signal + r_signal.T) / 2
    r_noise = r_noise + 1e-5 * r_noise.trace() / bands * torch.eye(
        bands, dtype=r_y.dtype, device=r_y.device
    )
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
    k = min(max(k, int(min_rank), 1), bands)
    basis = eigvecs[:, order[:k]].contiguous()
    return Subspace(basis=basis, dimension=k, costs=costs[order], eigenvalues=eigvals[order])
