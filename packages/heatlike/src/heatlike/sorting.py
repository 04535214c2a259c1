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


def _lex_position(values, keys, value, key, numbers: int) -> int:
    """How many (values, keys) pairs (sorted lexicographically, NaN last as ``torch.sort`` puts
    it) are below (value, key). The first ``numbers`` values are not NaN; the binary searches
    stay among them, since ``torch.searchsorted`` does not order NaN like ``torch.sort``."""
    if bool(value != value):  # a NaN splitter: every number and the NaNs with smaller keys
        left, right = numbers, values.shape[0]
    else:
        head = values[:numbers]
        left = int(torch.searchsorted(head, value.reshape(1), right=False))
        right = int(torch.searchsorted(head, value.reshape(1), right=True))
    return left + int(torch.searchsorted(keys[left:right], key.reshape(1)))


def _stable_sort_1d(values: torch.Tensor):
    """``torch.sort(values, stable=True)`` of a 1-d tensor, faster: an unstable sort, then only
    the runs of equal values (NaNs count as equal, they come last) get their indices put back
    in ascending order, by one small sort of (run, index) keys."""
    values, order = torch.sort(values)
    n = values.shape[0]
    if n < 2:
        return values, order
    same = values[1:] == values[:-1]
    if values.is_floating_point():
        nan = torch.isnan(values)
        same |= nan[1:] & nan[:-1]
    tied = torch.zeros(n, dtype=torch.bool)
    tied[1:] = same
    tied[:-1] |= same
    where = torch.nonzero(tied).squeeze(1)
    if where.numel():
        starts = torch.ones(where.numel(), dtype=torch.int64)  # 1 where a run of ties begins
        starts[1:] = ~same[where[1:] - 1]
        run = torch.cumsum(starts, 0)
        keys = run * n + order[where]
        order[where] = torch.sort(keys).values - run * n
    return values, order


def sample_sort(values: torch.Tensor, offset: int, comm):
    """Globally sort the 1-d ``values`` spread over ranks, ties kept in global index order.

    This rank's ``values`` are the elements ``offset, offset + 1, ...`` of the global array and
    lower ranks hold lower indices. Local stable sort, p-1 regular samples per rank, p-1
    splitters from the gathered samples (p*(p-1) (value, index) pairs, not data), one alltoallv
    into value ranges, then a stable sort of the received runs: they arrive in rank order, so
    equal values stay in index order. Returns this rank's sorted values and their global indices
    (the layout is not balanced).
    """
    values, order = _stable_sort_1d(values)
    gidx = order + offset
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
    numbers = n - int(torch.isnan(values).sum()) if values.is_floating_point() else n
    bounds = [0]
    for i in range(p - 1):
        if m:
            j = min((m * (i + 1)) // p, m - 1)
            bounds.append(_lex_position(values, gidx, all_v[j], all_i[j], numbers))
        else:
            bounds.append(n)
    bounds.append(n)
    bounds = [max(bounds[: k + 1]) for k in range(len(bounds))]
    counts = [bounds[k + 1] - bounds[k] for k in range(p)]
    recv_v = comm.handle.alltoallv(values, counts, 0)
    recv_i = comm.handle.alltoallv(gidx, counts, 0)
    merged, order = torch.sort(recv_v, stable=True)
    return merged, recv_i[order]


def _sort_1d_split(a: DNDarray, descending: bool):
    v, i = sample_sort(a.larray, a.offset, a.comm)
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
    if a.ndim == 1 and not descending and (a.split is None or a.comm.size == 1):
        v, i = _stable_sort_1d(a.larray)
        vals = DNDarray._make(v, a.gshape, a.split, a.comm, a.device, a._counts)
        idx = DNDarray._make(i, a.gshape, a.split, a.comm, a.device, a._counts)
    elif a.split != axis or a.comm.size == 1:
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
    v, _ = sample_sort(local, 0, a.comm)
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
