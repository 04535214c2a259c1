"""Hierarchical truncated SVD (hSVD): local truncated SVDs of column blocks merged up a tree,
with an a-posteriori bound on the relative reconstruction error (Himpe, Leibner, Rave 2018)."""

from __future__ import annotations

import logging
import math

import torch

from .._redistribute import resplit
from ..dndarray import DNDarray
from ._blocks import check_array, check_float, check_ndim

__all__ = ["hsvd", "hsvd_rank", "hsvd_rtol"]

_log = logging.getLogger(__name__)
_UP_TAG = 4301


def hsvd_rank(
    A: DNDarray,
    maxrank: int,
    compute_sv: bool = False,
    maxmergedim: int | None = None,
    safetyshift: int = 5,
    silent: bool = True,
):
    """Truncated SVD of rank ``maxrank`` by the hierarchical algorithm (see ``hsvd``).

    Parameters
    ----------
    A : DNDarray
        2-d, float32 or float64.
    maxrank : int
        The number of singular triplets returned (at most).
    compute_sv : bool
        Also return the singular values and right singular vectors.
    maxmergedim : int, optional
        The largest number of columns a merge may concatenate; default: the larger of the largest
        local block and ``2 * (maxrank + safetyshift) + 1``.
    safetyshift : int
        Extra singular vectors kept in the intermediate truncations (more accuracy).
    silent : bool
        False logs the merge tree (rank 0, logging level INFO).

    Returns
    -------
    tuple
        ``(U, S, Vh, rel_error_bound)`` with ``compute_sv``, else ``(U, rel_error_bound)``.
    """
    _check_common(A, safetyshift)
    _check_positive_int(maxrank, "maxrank")
    if maxmergedim is not None and maxmergedim < 2 * (maxrank + safetyshift) + 1:
        raise ValueError(
            f"maxmergedim={maxmergedim} is too small: it must be at least "
            f"2 * (maxrank + safetyshift) + 1 = {2 * (maxrank + safetyshift) + 1}"
        )
    if maxmergedim is None:
        maxmergedim = max(_largest_block(A), 2 * (maxrank + safetyshift) + 1)
    return hsvd(A, maxrank, maxmergedim, None, safetyshift, None, compute_sv, silent, True)


def hsvd_rtol(
    A: DNDarray,
    rtol: float,
    compute_sv: bool = False,
    maxrank: int | None = None,
    maxmergedim: int | None = None,
    safetyshift: int = 5,
    no_of_merges: int | None = None,
    silent: bool = True,
):
    """Truncated SVD whose relative error ``||A - U S Vh||_F / ||A||_F`` is at most ``rtol``
    (unless ``maxrank`` or ``maxmergedim`` cap it; see ``hsvd``).

    Parameters
    ----------
    A : DNDarray
        2-d, float32 or float64.
    rtol : float
        The relative error allowed, in (0, 1].
    compute_sv : bool
        Also return the singular values and right singular vectors.
    maxrank : int, optional
        A cap on the rank kept in every truncation.
    maxmergedim : int, optional
        The largest number of columns a merge may concatenate.
    safetyshift : int
        Extra singular vectors kept in the intermediate truncations.
    no_of_merges : int, optional
        How many nodes a merge combines at most (default 2 when neither ``maxrank`` nor
        ``maxmergedim`` is given).
    silent : bool
        False logs the merge tree.

    Returns
    -------
    tuple
        ``(U, S, Vh, rel_error_bound)`` with ``compute_sv``, else ``(U, rel_error_bound)``.
    """
    _check_common(A, safetyshift)
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not 0 < rtol <= 1:
        raise ValueError(f"rtol must be a number in (0, 1], got {rtol!r}")
    if maxrank is not None:
        _check_positive_int(maxrank, "maxrank")
    if no_of_merges is not None and (not isinstance(no_of_merges, int) or no_of_merges < 2):
        raise ValueError(f"no_of_merges must be an int >= 2 or None, got {no_of_merges!r}")
    if maxmergedim is not None and maxrank is None:
        maxrank = maxmergedim // 2 - safetyshift
        if maxrank <= 0:
            raise ValueError(
                f"maxmergedim={maxmergedim} is too small for safetyshift={safetyshift}"
            )
    if maxmergedim is None and maxrank is not None:
        maxmergedim = max(_largest_block(A), 2 * (maxrank + safetyshift) + 1)
    if maxmergedim is not None and maxmergedim < 2 * (maxrank + safetyshift) + 1:
        raise ValueError(
            f"maxmergedim={maxmergedim} is too small: it must be at least "
            f"2 * (maxrank + safetyshift) + 1 = {2 * (maxrank + safetyshift) + 1}"
        )
    if maxmergedim is None and maxrank is None and no_of_merges is None:
        no_of_merges = 2
    return hsvd(A, maxrank, maxmergedim, rtol, safetyshift, no_of_merges, compute_sv, silent, True)


def hsvd(
    A: DNDarray,
    maxrank: int | None = None,
    maxmergedim: int | None = None,
    rtol: float | None = None,
    safetyshift: int = 0,
    no_of_merges: int | None = 2,
    compute_sv: bool = False,
    silent: bool = True,
    warnings_off: bool = False,
):
    """Hierarchical truncated SVD (the engine of ``hsvd_rank`` and ``hsvd_rtol``).

    ``A`` is treated as column blocks (a row-split ``A`` is transposed, without communication,
    and the factors swapped back at the end). Every rank computes the truncated SVD of its block,
    keeping ``U * S``; groups of ranks (at most ``no_of_merges`` nodes and ``maxmergedim``
    columns) send these to their leader, which truncates the SVD of the concatenation; this
    repeats up a tree to rank 0, whose ``U`` is broadcast. Then ``V = A^T U / S`` with ``S`` the
    column norms of ``A^T U``, so that ``U diag(S) Vh = U U^T A`` exactly.

    Every truncation drops singular values whose squares add up to a known amount; because each
    node's error is orthogonal to what it keeps, ``||A - U U^T A||_F^2`` is at most the sum of all
    dropped squares. The returned bound is the square root of that sum over ``||A||_F``. With
    ``rtol``, every node drops at most ``(rtol ||A||_F)^2 / (2p - 1)`` (a tree with ``p`` leaves has
    at most ``2p - 1`` nodes), so the bound is at most ``rtol``. Singular values below the
    numerical noise level (``eps * max(shape) * s_max`` of the node) are always dropped.

    Parameters
    ----------
    A : DNDarray
        2-d, float32 or float64.
    maxrank : int, optional
        A cap on the rank kept in every truncation.
    maxmergedim : int, optional
        The largest number of columns a merge may concatenate.
    rtol : float, optional
        The relative error allowed.
    safetyshift : int
        Extra singular vectors kept in all but the final truncation.
    no_of_merges : int, optional
        How many nodes a merge combines at most.
    compute_sv : bool
        Also return ``S`` and ``Vh``.
    silent : bool
        False logs the merge tree.
    warnings_off : bool
        True silences the warning that ``maxrank`` kept the error above ``rtol``.

    Returns
    -------
    tuple
        ``(U, S, Vh, rel_error_bound)`` with ``compute_sv``, else ``(U, rel_error_bound)``;
        ``rel_error_bound`` is a 0-d DNDarray. A row-split ``A`` gives ``U`` split on 0 and
        ``Vh`` on every rank; otherwise ``U`` is on every rank and ``Vh`` split on 1.
    """
    _check_common(A, safetyshift)
    if maxrank is None and rtol is None:
        raise ValueError("hsvd needs maxrank or rtol")
    transposed = A.split == 0
    B = A.T if transposed else (resplit(A, 1) if A.split is None else A)
    norm_sq = _frobenius_sq(B)
    atol = None if rtol is None else rtol * math.sqrt(norm_sq / (2 * B.comm.size - 1))
    plan = _Truncation(maxrank, atol, safetyshift, warnings_off)
    U, err_sq = _merge_tree(B, plan, no_of_merges, maxmergedim, silent)
    V, S = _right_factor(B, U)
    bound = math.sqrt(err_sq / norm_sq) if norm_sq > 0 else 0.0
    bound_array = DNDarray._make(
        torch.tensor(bound, dtype=B.larray.dtype), (), None, B.comm, B.device
    )
    U_array = DNDarray._make(U, tuple(U.shape), None, B.comm, B.device)
    if transposed:  # A^T = U S V^T, so A = V S U^T
        U_array, V = V, U_array
    if not compute_sv:
        return U_array, bound_array
    return U_array, S, V.T, bound_array


def _check_common(A, safetyshift) -> None:
    check_array(A, "A")
    check_ndim(A, 2, "A")
    check_float(A, "A")
    if isinstance(safetyshift, bool) or not isinstance(safetyshift, int) or safetyshift < 0:
        raise ValueError(f"safetyshift must be a non-negative int, got {safetyshift!r}")


def _check_positive_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _largest_block(A: DNDarray) -> int:
    """The most columns any rank holds of the column-block view hsvd works on."""
    return A.gshape[1] if A.split is None else max(A.counts)


def _frobenius_sq(B: DNDarray) -> float:
    total = (B.larray.double() ** 2).sum()
    if B.is_distributed():
        B.comm.handle.allreduce(total)
    return float(total)


class _Truncation:
    """How a node truncates its SVD: rank cap, absolute tolerance, safety shift."""

    def __init__(self, maxrank, atol, safetyshift, warnings_off):
        self.maxrank, self.atol = maxrank, atol
        self.safetyshift, self.warnings_off = safetyshift, warnings_off

    def apply(self, M: torch.Tensor, final: bool):
        """``(U, s, dropped_sq)``: the kept left singular vectors and values of ``M`` and the sum
        of the squares of the dropped singular values."""
        U, s = _left_singular(M)
        if s.numel() == 0:
            return U, s, 0.0
        noise = torch.finfo(s.dtype).eps * max(M.shape) * s[0]
        rank = int((s > noise).sum())
        if self.maxrank is not None:
            rank = min(rank, self.maxrank)
        if self.atol is not None:
            tails = torch.flip(torch.cumsum(torch.flip(s.double() ** 2, [0]), 0), [0])
            tails = torch.cat([tails, tails.new_zeros(1)])
            needed = int((tails > self.atol**2).sum())  # the smallest k with tail(k) <= atol^2
            if needed > rank and not self.warnings_off:
                _log.warning("hsvd: rtol needs rank %d at a node, capped at %d", needed, rank)
            rank = min(rank, needed)
        keep = min(s.numel(), rank + (0 if final else self.safetyshift))
        dropped = float((s[keep:].double() ** 2).sum())
        return U[:, :keep], s[:keep], dropped


def _left_singular(M: torch.Tensor):
    """The left singular vectors and values of ``M``; a wide ``M`` is first reduced to a square
    factor (``M = R^T Q^T`` from the QR of ``M^T``) so that its long right factor is never formed."""
    if M.shape[1] > M.shape[0]:
        M = torch.linalg.qr(M.T, mode="r").R.T
    U, s, _ = torch.linalg.svd(M, full_matrices=False)
    return U, s


def _groups(active, dims, no_of_merges, maxmergedim) -> list[list[int]]:
    """Consecutive active nodes grouped for one merge level: at most ``no_of_merges`` nodes and
    ``maxmergedim`` columns per group, but always at least two nodes when two remain."""
    groups, current, used = [], [], 0
    for node in active:
        fits = (no_of_merges is None or len(current) < no_of_merges) and (
            maxmergedim is None or used + dims[node] <= maxmergedim
        )
        if current and not fits and len(current) > 1:
            groups.append(current)
            current, used = [], 0
        current.append(node)
        used += dims[node]
    groups.append(current)
    return groups


def _merge_tree(B: DNDarray, plan: _Truncation, no_of_merges, maxmergedim, silent):
    """The left singular vectors on every rank and the sum of all dropped squares."""
    comm, handle = B.comm, B.comm.handle
    rank, size = comm.rank, comm.size
    m = B.gshape[0]
    U, s, err_sq = plan.apply(B.larray, final=size == 1)
    active = list(range(size))
    level = 0
    while len(active) > 1:
        dims = handle.allgather_obj(U.shape[1])
        groups = _groups(active, dims, no_of_merges, maxmergedim)
        final = len(groups) == 1
        if not silent and rank == 0:
            _log.info("hsvd level %d: groups %s, ranks %s", level, groups, dims)
        for group in groups:
            if rank == group[0] and len(group) > 1:
                parts, errors = [U * s], [err_sq]
                for member in group[1:]:
                    part = torch.empty(m, dims[member], dtype=U.dtype, device=U.device)
                    error = torch.empty(1, dtype=torch.float64)
                    handle.recv(part, source=member, tag=_UP_TAG)
                    handle.recv(error, source=member, tag=_UP_TAG)
                    parts.append(part)
                    errors.append(float(error))
                U, s, dropped = plan.apply(torch.cat(parts, 1), final)
                err_sq = sum(errors) + dropped
            elif rank in group[1:]:
                handle.send((U * s).contiguous(), dest=group[0], tag=_UP_TAG)
                handle.send(torch.tensor([err_sq], dtype=torch.float64), dest=group[0], tag=_UP_TAG)
        active = [g[0] for g in groups]
        level += 1
    return _broadcast_result(U, err_sq, B)


def _broadcast_result(U: torch.Tensor, err_sq: float, B: DNDarray):
    handle = B.comm.handle
    k = handle.bcast_obj(U.shape[1] if B.comm.rank == 0 else None, root=0)
    if B.comm.rank != 0:
        U = torch.empty(B.gshape[0], k, dtype=B.larray.dtype, device=B.larray.device)
    handle.bcast(U.contiguous() if B.comm.rank == 0 else U, root=0)
    error = torch.tensor([err_sq], dtype=torch.float64)
    handle.bcast(error, root=0)
    return U, float(error)


def _right_factor(B: DNDarray, U: torch.Tensor):
    """``V = B^T U / S`` with ``S`` the column norms of ``B^T U`` (so ``U S V^T = U U^T B``);
    ``V`` is split on 0 like ``B^T``'s rows."""
    W = B.larray.T @ U.to(B.larray.dtype)
    sq = (W.double() ** 2).sum(0)
    if B.is_distributed():
        B.comm.handle.allreduce(sq)
    S = sq.sqrt().to(W.dtype)
    V = W / torch.where(S > 0, S, torch.ones_like(S))
    V_array = DNDarray._make(V, (B.gshape[1], U.shape[1]), 0, B.comm, B.device, B.counts)
    S_array = DNDarray._make(S, (U.shape[1],), None, B.comm, B.device)
    return V_array, S_array
