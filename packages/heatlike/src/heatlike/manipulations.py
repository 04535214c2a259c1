"""Shape and layout manipulation: reshape, transpose, concatenate/stack, squeeze, flip, roll,
pad, repeat, tile, diag/diagonal, tril/triu, resplit/balance/redistribute."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from . import _redistribute
from .communication import chunk_counts, offsets_of
from .dndarray import DNDarray
from .factories import array, full, sanitize_split

__all__ = [
    "balance",
    "broadcast_to",
    "column_stack",
    "concatenate",
    "copy",
    "diag",
    "diagonal",
    "dsplit",
    "expand_dims",
    "flatten",
    "flip",
    "fliplr",
    "flipud",
    "hsplit",
    "hstack",
    "moveaxis",
    "pad",
    "ravel",
    "redistribute",
    "repeat",
    "reshape",
    "resplit",
    "roll",
    "row_stack",
    "split",
    "squeeze",
    "stack",
    "swapaxes",
    "tile",
    "transpose",
    "tril",
    "triu",
    "vsplit",
    "vstack",
]


def _check(x, name="x") -> DNDarray:
    if not isinstance(x, DNDarray):
        raise TypeError(f"{name} must be a DNDarray, got {type(x).__name__}")
    return x


def _axis(axis, ndim, name="axis") -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for {ndim} dimensions")
    return int(axis) % ndim


def resplit(x, axis=None) -> DNDarray:
    """``x`` split along ``axis`` (None: replicated), balanced; split-to-split is one
    alltoallv, nothing is gathered to one rank."""
    return _redistribute.resplit(_check(x), axis)


def balance(x) -> DNDarray:
    """``x`` in the balanced layout (a copy only if it was not balanced)."""
    return _redistribute.balance(_check(x))


def redistribute(x, lshape_map=None, target_map=None) -> DNDarray:
    """``x`` with the local shapes ``target_map`` (a (ranks, ndim) tensor; default balanced)."""
    x = _check(x)
    if x.split is None:
        return x
    if target_map is None:
        return _redistribute.balance(x)
    counts = [int(c) for c in torch.as_tensor(target_map)[:, x.split]]
    return _redistribute.redistribute(x, counts)


def _infer_shape(shape, size) -> tuple:
    shape = list(shape)
    if shape.count(-1) > 1:
        raise ValueError("only one dimension of the new shape can be -1")
    known = int(np.prod([s for s in shape if s != -1]))
    if -1 in shape:
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape an array of size {size} into shape {tuple(shape)}")
        shape[shape.index(-1)] = size // known
    if int(np.prod(shape)) != size:
        raise ValueError(f"cannot reshape an array of size {size} into shape {tuple(shape)}")
    return tuple(int(s) for s in shape)


def reshape(x, *shape, new_split=None, **kwargs) -> DNDarray:
    """``x`` with a new shape (same data in row-major order). A split array keeps a split
    (``new_split``, default its old split clipped to the new rank) and is redistributed with
    alltoallv; nothing is gathered."""
    x = _check(x)
    if "axis" in kwargs:
        new_split = kwargs.pop("axis")
    if kwargs:
        raise TypeError(f"reshape got unexpected arguments {sorted(kwargs)}")
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        shape = tuple(shape[0])
    shape = _infer_shape(shape, x.size)
    if x.split is None:
        out = DNDarray._make(x.larray.reshape(shape), shape, None, x.comm, x.device)
        return out if new_split is None else resplit(out, new_split)
    if len(shape) == 0:
        return DNDarray._make(resplit(x, None).larray.reshape(()), (), None, x.comm, x.device)
    target_split = (
        min(x.split, len(shape) - 1)
        if new_split is None
        else sanitize_split(new_split, len(shape), "new_split")
    )
    y = x if x.split == 0 else _redistribute.resplit(x, 0)
    row = int(np.prod(x.gshape[1:]))
    new_row = int(np.prod(shape[1:]))
    layouts = [[(o * row, c * row)] for o, c in zip(offsets_of(y.counts), y.counts)]
    new_counts = chunk_counts(shape[0], x.comm.size)
    flat = y.larray.reshape(-1)
    local = _redistribute.reflow(
        [flat], layouts, 0, [c * new_row for c in new_counts], x.comm, flat[:0]
    )
    out = DNDarray._make(
        local.reshape(new_counts[x.comm.rank], *shape[1:]),
        shape,
        0,
        x.comm,
        x.device,
        tuple(new_counts),
    )
    return out if target_split == 0 else _redistribute.resplit(out, target_split)


def flatten(x) -> DNDarray:
    """``x`` as 1-d (split on 0 if ``x`` was split)."""
    x = _check(x)
    return reshape(x, (x.size,), new_split=None if x.split is None else 0)


ravel = flatten


def transpose(x, axes=None) -> DNDarray:
    """``x`` with its axes permuted (reversed by default); the split axis follows. Local."""
    x = _check(x)
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    axes = tuple(_axis(a, x.ndim, "axes") for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"axes must be a permutation of 0..{x.ndim - 1}, got {axes}")
    split = None if x.split is None else axes.index(x.split)
    shape = tuple(x.gshape[a] for a in axes)
    return DNDarray._make(x.larray.permute(axes), shape, split, x.comm, x.device, x._counts)


def swapaxes(x, axis1, axis2) -> DNDarray:
    """``x`` with ``axis1`` and ``axis2`` interchanged; local, the split axis follows."""
    x = _check(x)
    axes = list(range(x.ndim))
    a, b = _axis(axis1, x.ndim, "axis1"), _axis(axis2, x.ndim, "axis2")
    axes[a], axes[b] = axes[b], axes[a]
    return transpose(x, axes)


def moveaxis(x, source, destination) -> DNDarray:
    """``x`` with the axes ``source`` moved to the positions ``destination`` (ints or sequences
    of equal length), the other axes keeping their order; local, the split axis follows."""
    x = _check(x)
    src = [source] if isinstance(source, (int, np.integer)) else list(source)
    dst = [destination] if isinstance(destination, (int, np.integer)) else list(destination)
    if len(src) != len(dst):
        raise ValueError("source and destination must have the same number of elements")
    src = [_axis(a, x.ndim, "source") for a in src]
    dst = [_axis(a, x.ndim, "destination") for a in dst]
    order = [a for a in range(x.ndim) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, order)


def expand_dims(x, axis) -> DNDarray:
    """``x`` with a new axis of length 1 at ``axis``."""
    x = _check(x)
    axis = _axis(axis, x.ndim + 1)
    shape = (*x.gshape[:axis], 1, *x.gshape[axis:])
    split = x.split if x.split is None or x.split < axis else x.split + 1
    return DNDarray._make(x.larray.unsqueeze(axis), shape, split, x.comm, x.device, x._counts)


def squeeze(x, axis=None) -> DNDarray:
    """``x`` without axes of length 1 (all, or those in ``axis``)."""
    x = _check(x)
    if axis is None:
        axes = [i for i, s in enumerate(x.gshape) if s == 1]
    else:
        axes = [_axis(a, x.ndim) for a in (axis if isinstance(axis, (tuple, list)) else (axis,))]
        if any(x.gshape[a] != 1 for a in axes):
            raise ValueError("cannot select an axis to squeeze out which has size not equal to one")
    if x.split in axes:
        x = _redistribute.resplit(x, None)
    shape = tuple(s for i, s in enumerate(x.gshape) if i not in axes)
    local = x.larray.reshape([s for i, s in enumerate(x.larray.shape) if i not in axes])
    split = None if x.split is None else x.split - sum(1 for a in axes if a < x.split)
    return DNDarray._make(local, shape, split, x.comm, x.device, x._counts)


def broadcast_to(x, shape) -> DNDarray:
    """``x`` broadcast to ``shape`` (a copy in the layout the broadcasting rules pick)."""
    from ._operations import nary_op

    x = _check(x)
    shape = tuple(int(s) for s in ((shape,) if isinstance(shape, (int, np.integer)) else shape))
    lead = len(shape) - x.ndim
    keeps_split = x.split is not None and lead >= 0 and x.gshape[x.split] == shape[x.split + lead]
    # the zeros template is split like the result, so no rank allocates the whole output
    split = x.split + lead if keeps_split else None
    template = full(shape, 0, dtype=x.dtype, split=split, comm=x.comm, device=x.device)
    return nary_op(lambda a, b: a + b, template, x)


def concatenate(arrays, axis: int = 0) -> DNDarray:
    """Join arrays along an existing ``axis``. The result takes the first split input's split;
    along the split axis blocks are reflowed to the balanced layout with one alltoallv."""
    arrays = [a if isinstance(a, DNDarray) else array(a) for a in arrays]
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    ndim = arrays[0].ndim
    if ndim == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    axis = _axis(axis, ndim)
    for a in arrays:
        if a.ndim != ndim or any(
            s != t for i, (s, t) in enumerate(zip(a.gshape, arrays[0].gshape)) if i != axis
        ):
            raise ValueError(
                f"all input array dimensions except for axis {axis} must match, got "
                f"{[x.gshape for x in arrays]}"
            )
    from . import types

    dtype = types.result_type(*arrays).torch_type()
    split = next((a.split for a in arrays if a.split is not None), None)
    shape = list(arrays[0].gshape)
    shape[axis] = sum(a.gshape[axis] for a in arrays)
    comm, device = arrays[0].comm, arrays[0].device
    if split is None:
        local = torch.cat([a.larray.to(dtype) for a in arrays], axis)
        return DNDarray._make(local, tuple(shape), None, comm, device)
    if axis != split:
        first = next(a for a in arrays if a.split == split)
        counts = tuple(first.counts)
        parts = [_redistribute.align(a, a.gshape, split, counts).to(dtype) for a in arrays]
        return DNDarray._make(torch.cat(parts, axis), tuple(shape), split, comm, device, counts)
    pieces, layouts = [], [[] for _ in range(comm.size)]
    start = 0
    for a in arrays:
        a = a if a.split == split else _redistribute.resplit(a, split)
        pieces.append(a.larray.to(dtype))
        for r, (o, c) in enumerate(zip(offsets_of(a.counts), a.counts)):
            layouts[r].append((start + o, c))
        start += a.gshape[axis]
    counts = tuple(chunk_counts(shape[axis], comm.size))
    empty = pieces[0].narrow(axis, 0, 0)
    local = _redistribute.reflow(pieces, layouts, axis, counts, comm, empty)
    return DNDarray._make(local, tuple(shape), split, comm, device, counts)


def stack(arrays, axis: int = 0, out=None) -> DNDarray:
    """Join arrays of equal shape along a new ``axis``."""
    arrays = [a if isinstance(a, DNDarray) else array(a) for a in arrays]
    if not arrays:
        raise ValueError("need at least one array to stack")
    if len({a.gshape for a in arrays}) != 1:
        raise ValueError(
            f"all input arrays must have the same shape, got {[a.gshape for a in arrays]}"
        )
    axis = _axis(axis, arrays[0].ndim + 1)
    return concatenate([expand_dims(a, axis) for a in arrays], axis)


def hstack(arrays) -> DNDarray:
    """Join arrays along their columns (axis 1), or along axis 0 when they are 1-d."""
    arrays = [a if isinstance(a, DNDarray) else array(a) for a in arrays]
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    return concatenate(arrays, 0 if arrays[0].ndim == 1 else 1)


def vstack(arrays) -> DNDarray:
    """Join arrays along axis 0; a 1-d array of length n is first made a (1, n) row."""
    arrays = [a if isinstance(a, DNDarray) else array(a) for a in arrays]
    arrays = [expand_dims(a, 0) if a.ndim == 1 else a for a in arrays]
    return concatenate(arrays, 0)


def _place_rows(x: DNDarray, axis: int, layout_of_rank, counts) -> DNDarray:
    """Reflow ``x``'s pieces (given per rank by ``layout_of_rank(r) -> [(start, local_lo,
    length)]``) to ``counts`` along the split ``axis``."""
    comm = x.comm
    mine = layout_of_rank(comm.rank)
    pieces = [x.larray.narrow(axis, lo, n) for _, lo, n in mine]
    layouts = [[(g, n) for g, _, n in layout_of_rank(r)] for r in range(comm.size)]
    local = _redistribute.reflow(pieces, layouts, axis, counts, comm, x.larray.narrow(axis, 0, 0))
    return DNDarray._make(local, x.gshape, axis, comm, x.device, tuple(counts))


def flip(x, axis=None) -> DNDarray:
    """``x`` with the order of elements reversed along ``axis`` (all axes by default)."""
    x = _check(x)
    axes = range(x.ndim) if axis is None else axis if isinstance(axis, (tuple, list)) else (axis,)
    axes = [_axis(a, x.ndim) for a in axes]
    out = DNDarray._make(x.larray.flip(axes), x.gshape, x.split, x.comm, x.device, x._counts)
    if x.split not in axes or x.comm.size == 1:
        return out
    n, counts, offs = x.gshape[x.split], x.counts, offsets_of(x.counts)
    return _place_rows(
        out,
        x.split,
        lambda r: [(n - offs[r] - counts[r], 0, counts[r])],
        chunk_counts(n, x.comm.size),
    )


def fliplr(x) -> DNDarray:
    """``x`` with the order along axis 1 reversed (``flip(x, 1)``)."""
    return flip(x, 1)


def flipud(x) -> DNDarray:
    """``x`` with the order along axis 0 reversed (``flip(x, 0)``)."""
    return flip(x, 0)


def roll(x, shift, axis=None) -> DNDarray:
    """Elements shifted by ``shift`` along ``axis`` (cyclically; the flattened array if None)."""
    x = _check(x)
    if axis is None:
        return reshape(roll(flatten(x), shift, 0), x.gshape, new_split=x.split)
    if isinstance(axis, (tuple, list)):
        shifts = shift if isinstance(shift, (tuple, list)) else [shift] * len(axis)
        for s, a in zip(shifts, axis):
            x = roll(x, s, a)
        return x
    axis = _axis(axis, x.ndim)
    if not isinstance(shift, (int, np.integer)):
        raise TypeError(f"shift must be an int, got {type(shift).__name__}")
    if x.split != axis or x.comm.size == 1:
        local = torch.roll(x.larray, int(shift), axis)
        return DNDarray._make(local, x.gshape, x.split, x.comm, x.device, x._counts)
    n = x.gshape[axis]
    s = int(shift) % n if n else 0
    counts, offs = x.counts, offsets_of(x.counts)

    def layout(r):
        o, c = offs[r], counts[r]
        head = max(0, min(o + c, n - s) - o)
        return [(o + s, 0, head), ((o + head + s) % n if c - head else 0, head, c - head)]

    return _place_rows(x, axis, layout, counts)


def pad(x, pad_width, mode: str = "constant", constant_values=0) -> DNDarray:
    """``x`` padded with ``constant_values`` (NumPy's ``pad_width`` forms; constant mode)."""
    x = _check(x)
    if mode != "constant":
        raise ValueError(f"mode must be 'constant', got {mode!r}")
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2)).tolist()
    if any(w < 0 for pair in widths for w in pair):
        raise ValueError(f"pad_width must be non-negative, got {pad_width!r}")
    torch_pad = []
    for a in reversed(range(x.ndim)):
        torch_pad += [0, 0] if a == x.split else widths[a]
    local = (
        torch.nn.functional.pad(x.larray, torch_pad, value=constant_values) if x.ndim else x.larray
    )
    shape = tuple(s + (0 if a == x.split else sum(widths[a])) for a, s in enumerate(x.gshape))
    y = DNDarray._make(local, shape, x.split, x.comm, x.device, x._counts)
    if x.split is None or not sum(widths[x.split]):
        return y
    before, after = widths[x.split]
    parts = []
    for w in (before, None, after):
        if w is None:
            parts.append(y)
        elif w:
            edge = list(shape)
            edge[x.split] = w
            parts.append(full(edge, constant_values, dtype=x.dtype, split=x.split, comm=x.comm))
    return concatenate(parts, x.split)


def repeat(x, repeats, axis=None) -> DNDarray:
    """Each element repeated ``repeats`` times along ``axis`` (the flattened array if None)."""
    x = _check(x)
    if axis is None:
        x, axis = flatten(x), 0
    axis = _axis(axis, x.ndim)
    reps = torch.as_tensor(
        repeats.larray if isinstance(repeats, DNDarray) else repeats, dtype=torch.int64
    )
    if reps.dim() > 1 or (reps.dim() == 1 and reps.numel() not in (1, x.gshape[axis])):
        raise ValueError(f"repeats must be an int or have length {x.gshape[axis]}")
    if bool((reps < 0).any()):
        raise ValueError("repeats must be non-negative")
    if reps.dim() == 1 and reps.numel() == 1:
        reps = reps.reshape(())
    shape = list(x.gshape)
    if reps.dim() == 0:
        shape[axis] *= int(reps)
        local = torch.repeat_interleave(x.larray, int(reps), dim=axis)
        counts = None if x.split != axis else tuple(c * int(reps) for c in x.counts)
    else:
        shape[axis] = int(reps.sum())
        if x.split == axis:
            offs = offsets_of(x.counts)
            counts = tuple(int(reps[o : o + c].sum()) for o, c in zip(offs, x.counts))
            mine = reps[x.offset : x.offset + x.counts[x.comm.rank]]
        else:
            counts, mine = None, reps
        local = torch.repeat_interleave(x.larray, mine, dim=axis)
    if x.split is not None and x.split != axis:
        counts = tuple(x.counts)
    return DNDarray._make(local, tuple(shape), x.split, x.comm, x.device, counts)


def tile(x, reps) -> DNDarray:
    """``x`` repeated ``reps`` times per axis, as ``numpy.tile``."""
    x = _check(x)
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(int(r) for r in reps)
    while x.ndim < len(reps):
        x = expand_dims(x, 0)
    reps = (1,) * (x.ndim - len(reps)) + reps
    local_reps = [1 if a == x.split else r for a, r in enumerate(reps)]
    shape = tuple(s * (1 if a == x.split else r) for a, (s, r) in enumerate(zip(x.gshape, reps)))
    y = DNDarray._make(x.larray.repeat(*local_reps), shape, x.split, x.comm, x.device, x._counts)
    if x.split is None or reps[x.split] == 1:
        return y
    return concatenate([y] * reps[x.split], x.split)


def _global_index(x: DNDarray, axis: int, n: int) -> torch.Tensor:
    start = x.offset if x.split == axis else 0
    return torch.arange(start, start + n)


def _tri(x, k: int, lower: bool) -> DNDarray:
    x = _check(x)
    if x.ndim < 2:
        raise ValueError("tril/triu need at least 2 dimensions")
    t = x.larray
    rows = _global_index(x, x.ndim - 2, t.shape[-2])[:, None]
    cols = _global_index(x, x.ndim - 1, t.shape[-1])[None, :]
    keep = (cols - rows <= k) if lower else (cols - rows >= k)
    local = torch.where(keep, t, torch.zeros((), dtype=t.dtype))
    return DNDarray._make(local, x.gshape, x.split, x.comm, x.device, x._counts)


def tril(x, k: int = 0) -> DNDarray:
    """Lower triangle (elements on and below the ``k``-th diagonal), zeros elsewhere."""
    return _tri(x, k, True)


def triu(x, k: int = 0) -> DNDarray:
    """Upper triangle (elements on and above the ``k``-th diagonal), zeros elsewhere."""
    return _tri(x, k, False)


def diagonal(x, offset: int = 0, dim1: int = 0, dim2: int = 1) -> DNDarray:
    """The ``offset``-th diagonal of a 2-d array (1-d, split on 0 if ``x`` is split)."""
    x = _check(x)
    if x.ndim != 2 or {_axis(dim1, 2), _axis(dim2, 2)} != {0, 1}:
        raise ValueError("diagonal supports 2-d arrays with dim1, dim2 = 0, 1")
    if _axis(dim1, 2) == 1:
        x, offset = transpose(x), -offset
    n, m = x.gshape
    length = max(0, min(n, m - offset) if offset >= 0 else min(n + offset, m))
    first_row = max(0, -offset)
    if x.split is None:
        local = torch.diagonal(x.larray, offset).clone()
        return DNDarray._make(local, (length,), None, x.comm, x.device)
    # the k-th diagonal element is (first_row + k, first_row + k + offset)
    axis_start = first_row if x.split == 0 else first_row + offset
    counts, offs = x.counts, offsets_of(x.counts)
    diag_counts = tuple(
        max(0, min(o + c, axis_start + length) - max(o, axis_start)) for o, c in zip(offs, counts)
    )
    k0 = max(0, x.offset - axis_start)
    k = torch.arange(k0, k0 + diag_counts[x.comm.rank])
    rows = first_row + k - (x.offset if x.split == 0 else 0)
    cols = first_row + k + offset - (x.offset if x.split == 1 else 0)
    local = x.larray[rows, cols]
    return DNDarray._make(local, (length,), 0, x.comm, x.device, diag_counts)


def diag(x, offset: int = 0) -> DNDarray:
    """A 2-d array with 1-d ``x`` on its ``offset``-th diagonal, or the diagonal of 2-d ``x``."""
    x = _check(x)
    if x.ndim == 2:
        return diagonal(x, offset)
    if x.ndim != 1:
        raise ValueError("diag needs a 1-d or 2-d array")
    n = x.gshape[0]
    size = n + abs(offset)
    split = None if x.split is None else 0
    counts = chunk_counts(size, x.comm.size) if split is not None else [size]
    row0 = sum(counts[: x.comm.rank]) if split is not None else 0
    rows = torch.arange(row0, row0 + counts[x.comm.rank if split is not None else 0])
    k = rows - max(0, -offset)  # index into x of each row's diagonal element
    valid = (k >= 0) & (k < n)
    if split is None:
        values = x.larray[k[valid]]
    else:
        from .indexing import _fetch_rows

        wanted = []
        for r in range(x.comm.size):
            o = sum(counts[:r])
            kr = torch.arange(o, o + counts[r]) - max(0, -offset)
            wanted.append(kr[(kr >= 0) & (kr < n)])
        values = _fetch_rows(x, 0, wanted)
    local = torch.zeros(len(rows), size, dtype=x.larray.dtype)
    local[torch.arange(len(rows))[valid], (k + max(0, offset))[valid]] = values
    return DNDarray._make(
        local, (size, size), split, x.comm, x.device, None if split is None else tuple(counts)
    )


def copy(x) -> DNDarray:
    """A copy of ``x`` with the same layout."""
    x = _check(x)
    return DNDarray._make(x.larray.clone(), x.gshape, x.split, x.comm, x.device, x._counts)


def column_stack(arrays) -> DNDarray:
    """1-d arrays as columns, 2-d arrays as they are, joined along axis 1."""
    arrays = [a if isinstance(a, DNDarray) else array(a) for a in arrays]
    arrays = [expand_dims(a, 1) if a.ndim == 1 else a for a in arrays]
    return concatenate(arrays, 1)


def row_stack(arrays) -> DNDarray:
    """Same as ``vstack``."""
    return vstack(arrays)


def split(x, indices_or_sections, axis: int = 0) -> list[DNDarray]:
    """``x`` cut along ``axis`` into equal sections (an int that divides the axis) or at the
    given indices, as ``numpy.split``; the pieces are slices, so they keep the split (and may be
    unbalanced, as in Heat)."""
    x = _check(x)
    axis = _axis(axis, x.ndim)
    n = x.gshape[axis]
    if isinstance(indices_or_sections, (int, np.integer)) and not isinstance(
        indices_or_sections, bool
    ):
        sections = int(indices_or_sections)
        if sections <= 0 or n % sections:
            raise ValueError(f"array split does not result in an equal division: {n} by {sections}")
        bounds = [k * (n // sections) for k in range(sections + 1)]
    else:
        cuts = [int(i) for i in np.asarray(indices_or_sections).reshape(-1)]
        bounds = [0, *cuts, n]
    pieces = []
    for lo, hi in itertools.pairwise(bounds):
        key = [slice(None)] * x.ndim
        key[axis] = slice(lo, max(lo, hi))
        pieces.append(x[tuple(key)])
    return pieces


def hsplit(x, indices_or_sections) -> list[DNDarray]:
    """``split`` along axis 1 (axis 0 for 1-d arrays)."""
    x = _check(x)
    if x.ndim == 0:
        raise ValueError("hsplit needs at least 1 dimension")
    return split(x, indices_or_sections, 1 if x.ndim > 1 else 0)


def vsplit(x, indices_or_sections) -> list[DNDarray]:
    """``split`` along axis 0 (needs at least 2 dimensions)."""
    x = _check(x)
    if x.ndim < 2:
        raise ValueError("vsplit needs at least 2 dimensions")
    return split(x, indices_or_sections, 0)


def dsplit(x, indices_or_sections) -> list[DNDarray]:
    """``split`` along axis 2 (needs at least 3 dimensions)."""
    x = _check(x)
    if x.ndim < 3:
        raise ValueError("dsplit needs at least 3 dimensions")
    return split(x, indices_or_sections, 2)
