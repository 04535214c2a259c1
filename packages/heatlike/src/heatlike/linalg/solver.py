"""Iterative solvers on distributed matrices: conjugate gradients and Lanczos."""

from __future__ import annotations

import math

import torch

from .. import random
from .._redistribute import resplit
from ..dndarray import DNDarray
from ._blocks import check_array, check_ndim
from .products import _inner, _into, matmul

__all__ = ["cg", "lanczos"]


def _check_square(A: DNDarray) -> int:
    check_ndim(A, 2, "A")
    if A.gshape[0] != A.gshape[1]:
        raise ValueError(f"A must be square, got shape {A.gshape}")
    return A.gshape[0]


def _check_vector(v: DNDarray, n: int, name: str) -> None:
    check_array(v, name)
    if v.ndim != 1 or v.gshape[0] != n:
        raise ValueError(f"{name} must be 1-d of length {n}, got shape {v.gshape}")


def _scalar(x: DNDarray) -> float:
    return float(x.larray)


def cg(A: DNDarray, b: DNDarray, x0: DNDarray, out=None, *, tol: float = 1e-10, maxiter=None):
    """Solve ``A x = b`` for a symmetric positive definite ``A`` by conjugate gradients.

    Every iteration costs one distributed matrix-vector product and two inner products (one
    allreduce each).

    Parameters
    ----------
    A : DNDarray
        n x n, symmetric positive definite, any split.
    b : DNDarray
        Length n.
    x0 : DNDarray
        The starting vector, length n.
    out : DNDarray, optional
        Receives the solution.
    tol : float
        Stop when the residual norm is at most ``tol * ||b||`` (keyword only).
    maxiter : int, optional
        At most this many iterations (default n, after which CG is exact in exact arithmetic).

    Returns
    -------
    DNDarray
        The solution, split like ``A @ x0``.
    """
    check_array(A, "A")
    n = _check_square(A)
    _check_vector(b, n, "b")
    _check_vector(x0, n, "x0")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or tol < 0:
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    if maxiter is not None and (
        isinstance(maxiter, bool) or not isinstance(maxiter, int) or maxiter < 0
    ):
        raise ValueError(f"maxiter must be a non-negative int or None, got {maxiter!r}")
    limit = n if maxiter is None else maxiter
    x = x0
    r = b - matmul(A, x)
    p = r
    rs = _scalar(_inner(r, r, r.larray.dtype))
    stop = tol * math.sqrt(_scalar(_inner(b, b, b.larray.dtype)))
    for _ in range(limit):
        if math.sqrt(rs) <= stop:
            break
        Ap = matmul(A, p)
        alpha = rs / _scalar(_inner(p, Ap, Ap.larray.dtype))
        x = x + alpha * p
        r = r - alpha * Ap
        rs_new = _scalar(_inner(r, r, r.larray.dtype))
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x if out is None else _into(check_array(out, "out"), x)


def lanczos(A: DNDarray, m: int, v0=None, V_out=None, T_out=None):
    """``m`` steps of the Lanczos process with full re-orthogonalisation: ``V`` (n x m) with
    orthonormal columns spanning the Krylov space of ``A`` and ``v0``, and the tridiagonal
    ``T = V^T A V`` (m x m) whose eigenvalues approximate ``A``'s extreme ones.

    Each step costs one distributed matrix-vector product and two allreduces of the projection
    coefficients against all previous vectors (classical Gram-Schmidt, done twice).

    Parameters
    ----------
    A : DNDarray
        n x n symmetric (real) matrix, any split.
    m : int
        The number of steps, 1 <= m <= n.
    v0 : DNDarray, optional
        The starting vector (normalised here); default a random vector from ``heatlike.random``
        (reproducible after ``ht.random.seed``).
    V_out, T_out : DNDarray, optional
        Receive ``V`` and ``T``.

    Returns
    -------
    tuple
        ``(V, T)``. ``V`` is split on 0 when ``A`` is split (Heat gathers it; heatlike does not)
        and ``T`` is on every rank.
    """
    check_array(A, "A")
    n = _check_square(A)
    if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= n:
        raise ValueError(f"m must be an int in [1, {n}], got {m!r}")
    if A.larray.is_complex() or not A.larray.is_floating_point():
        raise TypeError(f"A must be a real floating-point matrix, got {A.dtype.__name__}")
    split = None if A.split is None else 0
    if v0 is None:
        v0 = random.rand(n, dtype=A.dtype, split=split, device=A.device, comm=A.comm)
    _check_vector(v0, n, "v0")
    v = resplit(v0.astype(A.dtype), split)
    v = v / math.sqrt(_scalar(_inner(v, v, v.larray.dtype)))
    basis = torch.zeros(v.larray.shape[0], m, dtype=v.larray.dtype, device=v.larray.device)
    T = torch.zeros(m, m, dtype=v.larray.dtype, device=v.larray.device)
    beta = 0.0
    for i in range(m):
        basis[:, i] = v.larray
        w = resplit(matmul(A, v), split)
        alpha = _scalar(_inner(w, v, w.larray.dtype))
        T[i, i] = alpha
        if i + 1 == m:
            break
        w_loc = w.larray - alpha * v.larray - (beta * basis[:, i - 1] if i else 0)
        w_loc = _orthogonalise(w_loc, basis[:, : i + 1], A.comm, split)
        beta = _norm(w_loc, A.comm, split)
        if beta <= torch.finfo(T.dtype).eps * max(abs(alpha), 1.0) * n:
            w_loc, beta = _restart(basis[:, : i + 1], n, A, split), 0.0
        else:
            w_loc = w_loc / beta
        T[i, i + 1] = T[i + 1, i] = beta
        v = DNDarray._make(w_loc, (n,), split, A.comm, A.device, v._counts)
    counts = None if split is None else v.counts
    V = DNDarray._make(basis, (n, m), split, A.comm, A.device, counts)
    T_array = DNDarray._make(T, (m, m), None, A.comm, A.device)
    if V_out is not None:
        V = _into(check_array(V_out, "V_out"), V)
    if T_out is not None:
        T_array = _into(check_array(T_out, "T_out"), T_array)
    return V, T_array


def _orthogonalise(w: torch.Tensor, basis: torch.Tensor, comm, split) -> torch.Tensor:
    """``w`` with the span of ``basis``'s columns removed, twice (the rows are split when
    ``split`` is 0, so the coefficients are summed over the ranks)."""
    for _ in range(2):
        coefficients = basis.T @ w
        if split is not None and comm.size > 1:
            comm.handle.allreduce(coefficients)
        w = w - basis @ coefficients
    return w


def _norm(w: torch.Tensor, comm, split) -> float:
    sq = (w * w).sum()
    if split is not None and comm.size > 1:
        comm.handle.allreduce(sq)
    return math.sqrt(float(sq))


def _restart(basis: torch.Tensor, n: int, A: DNDarray, split) -> torch.Tensor:
    """A random unit vector orthogonal to ``basis`` (after an invariant subspace was found)."""
    fresh = random.rand(n, dtype=A.dtype, split=split, device=A.device, comm=A.comm).larray
    fresh = _orthogonalise(fresh.to(basis.dtype), basis, A.comm, split)
    return fresh / _norm(fresh, A.comm, split)
