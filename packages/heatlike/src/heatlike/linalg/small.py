"""Inverse, determinant and direct solve for small matrices (replicated to factorise them);
batches split along a batch axis are factorised locally."""

from __future__ import annotations

import torch

from .._redistribute import resplit
from ..dndarray import DNDarray
from ._blocks import check_array
from .products import _into

__all__ = ["det", "inv", "solve"]


def _square_batch(a: DNDarray, name: str) -> None:
    check_array(a, name)
    if a.ndim < 2 or a.gshape[-1] != a.gshape[-2]:
        raise ValueError(f"{name} must be a square matrix or a batch of them, got {a.gshape}")


def _local_matrices(a: DNDarray) -> DNDarray:
    """``a`` with every matrix whole on the ranks that hold it: a split on a matrix axis is
    replicated (this gathers the matrix: meant for small ones), a batch split is kept."""
    if a.split is not None and a.split >= a.ndim - 2:
        return resplit(a, None)
    return a


def _float(t: torch.Tensor) -> torch.Tensor:
    return t if t.is_floating_point() or t.is_complex() else t.to(torch.float32)


def inv(a: DNDarray) -> DNDarray:
    """The inverse of a square matrix (or of every matrix of a batch).

    A matrix split along one of its own axes is replicated to factorise it and the inverse is
    returned with the same split (no rank gathers the result twice); meant for small matrices.

    Parameters
    ----------
    a : DNDarray
        (..., n, n), invertible.

    Returns
    -------
    DNDarray
        Same shape and split; float32 for integer input.
    """
    _square_batch(a, "a")
    whole = _local_matrices(a)
    local = torch.linalg.inv(_float(whole.larray))
    result = DNDarray._make(local, a.gshape, whole.split, a.comm, a.device, whole._counts)
    return result if result.split == a.split else resplit(result, a.split, a.counts)


def det(a: DNDarray) -> DNDarray:
    """The determinant of a square matrix (0-d, on every rank) or of every matrix of a batch.

    Parameters
    ----------
    a : DNDarray
        (..., n, n).

    Returns
    -------
    DNDarray
        Shape ``a.shape[:-2]``; split along the batch axis when ``a`` was split there.
    """
    _square_batch(a, "a")
    whole = _local_matrices(a)
    local = torch.linalg.det(_float(whole.larray))
    split = whole.split if whole.split is not None and whole.split < a.ndim - 2 else None
    return DNDarray._make(
        local, a.gshape[:-2], split, a.comm, a.device, whole._counts if split is not None else None
    )


def solve(A: DNDarray, b: DNDarray, out=None) -> DNDarray:
    """The solution ``x`` of ``A x = b`` for a small square ``A`` (replicated as in ``inv``).

    Parameters
    ----------
    A : DNDarray
        (n, n).
    b : DNDarray
        (n,) or (n, k).
    out : DNDarray, optional
        Receives the solution.

    Returns
    -------
    DNDarray
        Shaped like ``b`` and split like ``b``.
    """
    _square_batch(A, "A")
    check_array(b, "b")
    if A.ndim != 2:
        raise ValueError(f"A must be 2-d, got shape {A.gshape}")
    if b.ndim not in (1, 2) or b.gshape[0] != A.gshape[0]:
        raise ValueError(
            f"b must have shape ({A.gshape[0]},) or ({A.gshape[0]}, k), got {b.gshape}"
        )
    whole_a, whole_b = resplit(A, None), resplit(b, None)
    dtype = torch.promote_types(_float(whole_a.larray).dtype, _float(whole_b.larray).dtype)
    local = torch.linalg.solve(whole_a.larray.to(dtype), whole_b.larray.to(dtype))
    x = DNDarray._make(local, b.gshape, None, b.comm, b.device)
    x = x if b.split is None else resplit(x, b.split, b.counts)
    return x if out is None else _into(check_array(out, "out"), x)
