"""Generic reduction kernels: reduce along axes, merge partial moments, arg-reduce, scans."""

from __future__ import annotations

import torch

import hpc_comm as hc

from .dndarray import DNDarray

__all__ = ["arg_reduce", "moments", "normalize_axes", "reduce_op", "scan_op"]


def normalize_axes(axis, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple of ints) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in items:
        if isinstance(a, bool) or not isinstance(a, int):
            raise TypeError(f"axis must be None, an int or a tuple of ints, got {axis!r}")
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for an array of {ndim} dimensions")
        out.append(a % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"axis contains duplicates: {axis!r}")
    return tuple(sorted(out)) if ndim else ()


def _result_layout(x: DNDarray, axes, keepdims: bool):
    """Shape, split and counts of a reduction of ``x`` over ``axes``."""
    if keepdims:
        shape = tuple(1 if i in axes else s for i, s in enumerate(x.gshape))
    else:
        shape = tuple(s for i, s in enumerate(x.gshape) if i not in axes)
    if x.split is None or x.split in axes:
        return shape, None, None
    split = x.split if keepdims else x.split - sum(1 for a in axes if a < x.split)
    return shape, split, tuple(x.counts)


def _squeeze(t: torch.Tensor, axes, keepdims: bool) -> torch.Tensor:
    if keepdims or not axes:
        return t
    return t.reshape([s for i, s in enumerate(t.shape) if i not in axes])


def reduce_op(
    x: DNDarray,
    local_fn,
    comm_op,
    axis=None,
    keepdims=False,
    neutral=None,
    nan_propagates=False,
    multi_axis=True,
) -> DNDarray:
    """Reduce ``x`` over ``axis`` with ``local_fn(tensor, dim)`` (keepdim) on each rank, then one
    allreduce with ``comm_op`` when the split axis is among the reduced ones. ``local_fn`` gets
    all reduced axes at once as a tuple (one pass over the data) unless ``multi_axis`` is False.
    A rank with no rows contributes ``neutral``. ``nan_propagates`` (MIN/MAX of floats): a NaN on
    any rank makes the result NaN, as in NumPy (MPI's MIN/MAX would drop it); a NaN flag travels
    in the same allreduce."""
    axes = normalize_axes(axis, x.ndim)
    t = x.larray
    split_reduced = x.split is not None and x.split in axes
    if split_reduced and t.shape[x.split] == 0 and neutral is not None:
        shape = list(t.shape)
        shape[x.split] = 1
        t = torch.full(shape, neutral, dtype=t.dtype, device=t.device)
    if x.ndim == 0:
        t = local_fn(t.reshape(1), 0).reshape(())
    elif multi_axis and len(axes) > 1:
        t = local_fn(t, axes)
    else:
        for a in reversed(axes):
            t = local_fn(t, a)
    if split_reduced and x.comm.size > 1:
        if nan_propagates:
            t = _allreduce_keeping_nan(t, comm_op, x.comm.handle)
        else:
            t = t.contiguous()
            x.comm.handle.allreduce(t, comm_op)
    shape, split, counts = _result_layout(x, axes, keepdims)
    return DNDarray._make(_squeeze(t, axes, keepdims), shape, split, x.comm, x.device, counts)


def _allreduce_keeping_nan(t: torch.Tensor, comm_op, handle) -> torch.Tensor:
    """MIN/MAX allreduce of ``t`` where a NaN on any rank gives NaN. A flag beside each value
    travels in the same allreduce: ``t != t`` (1 at NaN) under MAX, ``t == t`` (0 at NaN) under
    MIN; the values MPI combines at a NaN position do not matter, the flag overrides them."""
    largest = comm_op == hc.MAX
    flag = torch.ne(t, t) if largest else torch.eq(t, t)
    both = torch.stack([t, flag.to(t.dtype)])
    handle.allreduce(both, comm_op)
    nan_any = both[1] != 0 if largest else both[1] == 0
    return both[0].masked_fill_(nan_any, float("nan"))


def _float_type(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype.is_floating_point or dtype.is_complex else torch.float32


def moments(x: DNDarray, axis=None, keepdims=False, second=True):
    """Mean and sum of squared deviations over ``axis``, and the element count.

    Each rank computes its partial (count, mean, M2); the partials are merged pairwise in a fixed
    tree (Chan et al.'s update), so the result does not depend on summation order across ranks.
    Returns (mean DNDarray, M2 DNDarray or None, count).
    """
    axes = normalize_axes(axis, x.ndim)
    dtype = _float_type(x.larray.dtype)
    t = x.larray.to(dtype)
    if x.ndim == 0:
        t = t.reshape(1)
        axes_local = (0,)
    else:
        axes_local = axes
    local_n = 1
    for a in axes_local:
        local_n *= t.shape[a]
    total_n = 1
    for a in axes:
        total_n *= x.gshape[a]
    if local_n:
        mean = torch.mean(t, dim=axes_local, keepdim=True) if axes_local else t.clone()
        m2 = (
            torch.sum((t - mean) ** 2, dim=axes_local, keepdim=True)
            if second and axes_local
            else torch.zeros_like(mean)
        )
    else:
        shape = [1 if i in axes_local else s for i, s in enumerate(t.shape)]
        mean = torch.zeros(shape, dtype=dtype, device=t.device)
        m2 = torch.zeros_like(mean)
    split_reduced = x.split is not None and x.split in axes and x.comm.size > 1
    if split_reduced:
        mean, m2 = _merge_over_ranks(x, axes, mean, m2)
    if total_n == 0:  # the mean of nothing is NaN, as in NumPy
        mean = torch.full_like(mean, float("nan"))
        m2 = torch.full_like(m2, float("nan"))
    shape, split, counts = _result_layout(x, axes, keepdims)
    mean_t = _squeeze(mean, axes_local if x.ndim else (0,), keepdims)
    m2_t = _squeeze(m2, axes_local if x.ndim else (0,), keepdims)
    wrap = lambda v: DNDarray._make(v, shape, split, x.comm, x.device, counts)  # noqa: E731
    return wrap(mean_t), (wrap(m2_t) if second else None), total_n


def _merge_over_ranks(x: DNDarray, axes, mean, m2):
    """Merge every rank's (n, mean, M2) pairwise: ranks (0,1), (2,3), ... then pairs of pairs."""
    others = 1
    for a in axes:
        if a != x.split:
            others *= x.gshape[a]
    ns = [c * others for c in x.counts]
    stacked = torch.stack([mean, m2]).contiguous()
    gathered = x.comm.handle.allgather(stacked.unsqueeze(0), dim=0)
    parts = [(float(ns[r]), gathered[r, 0], gathered[r, 1]) for r in range(x.comm.size)]
    while len(parts) > 1:
        merged = [_merge(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        if len(parts) % 2:
            merged.append(parts[-1])
        parts = merged
    _, mean, m2 = parts[0]
    return mean, m2


def _merge(a, b):
    na, ma, sa = a
    nb, mb, sb = b
    n = na + nb
    if na == 0:
        return b
    if nb == 0:
        return a
    delta = mb - ma
    return n, ma + delta * (nb / n), sa + sb + delta * delta * (na * nb / n)


def arg_reduce(x: DNDarray, largest: bool, axis=None, keepdims=False) -> DNDarray:
    """Global index of the first maximum (``largest``) or minimum along ``axis`` (None: of the
    flattened array). NaN counts as the extreme, as in NumPy."""
    pick = torch.max if largest else torch.min
    if axis is None:
        return _arg_flat(x, pick, largest, keepdims)
    (axis,) = normalize_axes(axis, x.ndim)
    t = x.larray
    shape, split, counts = _result_layout(x, (axis,), keepdims)
    if x.split != axis:
        idx = pick(t, dim=axis, keepdim=keepdims).indices
        return DNDarray._make(idx, shape, split, x.comm, x.device, counts)
    if t.shape[axis]:
        vals, idx = pick(t, dim=axis, keepdim=True)
        idx = idx + x.offset
    else:
        rest = list(t.shape)
        rest[axis] = 1
        vals = torch.zeros(rest, dtype=t.dtype, device=t.device)
        idx = torch.zeros(rest, dtype=torch.int64, device=t.device)
    if x.comm.size > 1:
        all_vals = x.comm.handle.allgather(vals.contiguous(), dim=axis)
        all_idx = x.comm.handle.allgather(idx.contiguous(), dim=axis)
        vals, idx = _best_of_ranks(all_vals, all_idx, axis, x.counts, largest)
    return DNDarray._make(_squeeze(idx, (axis,), keepdims), shape, None, x.comm, x.device)


def _best_of_ranks(vals, idx, axis, counts, largest):
    """Per position, the value and index of the best rank (the smallest global index on ties,
    which is not the lowest rank for the flattened index of an array split on axis > 0)."""
    best_v = best_i = None
    for r, c in enumerate(counts):
        if not c:
            continue
        v, i = vals.narrow(axis, r, 1), idx.narrow(axis, r, 1)
        if best_v is None:
            best_v, best_i = v, i
            continue
        better = v > best_v if largest else v < best_v
        tie = (v == best_v) & (i < best_i)
        if v.is_floating_point() or v.is_complex():
            v_nan, best_nan = torch.isnan(v), torch.isnan(best_v)
            better = (better & ~best_nan) | (v_nan & ~best_nan)
            tie = tie | (v_nan & best_nan & (i < best_i))
        better = better | tie
        best_v, best_i = torch.where(better, v, best_v), torch.where(better, i, best_i)
    return best_v, best_i


def _arg_flat(x: DNDarray, pick, largest, keepdims) -> DNDarray:
    t = x.larray
    if t.numel():
        flat = t.reshape(-1)
        v, i = pick(flat, dim=0)
        local_pos = torch.unravel_index(i, t.shape) if t.dim() else ()
        global_pos = [int(p) + (x.offset if d == x.split else 0) for d, p in enumerate(local_pos)]
        gidx = 0
        for d, p in enumerate(global_pos):
            gidx = gidx * x.gshape[d] + p
        vals = v.reshape(1)
        idx = torch.tensor([gidx], dtype=torch.int64)
    else:
        vals = torch.zeros(1, dtype=t.dtype)
        idx = torch.zeros(1, dtype=torch.int64)
    if x.split is not None and x.comm.size > 1:
        all_vals = x.comm.handle.allgather(vals, dim=0)
        all_idx = x.comm.handle.allgather(idx, dim=0)
        vals, idx = _best_of_ranks(all_vals, all_idx, 0, x.counts, largest)
    out = idx.reshape([1] * x.ndim if keepdims else [])
    return DNDarray._make(out, tuple(out.shape), None, x.comm, x.device)


def scan_op(x: DNDarray, kind: str, axis: int, dtype=None) -> DNDarray:
    """Inclusive cumulative sum (``kind='sum'``) or product along ``axis``: a local scan, then
    each rank adds (multiplies) the totals of the ranks before it (one small allgather)."""
    local_fn = torch.cumsum if kind == "sum" else torch.cumprod
    t = x.larray if dtype is None else x.larray.to(dtype)
    c = local_fn(t, dim=axis)
    if x.split == axis and x.comm.size > 1:
        rest = list(c.shape)
        rest[axis] = 1
        neutral = 0 if kind == "sum" else 1
        last = (
            c.narrow(axis, c.shape[axis] - 1, 1)
            if c.shape[axis]
            else torch.full(rest, neutral, dtype=c.dtype)
        )
        totals = x.comm.handle.allgather(last.contiguous(), dim=axis)
        before = totals.narrow(axis, 0, x.comm.rank)
        if kind == "sum":
            c = c + torch.sum(before, dim=axis, keepdim=True).to(c.dtype)
        else:
            c = c * torch.prod(before, dim=axis, keepdim=True).to(c.dtype)
    return DNDarray._make(c, x.gshape, x.split, x.comm, x.device, x._counts)
