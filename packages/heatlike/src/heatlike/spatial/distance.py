"""Pairwise distances (euclidean, manhattan) and the Gaussian (RBF) kernel between the rows of
two distributed matrices; row blocks of Y travel around a ring of ranks."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..communication import offsets_of
from ..dndarray import DNDarray
from ._rows import as_matrix, check_number, float_type, ring, rows_on_split0

__all__ = ["cdist", "manhattan", "rbf"]


def squared_euclidean(x: torch.Tensor, y: torch.Tensor, quadratic_expansion: bool = True):
    """Squared euclidean distances between the rows of two local tensors, (m, n).

    With ``quadratic_expansion``, ``||x||² + ||y||² - 2 x·y`` (one matrix product, fast; clamped
    at 0 because rounding can make it slightly negative); otherwise the differences directly.
    """
    if not quadratic_expansion:
        return torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist") ** 2
    # one (m, n) buffer, updated in place: the terms cost memory passes, not arithmetic
    d = torch.addmm((y * y).sum(1), x, y.T, alpha=-2.0)
    d += (x * x).sum(1, keepdim=True)
    return d.clamp_(min=0.0)


def _euclidean_tile(quadratic_expansion: bool) -> Callable:
    if quadratic_expansion:
        return lambda x, y: squared_euclidean(x, y, True).sqrt_()
    return lambda x, y: torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")


def _manhattan_tile(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.cdist(x, y, p=1.0)


def _gaussian_tile(sigma: float, quadratic_expansion: bool) -> Callable:
    scale = -1.0 / (2.0 * sigma * sigma)
    return lambda x, y: torch.exp(squared_euclidean(x, y, quadratic_expansion) * scale)


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def pairwise(X, Y, tile: Callable) -> DNDarray:
    """``tile`` applied to every pair of rows of ``X`` (m, f) and ``Y`` (n, f): an (m, n) array.

    Layout of the result (as Heat): split 0 when ``X`` is split (whatever ``Y``'s split), split 1
    when only ``Y`` is split, replicated when neither is. When both are split, ``X``'s rows stay
    where they are and ``Y``'s row blocks pass from rank to rank around a ring, so no rank ever
    holds all of ``Y`` (let alone both operands). A column-split operand is first moved to a
    row split (one alltoallv), which Heat refuses to do.

    Parameters
    ----------
    X : DNDarray
        (m, f) data.
    Y : DNDarray or None
        (n, f) data; None means ``X`` itself.
    tile : callable
        ``tile(x, y)`` on two local float tensors returns their (rows x, rows y) block.

    Returns
    -------
    DNDarray
        (m, n), float64 if an operand is float64 and float32 otherwise.
    """
    X = as_matrix(X, "X")
    Y = X if Y is None else as_matrix(Y, "Y", comm=X.comm)
    if Y.gshape[1] != X.gshape[1]:
        raise ValueError(
            f"Y must have as many columns (features) as X: X has {X.gshape[1]}, Y {Y.gshape[1]}"
        )
    if Y.comm.size != X.comm.size:
        raise ValueError("X and Y must live on the same communicator")
    dtype = float_type(X, Y)
    X, Y = rows_on_split0(X), (rows_on_split0(Y) if Y is not X else None)
    Y = X if Y is None else Y
    x, y = X.larray.to(dtype), Y.larray.to(dtype)
    shape = (X.gshape[0], Y.gshape[0])
    if X.split is None:
        split, counts = (None, None) if Y.split is None else (1, Y.counts)
        return DNDarray._make(tile(x, y), shape, split, X.comm, X.device, counts)
    if Y.split is None:
        return DNDarray._make(tile(x, y), shape, 0, X.comm, X.device, X.counts)
    out = torch.empty(x.shape[0], shape[1], dtype=dtype, device=x.device)
    starts = offsets_of(Y.counts)
    for owner, (block,) in ring([y], Y.counts, X.comm.handle):
        out[:, starts[owner] : starts[owner] + block.shape[0]] = tile(x, block)
    return DNDarray._make(out, shape, 0, X.comm, X.device, X.counts)


def cdist(X, Y=None, quadratic_expansion: bool = False) -> DNDarray:
    """Euclidean distances between the rows of ``X`` and ``Y``, as ``scipy.spatial.distance.cdist``.

    Parameters
    ----------
    X : DNDarray
        (m, f) data, replicated or split along rows (a column split is moved to rows first).
    Y : DNDarray, optional
        (n, f) data; None means ``X`` itself.
    quadratic_expansion : bool
        Compute ``sqrt(max(||x||² + ||y||² - 2 x·y, 0))`` with one matrix product per tile (fast,
        loses accuracy for points that are very close compared with their norms); False computes
        the differences directly.

    Returns
    -------
    DNDarray
        (m, n) distances; split 0 if ``X`` is split, split 1 if only ``Y`` is, else replicated.
    """
    _check_bool(quadratic_expansion, "quadratic_expansion")
    return pairwise(X, Y, _euclidean_tile(quadratic_expansion))


def manhattan(X, Y=None, expand: bool = False) -> DNDarray:
    """Manhattan (city-block, L1) distances between the rows of ``X`` and ``Y``.

    Parameters
    ----------
    X, Y : DNDarray
        As for `cdist`.
    expand : bool
        Accepted for Heat's signature; both settings compute the same values.

    Returns
    -------
    DNDarray
        (m, n) distances, laid out as `cdist`'s.
    """
    _check_bool(expand, "expand")
    return pairwise(X, Y, _manhattan_tile)


def rbf(X, Y=None, sigma: float = 1.0, quadratic_expansion: bool = False) -> DNDarray:
    """The Gaussian (RBF) kernel ``exp(-||x - y||² / (2 sigma²))`` between the rows of ``X`` and
    ``Y``.

    Parameters
    ----------
    X, Y : DNDarray
        As for `cdist`.
    sigma : float
        Kernel width, > 0.
    quadratic_expansion : bool
        How the squared distances are computed, as for `cdist`.

    Returns
    -------
    DNDarray
        (m, n) kernel values in (0, 1], laid out as `cdist`'s.
    """
    sigma = check_number(sigma, "sigma", 0.0, strict=True)
    _check_bool(quadratic_expansion, "quadratic_expansion")
    return pairwise(X, Y, _gaussian_tile(sigma, quadratic_expansion))
