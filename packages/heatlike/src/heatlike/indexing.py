"""Indexing: ``x[key]`` and ``x[key] = value`` on distributed arrays, ``nonzero``.

Basic slicing on the split axis cuts each rank's block locally (the result keeps the split and may
be unbalanced, as in Heat); integer arrays on the split axis fetch the requested rows from their
owners with one alltoallv; a boolean mask of the array's shape selects locally.
"""

from __future__ import annotations

import numpy as np
import torch

from ._redistribute import align, reflow, resplit
from .communication import chunk_counts, offsets_of
from .dndarray import DNDarray

__all__ = ["getitem", "nonzero", "setitem", "take"]


# ------------------------------------------------------------------ scalar fast paths
def _scalar_position(x: DNDarray, key: tuple):
    shape = x._gshape
    norm = []
    for i, n in zip(key, shape):
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} is out of bounds for an axis of size {n}")
        norm.append(i)
    return norm


def _owner(counts, g: int) -> tuple[int, int]:
    start = 0
    for r, c in enumerate(counts):
        if g < start + c:
            return r, g - start
        start += c
    raise IndexError(g)  # pragma: no cover


def _scalar_get(x: DNDarray, key: tuple) -> DNDarray:
    pos = _scalar_position(x, key)
    split = x._split
    if split is None or x._comm.size == 1:
        return DNDarray._make(x._larray[tuple(pos)], (), None, x._comm, x._device)
    owner, local = _owner(x.counts, pos[split])
    pos[split] = local
    if owner == x._comm.rank:
        value = x._larray[tuple(pos)].clone()
    else:
        value = torch.empty((), dtype=x._larray.dtype, device=x._larray.device)
    x._comm.handle.bcast(value.reshape(1), owner)
    return DNDarray._make(value, (), None, x._comm, x._device)


def _row_get(x: DNDarray, i: int) -> DNDarray:
    """``x[i]`` of an N-d array whose first axis is local (not split, or one rank): no
    communication, the split axis (if any) moves down by one."""
    n = x._gshape[0]
    if not -n <= i < n:
        raise IndexError(f"index {i} is out of bounds for axis 0 with size {n}")
    split = None if x._split in (None, 0) else x._split - 1
    counts = None if split is None else x.counts
    return DNDarray._make(x._larray[i], x._gshape[1:], split, x._comm, x._device, counts)


def _scalar_set(x: DNDarray, key: tuple, value) -> None:
    pos = _scalar_position(x, key)
    if isinstance(value, DNDarray):
        value = value._larray
    split = x._split
    if split is not None and x._comm.size > 1:
        owner, pos[split] = _owner(x.counts, pos[split])
        if owner != x._comm.rank:
            return
    x._larray[tuple(pos)] = value


# ------------------------------------------------------------------ key normalisation
def _to_index_tensor(k):
    if isinstance(k, DNDarray):
        return resplit(k, None).larray
    if isinstance(k, torch.Tensor):
        return k
    if isinstance(k, np.ndarray):
        return torch.from_numpy(k)
    if isinstance(k, (list, tuple)):
        return torch.as_tensor(k)
    return None


def _normalize_key(x: DNDarray, key) -> list:
    """The key as a list with one entry per axis of ``x`` (plus None entries): ints, slices,
    index tensors (long) and None; Ellipsis expanded, boolean arrays turned into indices."""
    key = list(key) if isinstance(key, tuple) else [key]
    entries = []
    for k in key:
        if k is None or k is Ellipsis or isinstance(k, slice):
            entries.append(k)
        elif isinstance(k, (bool, np.bool_)):
            raise IndexError("boolean scalars are not supported as indices")
        elif isinstance(k, (int, np.integer)):
            entries.append(int(k))
        else:
            t = _to_index_tensor(k)
            if t is None:
                raise IndexError(
                    f"only ints, slices, None, Ellipsis and arrays are valid indices, got {type(k).__name__}"
                )
            if t.dtype is torch.bool:
                entries.extend(list(torch.nonzero(t, as_tuple=True)) if t.dim() else [t])
            elif t.is_floating_point() or t.is_complex():
                raise IndexError("arrays used as indices must be of integer or boolean type")
            elif t.dim() == 0:
                entries.append(int(t))
            else:
                entries.append(t.long())
    consumed = sum(1 for e in entries if e is not None and e is not Ellipsis)
    if consumed > x.ndim:
        raise IndexError(f"too many indices: {consumed} for an array of {x.ndim} dimensions")
    if entries.count(Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis")
    fill = [slice(None)] * (x.ndim - consumed)
    if Ellipsis in entries:
        i = entries.index(Ellipsis)
        entries = entries[:i] + fill + entries[i + 1 :]
    else:
        entries = entries + fill
    return entries


# ------------------------------------------------------------------ basic slicing plan
class _Plan:
    """What basic indexing does on this rank: the local key (positive steps only), the output
    dims to flip, the global output shape and the output's split layout."""

    def __init__(self):
        self.local_key, self.flip, self.shape = [], [], []
        self.split = self.counts = None
        self.split_int = None  # (owner, output shape with a 1 at the removed axis position)
        self.reversed_split = None  # (length, per-rank k ranges) for a negative step on split
        self.extra_dim = 0  # 1 once an int on the split axis was kept as a 1-wide slice


def _slice_counts(start, step, length, counts):
    """For positive ``step``: per rank, the range of positions k whose element
    ``start + k*step`` lies in that rank's block."""
    ranges = []
    for o, c in zip(offsets_of(counts), counts):
        lo = max(0, -(-(o - start) // step))
        hi = min(length, max(0, -(-(o + c - start) // step)))
        ranges.append((lo, max(hi, lo)))
    return ranges


def _plan_basic(x: DNDarray, entries) -> _Plan:
    plan = _Plan()
    axis = 0
    rank = x.comm.rank
    for e in entries:
        if e is None:
            plan.local_key.append(None)
            plan.shape.append(1)
            continue
        n = x.gshape[axis]
        if isinstance(e, int):
            i = e + n if e < 0 else e
            if not 0 <= i < n:
                raise IndexError(f"index {e} is out of bounds for axis {axis} with size {n}")
            if axis == x.split:
                owner, local = _owner(x.counts, i)
                plan.split_int = (owner, len(plan.shape))
                plan.extra_dim = 1
                plan.local_key.append(slice(local, local + 1) if owner == rank else slice(0, 0))
            else:
                plan.local_key.append(i)
            axis += 1
            continue
        start, stop, step = e.indices(n)
        length = len(range(start, stop, step))
        if step < 0:
            start, step = (start + (length - 1) * step if length else 0), -step
            plan.flip.append(len(plan.shape) + plan.extra_dim)
        if axis == x.split:
            ranges = _slice_counts(start, step, length, x.counts)
            lo, hi = ranges[rank]
            a = start + lo * step - x.offset
            plan.local_key.append(
                slice(a, a + (hi - lo - 1) * step + 1, step) if hi > lo else slice(0, 0)
            )
            plan.split = len(plan.shape)
            plan.counts = tuple(h - lo_ for lo_, h in ranges)
            if plan.flip and plan.flip[-1] == plan.split:
                plan.reversed_split = (length, ranges)
        else:
            plan.local_key.append(
                slice(start, start + (length - 1) * step + 1, step) if length else slice(0, 0)
            )
        plan.shape.append(length)
        axis += 1
    return plan


def _basic_get(x: DNDarray, entries) -> DNDarray:
    plan = _plan_basic(x, entries)
    t = x.larray[tuple(plan.local_key)]
    if plan.flip:
        t = t.flip(plan.flip)
    shape = tuple(plan.shape)
    if plan.split_int is not None:
        owner, pos = plan.split_int
        full = list(shape)
        full.insert(pos, 1)
        if x.comm.size > 1:
            buf = t.contiguous() if x.comm.rank == owner else torch.empty(full, dtype=t.dtype)
            x.comm.handle.bcast(buf, owner)
            t = buf
        return DNDarray._make(t.reshape(shape), shape, None, x.comm, x.device)
    if plan.split is None:
        return DNDarray._make(t, shape, None, x.comm, x.device)
    if plan.reversed_split is not None:
        length, ranges = plan.reversed_split
        layouts = [[(length - hi, hi - lo)] for lo, hi in ranges]
        counts = tuple(chunk_counts(length, x.comm.size))
        t = reflow([t], layouts, plan.split, counts, x.comm, t.narrow(plan.split, 0, 0))
        return DNDarray._make(t, shape, plan.split, x.comm, x.device, counts)
    return DNDarray._make(t, shape, plan.split, x.comm, x.device, plan.counts)


# ------------------------------------------------------------------ advanced indexing
def _fetch_rows(x: DNDarray, axis: int, wanted: list[torch.Tensor]) -> torch.Tensor:
    """Rows ``wanted[rank]`` (global indices along the split ``axis``) of ``x`` on each rank,
    fetched from their owners with one alltoallv."""
    comm, rank = x.comm, x.comm.rank
    if comm.size == 1:
        return x.larray.index_select(axis, wanted[0])
    ends = torch.tensor(np.cumsum(x.counts), dtype=torch.int64)
    offset = x.offset
    parts, counts = [], []
    for w in wanted:
        mine = torch.searchsorted(ends, w, right=True) == rank
        rows = w[mine] - offset
        parts.append(x.larray.index_select(axis, rows))
        counts.append(int(rows.numel()))
    received = comm.handle.alltoallv(torch.cat(parts, axis), counts, axis)
    owners = torch.searchsorted(ends, wanted[rank], right=True)
    order = torch.argsort(owners, stable=True)
    out = torch.empty_like(received)
    out.index_copy_(axis, order, received)
    return out


def take(x: DNDarray, indices, axis: int) -> DNDarray:
    """Elements of ``x`` at integer ``indices`` (any shape) along ``axis``; on the split axis the
    result is split along the first index dimension, balanced."""
    idx = _to_index_tensor(indices) if not isinstance(indices, torch.Tensor) else indices
    idx = idx.long()
    n = x.gshape[axis]
    if idx.numel() and (int(idx.min()) < -n or int(idx.max()) >= n):
        raise IndexError(f"index out of bounds for axis {axis} with size {n}")
    idx = torch.where(idx < 0, idx + n, idx)
    out_shape = x.gshape[:axis] + tuple(idx.shape) + x.gshape[axis + 1 :]
    local_rest = list(x.larray.shape)
    if x.split != axis or idx.dim() == 0:
        if idx.dim() == 0:
            return _basic_get(x, [slice(None)] * axis + [int(idx)])
        t = x.larray.index_select(axis, idx.reshape(-1))
        t = t.reshape(local_rest[:axis] + list(idx.shape) + local_rest[axis + 1 :])
        split = x.split
        if split is not None and split > axis:
            split += idx.dim() - 1
        counts = None if split is None else tuple(x.counts)
        return DNDarray._make(t, out_shape, split, x.comm, x.device, counts)
    counts = tuple(chunk_counts(idx.shape[0], x.comm.size))
    offs = offsets_of(counts)
    wanted = [idx[o : o + c].reshape(-1) for o, c in zip(offs, counts)]
    t = _fetch_rows(x, axis, wanted)
    mine = counts[x.comm.rank]
    t = t.reshape([*local_rest[:axis], mine, *idx.shape[1:], *local_rest[axis + 1 :]])
    return DNDarray._make(t, out_shape, axis, x.comm, x.device, counts)


def _mask_get(x: DNDarray, mask: DNDarray) -> DNDarray:
    if x.split not in (None, 0):
        x, mask = resplit(x, 0), resplit(mask, 0)
    m = align(mask, x.gshape, x.split, x.counts if x.split is not None else None).bool()
    t = x.larray[m]
    if x.split is None:
        return DNDarray._make(t, tuple(t.shape), None, x.comm, x.device)
    counts = tuple(x.comm.handle.allgather(torch.tensor([t.shape[0]], dtype=torch.int64)).tolist())
    return DNDarray._make(t, (sum(counts),), 0, x.comm, x.device, counts)


def _is_full_mask(x: DNDarray, key) -> bool:
    if isinstance(key, DNDarray):
        return key.dtype.torch_type() is torch.bool and key.gshape == x.gshape and x.ndim > 0
    if isinstance(key, (torch.Tensor, np.ndarray)):
        return key.dtype in (torch.bool, np.bool_) and tuple(key.shape) == x.gshape and x.ndim > 1
    return False


def _as_mask(x: DNDarray, key) -> DNDarray:
    if isinstance(key, DNDarray):
        return key
    from .factories import array

    return array(key, comm=x.comm)


def getitem(x: DNDarray, key) -> DNDarray:
    """``x[key]`` with NumPy semantics."""
    if type(key) is int:
        if x.ndim == 1:
            return _scalar_get(x, (key,))
        if x.ndim and (x._split != 0 or x._comm.size == 1):
            return _row_get(x, key)
    if type(key) is tuple and len(key) == x.ndim and all(type(k) is int for k in key):
        return _scalar_get(x, key)
    if _is_full_mask(x, key):
        return _mask_get(x, _as_mask(x, key))
    entries = _normalize_key(x, key)
    arrays = [i for i, e in enumerate(entries) if isinstance(e, torch.Tensor)]
    if not arrays:
        return _basic_get(x, entries)
    return _advanced_get(x, entries, arrays)


def _advanced_get(x: DNDarray, entries, arrays) -> DNDarray:
    tensors = torch.broadcast_tensors(*[entries[i] for i in arrays])
    ints = [i for i, e in enumerate(entries) if isinstance(e, int)]
    positions = sorted(arrays + ints)
    adjacent = positions == list(range(positions[0], positions[-1] + 1))
    if len(arrays) > 1:
        return _multi_get(x, entries, arrays, tensors, adjacent)
    (pos,) = arrays
    kept = list(entries)
    kept[pos] = slice(None)
    # axis of the array index after the basic step: count surviving dims before it
    new_axis = sum(1 for e in entries[:pos] if not isinstance(e, int))
    y = _basic_get(x, kept)
    out = take(y, tensors[0], new_axis)
    if ints and not adjacent and new_axis:
        from .manipulations import moveaxis

        nd = tensors[0].dim()
        out = moveaxis(out, list(range(new_axis, new_axis + nd)), list(range(nd)))
    return out


def _multi_get(x, entries, arrays, tensors, adjacent) -> DNDarray:
    """Several index arrays: the indexed axes are flattened into one and indexed with the
    raveled multi-index, so the split axis is handled by ``take``."""
    from .manipulations import moveaxis, reshape

    axes_of = {}
    axis = 0
    for i, e in enumerate(entries):
        if e is None:
            continue
        axes_of[i] = axis
        axis += 1
    indexed = [axes_of[i] for i in arrays]
    ints = [i for i, e in enumerate(entries) if isinstance(e, int)]
    # bring indexed axes to the front, in key order, then merge them
    rest = [a for a in range(x.ndim) if a not in indexed]
    y = (
        moveaxis(x, indexed, list(range(len(indexed))))
        if indexed != list(range(len(indexed)))
        else x
    )
    sizes = [x.gshape[a] for a in indexed]
    y = reshape(y, (int(np.prod(sizes)), *tuple(x.gshape[a] for a in rest)))
    linear = torch.zeros_like(tensors[0])
    for t, n in zip(tensors, sizes):
        if t.numel() and (int(t.min()) < -n or int(t.max()) >= n):
            raise IndexError("index out of bounds")
        linear = linear * n + torch.where(t < 0, t + n, t)
    rest_key = [
        entries[i]
        for i in range(len(entries))
        if i not in arrays and (entries[i] is None or axes_of.get(i) in rest)
    ]
    out = take(y, linear, 0)
    if rest_key:
        out = _basic_get(out, [slice(None)] * linear.dim() + rest_key)
    if adjacent and not ints and indexed[0] > 0:
        nd = linear.dim()
        first = sum(1 for e in entries[: arrays[0]] if not isinstance(e, int))
        out = moveaxis(out, list(range(nd)), list(range(first, first + nd)))
    return out


# ------------------------------------------------------------------ setitem
def _value_tensor(x: DNDarray, value, shape, split, counts):
    """``value`` as a local tensor for this rank's block of a selection of ``shape`` split on
    ``split`` with ``counts``."""
    if isinstance(value, DNDarray):
        return align(value, shape, split, counts).to(x.larray.dtype)
    v = torch.as_tensor(value, dtype=x.larray.dtype, device=x.larray.device)
    if split is None or v.dim() == 0:
        return v
    lead = len(shape) - v.dim()
    axis = split - lead
    if axis >= 0 and v.shape[axis] == shape[split] != 1:
        v = v.narrow(axis, sum(counts[: x.comm.rank]), counts[x.comm.rank])
    return v


def setitem(x: DNDarray, key, value) -> None:
    """``x[key] = value`` with NumPy broadcasting; each rank writes only its own block."""
    if (type(key) is int and x.ndim == 1) or (
        type(key) is tuple and len(key) == x.ndim and all(type(k) is int for k in key)
    ):
        if not isinstance(value, DNDarray) or value.ndim == 0:
            _scalar_set(x, key if type(key) is tuple else (key,), value)
            return
    if _is_full_mask(x, key):
        _mask_set(x, _as_mask(x, key), value)
        return
    entries = _normalize_key(x, key)
    arrays = [i for i, e in enumerate(entries) if isinstance(e, torch.Tensor)]
    if not arrays:
        _basic_set(x, entries, value)
    elif len(arrays) == 1:
        _array_set(x, entries, arrays[0], value)
    else:
        _multi_set(x, entries, arrays, value)


def _basic_set(x: DNDarray, entries, value) -> None:
    plan = _plan_basic(x, entries)
    shape = tuple(plan.shape)
    if plan.reversed_split is not None or plan.split_int is not None:
        v = _value_tensor(x, value, shape, None, None)
        v = torch.broadcast_to(v, shape)
        if plan.reversed_split is not None:
            length, ranges = plan.reversed_split
            lo, hi = ranges[x.comm.rank]
            v = v.narrow(plan.split, length - hi, hi - lo)
    else:
        v = _value_tensor(x, value, shape, plan.split, plan.counts)
    target = x.larray[tuple(plan.local_key)]
    if plan.split_int is not None:
        owner, pos = plan.split_int
        if owner != x.comm.rank:
            return
        v = v.unsqueeze(pos) if v.dim() == len(shape) else v
    v = torch.broadcast_to(v, target.shape)
    if plan.flip:
        v = v.flip(plan.flip)
    x.larray[tuple(plan.local_key)] = v


def _array_set(x: DNDarray, entries, pos: int, value) -> None:
    if any(isinstance(e, slice) and e.step is not None and e.step < 0 for e in entries):
        raise NotImplementedError("assignment mixing index arrays and negative steps")
    idx = entries[pos]
    kept = list(entries)
    kept[pos] = slice(None)
    plan = _plan_basic(x, kept)
    if plan.split_int is not None:
        raise NotImplementedError("assignment mixing index arrays and an int on the split axis")
    new_axis = sum(1 for e in entries[:pos] if not isinstance(e, int))
    n = plan.shape[new_axis]
    if idx.numel() and (int(idx.min()) < -n or int(idx.max()) >= n):
        raise IndexError(f"index out of bounds for an axis of size {n}")
    idx = torch.where(idx < 0, idx + n, idx).reshape(-1)
    sel_shape = [*plan.shape[:new_axis], idx.numel(), *plan.shape[new_axis + 1 :]]
    view = x.larray[tuple(plan.local_key)]
    if isinstance(value, DNDarray):
        value = resplit(value, None).larray
    v = torch.as_tensor(value, dtype=x.larray.dtype)
    full_shape = plan.shape[:new_axis] + list(entries[pos].shape) + plan.shape[new_axis + 1 :]
    v = torch.broadcast_to(v, full_shape).reshape(sel_shape)
    if plan.split is not None and plan.split != new_axis:
        o = sum(plan.counts[: x.comm.rank])
        v = v.narrow(plan.split, o, plan.counts[x.comm.rank])
    if plan.split == new_axis:
        start = sum(plan.counts[: x.comm.rank])
        mine = (idx >= start) & (idx < start + plan.counts[x.comm.rank])
        v = v.index_select(new_axis, torch.nonzero(mine).reshape(-1))
        idx = idx[mine] - start
    index = [slice(None)] * new_axis + [idx]
    view[tuple(index)] = v


def _multi_set(x: DNDarray, entries, arrays, value) -> None:
    """``x[i0, i1, ...] = value`` with several index arrays (and full slices ``:`` on the other
    axes). The value is broadcast to NumPy's selection shape; each rank writes the selected
    elements that lie in its block (the value is replicated; the array is not moved)."""
    if any(e is None or isinstance(e, int) for e in entries) or any(
        isinstance(e, slice) and e != slice(None) for e in entries
    ):
        raise NotImplementedError(
            "assignment with several index arrays supports full slices ':' on the other axes only"
        )
    tensors = torch.broadcast_tensors(*[entries[i] for i in arrays])
    bshape = list(tensors[0].shape)
    rest = [a for a in range(x.ndim) if a not in arrays]
    idx = []
    for a, t in zip(arrays, tensors):
        n = x.gshape[a]
        if t.numel() and (int(t.min()) < -n or int(t.max()) >= n):
            raise IndexError(f"index out of bounds for axis {a} with size {n}")
        idx.append(torch.where(t < 0, t + n, t).reshape(-1))
    adjacent = arrays == list(range(arrays[0], arrays[-1] + 1))
    rest_shape = [x.gshape[a] for a in rest]
    if adjacent:
        before = [x.gshape[a] for a in rest if a < arrays[0]]
        after = [x.gshape[a] for a in rest if a > arrays[-1]]
        sel_shape = before + bshape + after
    else:
        sel_shape = bshape + rest_shape
    if isinstance(value, DNDarray):
        value = resplit(value, None).larray
    v = torch.broadcast_to(torch.as_tensor(value, dtype=x.larray.dtype), sel_shape)
    if adjacent and before:  # canonical order: the index dimensions first, then the slices
        nb = len(bshape)
        v = v.movedim(list(range(len(before), len(before) + nb)), list(range(nb)))
    v = v.reshape(-1, *rest_shape)
    if x.split is not None:
        start, count = x.offset, x.counts[x.comm.rank]
        if x.split in arrays:
            k = arrays.index(x.split)
            keep = (idx[k] >= start) & (idx[k] < start + count)
            idx = [i[keep] for i in idx]
            idx[k] = idx[k] - start
            v = v[keep]
        else:
            v = v.narrow(1 + rest.index(x.split), start, count)
    view = x.larray.permute(arrays + rest)
    view[tuple(idx)] = v


def _mask_set(x: DNDarray, mask: DNDarray, value) -> None:
    scalar = not isinstance(value, (DNDarray, torch.Tensor, np.ndarray, list, tuple)) or (
        getattr(value, "ndim", 1) == 0 or (hasattr(value, "size") and _numel(value) == 1)
    )
    if not scalar and x.split not in (None, 0):
        moved = resplit(x, 0)
        _mask_set(moved, resplit(mask, 0), value)
        x._larray = resplit(moved, x.split, x.counts).larray
        return
    m = align(mask, x.gshape, x.split, x.counts if x.split is not None else None).bool()
    if scalar:
        if isinstance(value, DNDarray):
            value = value.larray.reshape(())
        x.larray[m] = torch.as_tensor(value, dtype=x.larray.dtype).reshape(())
        return
    local_true = int(m.sum())
    if x.split is None:
        counts = None
        total = local_true
    else:
        counts = tuple(x.comm.handle.allgather(torch.tensor([local_true])).tolist())
        total = sum(counts)
    v = _value_tensor(
        x,
        value if isinstance(value, DNDarray) else torch.as_tensor(value),
        (total,),
        None if x.split is None else 0,
        counts,
    )
    x.larray[m] = torch.broadcast_to(v, (local_true,)).to(x.larray.dtype)


def _numel(v) -> int:
    s = v.size() if isinstance(v, torch.Tensor) else v.size
    return int(np.prod(s)) if not isinstance(s, int) else s


def nonzero(x: DNDarray) -> DNDarray:
    """Indices of the non-zero elements as an (n, ndim) array, split on 0 when ``x`` is split
    (Heat's layout; ``tuple(result.T)`` gives NumPy's)."""
    t = x.larray
    local = torch.nonzero(t)
    if x.split is not None:
        local[:, x.split] += x.offset
        if x.split != 0 and x.comm.size > 1:
            # rows of a split != 0 array interleave in row-major order: restore the global order
            moved = resplit(x, 0)
            return nonzero(moved)
        counts = tuple(x.comm.handle.allgather(torch.tensor([local.shape[0]])).tolist())
        return DNDarray._make(local, (sum(counts), x.ndim), 0, x.comm, x.device, counts)
    return DNDarray._make(local, tuple(local.shape), None, x.comm, x.device)
