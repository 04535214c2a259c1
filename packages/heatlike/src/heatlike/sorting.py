"""Sorting: distributed sample sort along the split axis, argsort, unique."""

from __future__ import annotations

import torch

from . import _redistribute
from .communication import chunk_counts
from .dndarray import DNDarray

__all__ = ["argsort", "sort", "unique"]


def _lex_sort(values: torch.Tensor, keys: torch.Tensor):
    """Order by (value, key): sort by key, then stably by value."""
    order = torch.argsort(keys, stable=True)
    order = order[torch.argsort(values[order], stable=True)]
    return values[order], keys[order]


def _lex_position(values, keys, value, key) -> int:
    """How many (values, keys) pairs (sorted lexicographically) are below (value, key)."""
    left = int(torch.searchsorted(values, value.reshape(1), right=False))
    right = int(torch.searchsorted(values, value.reshape(1), right=True))
    return left + int(torch.searchsorted(keys[left:right], key.reshape(1)))


def sample_sort(values: torch.Tensor, gidx: torch.Tensor, comm):
    """Globally sort 1-d (value, global index) pairs spread over ranks (ties by index).

    Local sort, p-1 regular samples per rank, p-1 splitters from the gathered samples
    (p*(p-1) values, not data), one alltoallv into value ranges, a local merge. Returns this
    rank's sorted values and their original global indices (the layout is not balanced).
    """
    values, gidx = _lex_sort(values, gidx)
    p = comm.size
    if p == 1:
        return values, gidx
    n = values.shape[0]
    picks = torch.tensor([(n * (i + 1)) // p for i in range(p - 1)], dtype=torch.int64)
    picks = picks[picks < n]
    all_v = comm.handle.allgatherv(values[picks].contiguous())
    all_i = comm.handle.allgatherv(gidx[picks].contiguous())
    all_v, all_i = _lex_sort(all_v, all_i)
    m = all_v.shape[0]
    bounds = [0]
    for i in range(p - 1):
        if m:
            j = min((m * (i + 1)) // p, m - 1)
            bounds.append(_lex_position(values, gidx, all_v[j], all_i[j]))
        else:
            bounds.append(n)
    bounds.append(n)
    bounds = [max(bounds[: k + 1]) for k in range(len(bounds))]
    counts = [bounds[k + 1] - bounds[k] for k in range(p)]
    recv_v = comm.handle.alltoallv(values, counts, 0)
    recv_i = comm.handle.alltoallv(gidx, counts, 0)
    return _lex_sort(recv_v, recv_i)


def _sort_1d_split(a: DNDarray, descending: bool):
    values = a.larray
    gidx = torch.arange(a.offset, a.offset + values.shape[0], dtype=torch.int64)
    v, i = sample_sort(values, gidx, a.comm)
    counts = tuple(a.comm.handle.allgather(torch.tensor([v.shape[0]])).tolist())
    vals = DNDarray._make(v, a.gshape, 0, a.comm, a.device, counts)
    idx = DNDarray._make(i, a.gshape, 0, a.comm, a.device, counts)
    vals, idx = _redistribute.balance(vals), _redistribute.balance(idx)
    if descending:
        from .manipulations import flip

        vals, idx = flip(vals, 0), flip(idx, 0)
    return vals, idx


def sort(a, axis: int = -1, descending: bool = False, out=None):
    """Sorted values and the indices that sort ``a`` along ``axis``, as Heat's ``(values,
    indices)``. Along the split axis of a 1-d array: sample sort; of an N-d array: resplit to
    another axis (alltoallv), local sort, resplit back."""
    if not isinstance(a, DNDarray):
        raise TypeError(f"a must be a DNDarray, got {type(a).__name__}")
    if a.ndim == 0:
        raise ValueError("cannot sort a 0-d array")
    if isinstance(axis, bool) or not isinstance(axis, int) or not -a.ndim <= axis < a.ndim:
        raise ValueError(f"axis must be an int in [-{a.ndim}, {a.ndim}), got {axis!r}")
    axis %= a.ndim
    if a.split != axis or a.comm.size == 1:
        v, i = torch.sort(a.larray, dim=axis, descending=descending, stable=True)
        wrap = lambda t: DNDarray._make(t, a.gshape, a.split, a.comm, a.device, a._counts)  # noqa: E731
        vals, idx = wrap(v), wrap(i)
    elif a.ndim == 1:
        vals, idx = _sort_1d_split(a, descending)
    else:
        other = next(d for d in range(a.ndim) if d != axis)
        moved = _redistribute.resplit(a, other)
        v, i = torch.sort(moved.larray, dim=axis, descending=descending, stable=True)
        back = tuple(a.counts) if a.split is not None else None

        def mk(t):
            return _redistribute.resplit(
                DNDarray._make(t, a.gshape, other, a.comm, a.device, moved._counts), axis, back
            )

        vals, idx = mk(v), mk(i)
    if out is not None:
        out.larray.copy_(
            _redistribute.align(
                vals, out.gshape, out.split, out.counts if out.split is not None else None
            )
        )
    return vals, idx


def argsort(a, axis: int = -1, descending: bool = False) -> DNDarray:
    """The indices that sort ``a`` along ``axis``."""
    return sort(a, axis, descending)[1]


def unique(a, sorted: bool = True, return_inverse: bool = False, axis=None):
    """The sorted unique elements of ``a`` (flattened). A split input gives a result split on
    0: local uniques are sample-sorted and de-duplicated across rank boundaries."""
    if not isinstance(a, DNDarray):
        raise TypeError(f"a must be a DNDarray, got {type(a).__name__}")
    if axis is not None:
        raise NotImplementedError("unique along an axis is not supported; use axis=None")
    if a.split is None or a.comm.size == 1:
        res = torch.unique(a.larray, sorted=True, return_inverse=return_inverse)
        if return_inverse:
            u, inv = res
            wrap = DNDarray._make(u, tuple(u.shape), None, a.comm, a.device)
            return wrap, DNDarray._make(inv, tuple(inv.shape), None, a.comm, a.device)
        return DNDarray._make(res, tuple(res.shape), None, a.comm, a.device)
    if return_inverse:
        raise NotImplementedError("return_inverse is supported for unsplit arrays only")
    local = torch.unique(a.larray)
    v, _ = sample_sort(local, torch.zeros(local.shape[0], dtype=torch.int64), a.comm)
    v = torch.unique_consecutive(v)
    has = torch.tensor([1 if v.numel() else 0], dtype=torch.int64)
    last = v[-1:] if v.numel() else torch.zeros(1, dtype=v.dtype)
    all_has = a.comm.handle.allgather(has).tolist()
    all_last = a.comm.handle.allgather(last.contiguous())
    prev = [r for r in range(a.comm.rank) if all_has[r]]
    if prev and v.numel() and bool(v[0] == all_last[prev[-1]]):
        v = v[1:]
    counts = tuple(a.comm.handle.allgather(torch.tensor([v.shape[0]])).tolist())
    out = DNDarray._make(v, (sum(counts),), 0, a.comm, a.device, counts)
    return _redistribute.redistribute(out, chunk_counts(sum(counts), a.comm.size))
