"""Singular value decomposition: TSQR then an SVD of the small R factor for tall-skinny matrices
(and of the transpose for short-fat ones)."""

from __future__ import annotations

import collections

import torch

from .._redistribute import resplit
from ..communication import chunk_counts
from ..dndarray import DNDarray
from ._blocks import check_array, check_float, check_ndim
from .products import matmul
from .qr import qr

__all__ = ["svd", "svdvals"]

SVD = collections.namedtuple("SVD", "U, S, Vh")


def svd(
    A: DNDarray,
    full_matrices: bool = False,
    compute_uv: bool = True,
    qr_procs_to_merge: int = 2,
    r_max_zolopd: int = 8,
):
    """The thin SVD ``A = U diag(S) Vh`` of a 2-d array.

    - Tall-skinny ``A`` (split on 0 with a local block of at least ``n`` rows, or split on 1 and
      so once moved to split 0 by one alltoallv): TSQR gives ``A = Q R`` with ``R`` of size
      n x n on every rank; the SVD of ``R`` is ``Ur S Vh``, and ``U = Q Ur`` is formed locally.
      ``U`` is split on 0, ``S`` and ``Vh`` are on every rank.
    - Short-fat ``A`` (the same with the roles of the axes swapped): the above on ``A.T``;
      ``Vh`` is split on 1, ``U`` on every rank.
    - ``A`` split None: LAPACK on every rank.
    - Otherwise (a distributed matrix that is neither, e.g. square): QR as above, then the SVD
      of ``R``, which is replicated: min(m, n)^2 elements on every rank, up to ``p`` times a
      rank's share of ``A`` (Heat uses a polar decomposition here; heatlike does not yet).

    Signs are fixed as scikit-learn's PCA does: the largest-magnitude entry of every row of
    ``Vh`` is positive (``U``'s columns flip with them), so results agree across rank counts.

    Parameters
    ----------
    A : DNDarray
        2-d, float32 or float64.
    full_matrices : bool
        Only False (the thin SVD) is supported.
    compute_uv : bool
        False returns only ``S``.
    qr_procs_to_merge : int
        The merge width of the TSQR tree (see ``qr``).
    r_max_zolopd : int
        Accepted for Heat compatibility; unused.

    Returns
    -------
    SVD or DNDarray
        The named tuple ``(U, S, Vh)`` with shapes (m, k), (k,), (k, n), k = min(m, n); or ``S``.
    """
    check_array(A, "A")
    check_ndim(A, 2, "A")
    check_float(A, "A")
    if full_matrices:
        raise NotImplementedError("full_matrices=True is not supported (thin SVD only)")
    if isinstance(qr_procs_to_merge, bool) or not isinstance(qr_procs_to_merge, int):
        raise TypeError(f"qr_procs_to_merge must be an int, got {type(qr_procs_to_merge).__name__}")
    if qr_procs_to_merge < 0 or qr_procs_to_merge == 1:
        raise ValueError(f"qr_procs_to_merge must be 0 or at least 2, got {qr_procs_to_merge}")
    m, n = A.gshape
    if A.split is None:
        return _local_svd(A, compute_uv)
    # tall-skinny (short-fat) as split, or once its rows (columns) are split
    rows_split = max(A.counts) if A.split == 0 else max(chunk_counts(m, A.comm.size))
    cols_split = max(A.counts) if A.split == 1 else max(chunk_counts(n, A.comm.size))
    if rows_split >= n:
        return _tall_skinny_svd(resplit(A, 0), compute_uv, qr_procs_to_merge)
    if cols_split >= m:
        result = _tall_skinny_svd(resplit(A, 1).T, compute_uv, qr_procs_to_merge)
        if not compute_uv:
            return result
        V, S, Uh = result
        return _flip_signs(Uh.T, S, V.T)
    if m < n:
        result = svd(A.T, False, compute_uv, qr_procs_to_merge)
        return result if not compute_uv else _flip_signs(result.Vh.T, result.S, result.U.T)
    Q, R = qr(A, mode="reduced" if compute_uv else "r", procs_to_merge=qr_procs_to_merge)
    R = resplit(R, None)
    if not compute_uv:
        return _wrap(torch.linalg.svdvals(R.larray), A)
    Ur, S, Vh = torch.linalg.svd(R.larray, full_matrices=False)
    U = matmul(Q, _wrap(Ur, A))
    return _flip_signs(U, _wrap(S, A), _wrap(Vh, A))


def svdvals(A: DNDarray) -> DNDarray:
    """The singular values of a 2-d array, in descending order (``svd(A, compute_uv=False)``)."""
    return svd(A, compute_uv=False)


def _wrap(t: torch.Tensor, like: DNDarray) -> DNDarray:
    return DNDarray._make(t, tuple(t.shape), None, like.comm, like.device)


def _local_svd(A: DNDarray, compute_uv: bool):
    if not compute_uv:
        return _wrap(torch.linalg.svdvals(A.larray), A)
    U, S, Vh = torch.linalg.svd(A.larray, full_matrices=False)
    return _flip_signs(_wrap(U, A), _wrap(S, A), _wrap(Vh, A))


def _tall_skinny_svd(A: DNDarray, compute_uv: bool, merge: int):
    Q, R = qr(A, mode="reduced" if compute_uv else "r", procs_to_merge=merge)
    if not compute_uv:
        return _wrap(torch.linalg.svdvals(R.larray), A)
    Ur, S, Vh = torch.linalg.svd(R.larray, full_matrices=False)
    U = DNDarray._make(Q.larray @ Ur, (A.gshape[0], Ur.shape[1]), 0, A.comm, A.device, Q.counts)
    return _flip_signs(U, _wrap(S, A), _wrap(Vh, A))


def right_singular(A: DNDarray, qr_procs_to_merge: int = 2):
    """``(S, Vh)`` of the thin SVD (signs as ``svd``), without forming ``U`` when ``A`` is
    tall-skinny for its split (then only TSQR's ``R`` is needed)."""
    check_array(A, "A")
    check_ndim(A, 2, "A")
    check_float(A, "A")
    m, n = A.gshape
    if A.split is not None:
        rows = max(A.counts) if A.split == 0 else max(chunk_counts(m, A.comm.size))
        if rows >= n:
            _, R = qr(resplit(A, 0), mode="r", procs_to_merge=qr_procs_to_merge)
            _, S, Vh = torch.linalg.svd(R.larray, full_matrices=False)
            signs = largest_entry_signs(_wrap(Vh, A))
            return _wrap(S, A), _wrap(Vh * signs[:, None], A)
    _, S, Vh = svd(A, qr_procs_to_merge=qr_procs_to_merge)
    return S, Vh


def largest_entry_signs(x: DNDarray) -> torch.Tensor:
    """For every row of the 2-d ``x``, the sign (+1/-1) of its largest-magnitude entry (the
    first one on ties, in global column order); on every rank (one small allgather when ``x`` is
    split)."""
    t = x.larray
    if t.shape[1] == 0:
        values = torch.zeros(t.shape[0], dtype=t.dtype, device=t.device)
        magnitude = values - 1
    else:
        where = t.abs().argmax(dim=1, keepdim=True)
        values = t.gather(1, where).squeeze(1)
        magnitude = values.abs()
    if x.split == 1 and x.is_distributed():
        everyone = x.comm.handle.allgather(torch.stack([magnitude, values]).contiguous())
        everyone = everyone.reshape(x.comm.size, 2, -1)
        best = everyone[:, 0].argmax(dim=0)  # the first rank with the largest magnitude
        values = everyone[:, 1].gather(0, best.unsqueeze(0)).squeeze(0)
    if x.split == 0 and x.is_distributed():
        values = x.comm.handle.allgatherv(values.contiguous())
    return torch.where(values < 0, -1.0, 1.0).to(t.dtype)


def _flip_signs(U: DNDarray, S: DNDarray, Vh: DNDarray) -> SVD:
    """``U``'s columns and ``Vh``'s rows flipped together so that every row of ``Vh`` has a
    positive largest-magnitude entry."""
    signs = largest_entry_signs(Vh)
    return SVD(scale_along(U, signs, 1), S, scale_along(Vh, signs, 0))


def scale_along(x: DNDarray, factors: torch.Tensor, axis: int) -> DNDarray:
    """``x`` with its slices along ``axis`` multiplied by ``factors`` (one per global index;
    a rank uses the entries of its own block when ``x`` is split on ``axis``)."""
    if x.split == axis:
        factors = factors[x.offset : x.offset + x.counts[x.comm.rank]]
    shape = [1, 1]
    shape[axis] = -1
    local = x.larray * factors.reshape(shape)
    return DNDarray._make(local, x.gshape, x.split, x.comm, x.device, x._counts)
