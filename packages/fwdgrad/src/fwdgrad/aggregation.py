"""Combining k jvps d = V^T g into one gradient estimate: single, mean, sum, orthogonal projection."""

from __future__ import annotations

import math

import torch

AGGREGATIONS = ("single", "mean", "sum", "projection")
SCALINGS = ("none", "unbiased", "norm")


def check_aggregation(aggregation: str, scaling: str = "none") -> None:
    """Raise ValueError unless ``aggregation`` is one of AGGREGATIONS and ``scaling`` one of
    SCALINGS."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(
            f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}"
        )
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {', '.join(SCALINGS)}, got {scaling!r}")


def chi_mean(m: int) -> float:
    """E[chi_m] = sqrt(2) Gamma((m+1)/2) / Gamma(m/2), the mean norm of an m-dim N(0, I) vector."""
    return math.sqrt(2.0) * math.exp(math.lgamma((m + 1) / 2) - math.lgamma(m / 2))


def uses_gram(aggregation: str, kind: str) -> bool:
    """Whether the estimate needs (V^T V)^-1: the projection, and orthonormalised tangents."""
    return aggregation == "projection" or kind == "orthonormal"


def scaling_factor(aggregation: str, scaling: str, n: int, k: int, kind: str = "normal") -> float:
    """The factor ``scaling`` multiplies the estimate by, for n parameters and k tangents.

    unbiased: E[P g] = (k/n) g for any sign- and permutation-symmetric tangent law, so the
    projection is scaled by n/k; the mean of N(0, I) or Rademacher tangents is already unbiased
    (E[v v^T] = I), and with orthonormal tangents E[q q^T] = I/n. norm: the projection by
    E[chi_n]/E[chi_k] (so E||P g|| = ||g|| for Gaussian tangents), the mean and sum by the inverse
    RMS norm ratio, E||mean||^2 = (n+k+1)/k ||g||^2 for Gaussian tangents.
    """
    if scaling == "none":
        return 1.0
    projection_like = aggregation == "projection"
    if scaling == "unbiased":
        if projection_like:
            return n / k
        base = float(n) if kind == "orthonormal" else 1.0
        return base / k if aggregation == "sum" else base
    if projection_like or kind == "orthonormal":
        factor = chi_mean(n) / chi_mean(k)
        return factor * k if aggregation == "mean" and kind == "orthonormal" else factor
    factor = math.sqrt(k / (n + k + 1))
    return factor / k if aggregation == "sum" else factor


# Largest cond(V^T V) = cond(V)^2 for which the projection goes through the Gram matrix: the
# normal equations lose about log10(cond(V)) more digits than QR, so at most one here. Random
# tangents with k <= n/3 stay below it; nearly dependent tangents (k close to n) take the QR path.
GRAM_MAX_CONDITION = 100.0


def well_conditioned(gram: torch.Tensor) -> bool:
    """Whether every (batched) V^T V has a condition number of at most GRAM_MAX_CONDITION."""
    eig = torch.linalg.eigvalsh(gram.double())
    low, high = eig[..., 0], eig[..., -1]
    return bool(((low > 0) & (high <= GRAM_MAX_CONDITION * low)).all())


def solve_gram(gram: torch.Tensor, jvps: torch.Tensor) -> torch.Tensor:
    """c = (V^T V)^-1 d in float64 by Cholesky; the pseudo-inverse when V is rank deficient.

    Batched: ``gram`` (..., k, k) and ``jvps`` (..., k).
    """
    gram64, d64 = gram.double(), jvps.double().unsqueeze(-1)
    factor, info = torch.linalg.cholesky_ex(gram64)
    if not bool(info.any()):
        diag = factor.diagonal(dim1=-2, dim2=-1)
        if bool((diag.min(-1).values > 1e-7 * diag.max(-1).values).all()):
            return torch.cholesky_solve(d64, factor).squeeze(-1)
    return (torch.linalg.pinv(gram64, hermitian=True) @ d64).squeeze(-1)


def coefficients(
    jvps: torch.Tensor, aggregation: str, kind: str, gram: torch.Tensor | None = None
) -> torch.Tensor:
    """The weights c with estimate = V c (before scaling), from the jvps and, where needed, V^T V.

    Orthonormal tangents are Q = V R^-1 with R^T R = V^T V; their jvps are R^-T d, so the
    estimate Q (c_Q) becomes V R^-1 R^-T d = V (V^T V)^-1 d, times 1/k for the mean.
    """
    k = jvps.numel()
    if uses_gram(aggregation, kind):
        if gram is None:
            raise ValueError("gram is needed for the projection and for orthonormal tangents")
        coef = solve_gram(gram, jvps)
    else:
        coef = jvps.double()
    if aggregation == "mean":
        coef = coef / k
    return coef


def aggregate(
    tangents: torch.Tensor,
    jvps: torch.Tensor,
    aggregation: str = "mean",
    scaling: str = "none",
    kind: str = "normal",
) -> torch.Tensor:
    """The estimate from an explicit tangent matrix ``tangents`` (n x k, columns v_i) and d.

    Batched over leading dimensions: tangents (..., n, k), jvps (..., k) give (..., n). With
    k > n the projection (and orthonormal tangents, ``kind="orthonormal"``) use only the first n
    tangents, which already span the space; the mean and the sum use all k. The projection: see
    `project`.
    """
    check_aggregation(aggregation, scaling)
    if tangents.dim() < 2 or tuple(jvps.shape) != (*tangents.shape[:-2], tangents.shape[-1]):
        raise ValueError(
            f"tangents must be (..., n, k) and jvps (..., k), got {tuple(tangents.shape)} "
            f"and {tuple(jvps.shape)}"
        )
    n, k = tangents.shape[-2:]
    if aggregation == "single" and k != 1:
        raise ValueError(f"aggregation='single' needs k=1, got k={k}")
    jvps = jvps.to(tangents.dtype)
    if uses_gram(aggregation, kind):
        k = min(k, n)
        tangents, jvps = tangents[..., :k], jvps[..., :k]
        estimate = project(tangents, jvps)
    else:
        estimate = (tangents @ jvps.unsqueeze(-1)).squeeze(-1)
    if aggregation == "mean":
        estimate = estimate / k
    return estimate * scaling_factor(aggregation, scaling, n, k, kind)


def project(tangents: torch.Tensor, jvps: torch.Tensor) -> torch.Tensor:
    """P g = V (V^T V)^-1 d from V (..., n, k) and d = V^T g (..., k).

    Well-conditioned V (random tangents, k well below n): Cholesky of the k x k Gram matrix, one
    matrix product of n k^2 flops, several times faster than a Householder QR of V. Otherwise QR:
    V = Q R gives P g = Q R^-T d, one triangular solve, no squared condition number.
    """
    gram = tangents.transpose(-1, -2) @ tangents
    if well_conditioned(gram):
        factor = torch.linalg.cholesky(gram.double())
        coef = torch.cholesky_solve(jvps.double().unsqueeze(-1), factor).to(tangents.dtype)
        return (tangents @ coef).squeeze(-1)
    return _project_qr(tangents, jvps)


def _project_qr(tangents: torch.Tensor, jvps: torch.Tensor) -> torch.Tensor:
    q, r = torch.linalg.qr(tangents)
    diag = r.diagonal(dim1=-2, dim2=-1).abs()
    limit = 1e-10 * max(tangents.shape[-2:])
    if bool((diag.min(-1).values <= limit * diag.max(-1).values).any()):
        gram = tangents.transpose(-1, -2) @ tangents  # rank deficient: pseudo-inverse
        coef = solve_gram(gram, jvps).to(tangents.dtype)
        return (tangents @ coef.unsqueeze(-1)).squeeze(-1)
    w = torch.linalg.solve_triangular(r.transpose(-1, -2), jvps.unsqueeze(-1), upper=False)
    return (q @ w).squeeze(-1)
