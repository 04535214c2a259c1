"""Distributed products: matmul for every pair of splits (ring passes, partial products reduced
and scattered), dot, vdot, vecdot and outer."""

from __future__ import annotations

import math

import torch

from .. import _gemm, manipulations, reductions
from .. import elementwise as ew
from .._redistribute import redistribute, resplit
from ..communication import chunk_counts, offsets_of
from ..dndarray import DNDarray
from ._blocks import block_shape, check_array, promoted, ring

__all__ = ["dot", "matmul", "outer", "vdot", "vecdot"]

ROW, INNER, COL, BATCH = "row", "inner", "col", "batch"


def matmul(a: DNDarray, b: DNDarray, allow_resplit: bool = False) -> DNDarray:
    """The matrix product ``a @ b`` with NumPy's rules for 1-d and batched operands.

    No rank ever holds a whole distributed operand: depending on the splits, blocks of one
    operand travel around a ring while the other stays put, or every rank multiplies the blocks
    it owns along the inner dimension and the partial products are summed and scattered in one
    ``reduce_scatter`` (chosen when it moves fewer bytes than redistributing an operand).

    The result's split follows Heat: ``a``'s split when ``a`` is split (rows of ``a`` -> rows of
    the result, columns of ``a`` -> columns), otherwise the one ``b`` implies (rows of ``b`` ->
    rows, columns of ``b`` -> columns), None when neither is split. A 1-d result is split on 0
    when either operand is split. With batch dimensions, a split batch axis stays split.

    Parameters
    ----------
    a, b : DNDarray
        Operands with at least one dimension; ``a.shape[-1]`` must equal ``b.shape[-2]`` (or
        ``b.shape[0]`` for 1-d ``b``).
    allow_resplit : bool
        When neither operand is split, split ``a``'s rows (no communication) so that the result
        is split on its rows.

    Returns
    -------
    DNDarray
        The product, of the promoted dtype; 0-d when both operands are 1-d.
    """
    check_array(a, "a")
    check_array(b, "b")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul needs a and b with at least one dimension (use multiply)")
    dtype = promoted(a, b)
    if a.ndim == 1 and b.ndim == 1:
        if a.gshape != b.gshape:
            raise ValueError(f"a and b must have the same length, got {a.gshape} and {b.gshape}")
        return _inner(a, b, dtype)
    a2 = manipulations.expand_dims(a, 0) if a.ndim == 1 else a
    b2 = manipulations.expand_dims(b, 1) if b.ndim == 1 else b
    if a2.gshape[-1] != b2.gshape[-2]:
        raise ValueError(
            f"matmul: a has {a2.gshape[-1]} columns but b has {b2.gshape[-2]} rows "
            f"(shapes {a.gshape} and {b.gshape})"
        )
    try:
        batch = tuple(torch.broadcast_shapes(a2.gshape[:-2], b2.gshape[:-2]))
    except RuntimeError:
        raise ValueError(
            f"batch dimensions of a {a.gshape} and b {b.gshape} do not broadcast"
        ) from None
    if allow_resplit and a2.split is None and b2.split is None and a.ndim > 1:
        a2 = resplit(a2, a2.ndim - 2)
    c_shape = (*batch, a2.gshape[-2], b2.gshape[-1])
    target = _target_axis(a2, b2, len(c_shape), a.ndim == 1, b.ndim == 1)
    c = _product(a2, b2, c_shape, target, dtype)
    if a.ndim == 1:
        c = _drop_axis(c, c.ndim - 2)
    if b.ndim == 1:
        c = _drop_axis(c, c.ndim - 1)
    return c


def _role_a(a: DNDarray):
    """What ``a``'s split axis is in the product: its rows, the inner dimension or a batch axis."""
    if a.split is None:
        return None
    return {a.ndim - 2: ROW, a.ndim - 1: INNER}.get(a.split, BATCH)


def _role_b(b: DNDarray):
    """What ``b``'s split axis is in the product: the inner dimension, its columns or a batch."""
    if b.split is None:
        return None
    return {b.ndim - 2: INNER, b.ndim - 1: COL}.get(b.split, BATCH)


def _target_axis(a, b, ndim_c: int, a_is_vector: bool, b_is_vector: bool):
    """The result's split axis (Heat's rule, see ``matmul``)."""
    ra, rb = _role_a(a), _role_b(b)
    if ra == BATCH:
        return a.split + ndim_c - a.ndim
    if rb == BATCH:
        return b.split + ndim_c - b.ndim
    if ra is None and rb is None:
        return None
    if a_is_vector or b_is_vector:
        return ndim_c - 1 if a_is_vector else ndim_c - 2
    if ra is not None:
        return ndim_c - 2 if ra == ROW else ndim_c - 1
    return ndim_c - 2 if rb == INNER else ndim_c - 1


def _product(a, b, c_shape, target, dtype) -> DNDarray:
    """``a @ b`` for operands of at least 2 dimensions, split on ``target`` (or None)."""
    compute = torch.int64 if dtype is torch.bool else dtype
    if a.larray.device.type == "cpu" and math.prod(c_shape) * a.gshape[-1] >= _gemm.MIN_WORK:
        _gemm.agree(a.comm, compute)  # collective once per dtype: every rank is here
    ra, rb = _role_a(a), _role_b(b)
    if BATCH in (ra, rb):
        out = _batched(a, b, c_shape, compute)
    elif ra is None and rb is None:
        local = _gemm.matmul(a.larray.to(compute), b.larray.to(compute))
        out = DNDarray._make(local, c_shape, None, a.comm, a.device)
    elif (ra, rb) == (ROW, None):
        local = _gemm.matmul(a.larray.to(compute), b.larray.to(compute))
        out = DNDarray._make(local, c_shape, len(c_shape) - 2, a.comm, a.device, a.counts)
    elif (ra, rb) == (None, COL):
        local = _gemm.matmul(a.larray.to(compute), b.larray.to(compute))
        out = DNDarray._make(local, c_shape, len(c_shape) - 1, a.comm, a.device, b.counts)
    elif rb == COL and (ra == INNER or target == len(c_shape) - 1):
        out = _ring_a(a, b, c_shape, compute)
    elif ra == ROW:
        out = _ring_b(a, b, c_shape, compute)
    else:
        out = _inner_split(a, b, c_shape, target, compute)
    if out.split != target:
        out = resplit(out, target)
    if dtype is torch.bool:
        out = DNDarray._make(
            out.larray != 0, out.gshape, out.split, out.comm, out.device, out._counts
        )
    return out


def _ring_b(a, b, c_shape, dtype) -> DNDarray:
    """a split on its rows keeps them; b's blocks (rows or columns) travel around the ring.
    The result is split on its rows like ``a``."""
    a_loc = a.larray.to(dtype)
    local_shape = (*c_shape[:-2], a_loc.shape[-2], c_shape[-1])
    inner = _role_b(b) == INNER
    # an inner product starts from the first block's product instead of zeros (one pass less)
    c_loc = None if inner else torch.zeros(local_shape, dtype=dtype, device=a_loc.device)
    offs = offsets_of(b.counts)
    shapes = [block_shape(b, r) for r in range(b.comm.size)]
    for owner, block in ring(b.larray.to(dtype), shapes, b.comm):
        start, count = offs[owner], b.counts[owner]
        if inner and c_loc is None:
            c_loc = _first_product(a_loc.narrow(-1, start, count), block, local_shape)
        elif inner:
            _accumulate(c_loc, a_loc.narrow(-1, start, count), block)
        else:
            c_loc[..., start : start + count] = _gemm.matmul(a_loc, block)
    return DNDarray._make(c_loc, c_shape, len(c_shape) - 2, a.comm, a.device, a.counts)


def _ring_a(a, b, c_shape, dtype) -> DNDarray:
    """b split on its columns keeps them; a's blocks (rows or columns) travel around the ring.
    The result is split on its columns like ``b``."""
    b_loc = b.larray.to(dtype)
    local_shape = (*c_shape[:-2], c_shape[-2], b_loc.shape[-1])
    inner = _role_a(a) == INNER
    c_loc = None if inner else torch.zeros(local_shape, dtype=dtype, device=b_loc.device)
    offs = offsets_of(a.counts)
    shapes = [block_shape(a, r) for r in range(a.comm.size)]
    for owner, block in ring(a.larray.to(dtype), shapes, a.comm):
        start, count = offs[owner], a.counts[owner]
        if inner and c_loc is None:
            c_loc = _first_product(block, b_loc.narrow(-2, start, count), local_shape)
        elif inner:
            _accumulate(c_loc, block, b_loc.narrow(-2, start, count))
        else:
            c_loc[..., start : start + count, :] = _gemm.matmul(block, b_loc)
    return DNDarray._make(c_loc, c_shape, len(c_shape) - 1, a.comm, a.device, b.counts)


def _first_product(x: torch.Tensor, y: torch.Tensor, shape) -> torch.Tensor:
    """``x @ y`` as a fresh contiguous block of ``shape`` (broadcast over batch axes)."""
    product = _gemm.matmul(x, y)
    if tuple(product.shape) != tuple(shape):
        return product.expand(shape).clone()
    return product.contiguous()


def _accumulate(c: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> None:
    """``c += x @ y``, in place without a temporary for 2-d floating-point blocks."""
    if c.dim() == 2 and (c.is_floating_point() or c.is_complex()):
        _gemm.addmm_(c, x, y)
    else:
        c += torch.matmul(x, y)


def _inner_split(a, b, c_shape, target, dtype) -> DNDarray:
    """The inner dimension is split (a's columns and/or b's rows). Either every rank multiplies
    the inner blocks it owns and one reduce_scatter sums the partial products into the target
    layout, or, when that moves more bytes, an operand is redistributed first (alltoallv) so that
    the product needs no reduction."""
    if _partial_costs_less(a, b, c_shape, target):
        return _reduce_partials(a, b, c_shape, target, dtype)
    if _role_b(b) is None:  # a split on its columns: move a to rows
        return _product(resplit(a, a.ndim - 2), b, c_shape, target, dtype)
    # b split on its rows: move b to columns, then multiply locally or ring-pass a's columns
    return _product(a, resplit(b, b.ndim - 1), c_shape, target, dtype)


def _partial_costs_less(a, b, c_shape, target) -> bool:
    """Whether summing partial products (each rank holds and sends the whole result) moves no
    more elements per rank than redistributing an operand and multiplying without a reduction."""
    p = a.comm.size
    batch = 1
    for s in c_shape[:-2]:
        batch *= s
    n, m, k = c_shape[-2], c_shape[-1], a.gshape[-1]
    partial = batch * n * m
    ra, rb = _role_a(a), _role_b(b)
    if rb is None:  # a's columns -> rows, the result comes out split on rows
        moved = batch * n * k / p + (target != len(c_shape) - 2) * batch * n * m / p
    elif ra is None:  # b's rows -> columns, the result comes out split on columns
        moved = batch * k * m / p + (target != len(c_shape) - 1) * batch * n * m / p
    else:  # b's rows -> columns, then a's column blocks ring-passed
        moved = batch * (k * m / p + n * k * (p - 1) / p)
        moved += (target != len(c_shape) - 1) * batch * n * m / p
    return partial <= moved


def _reduce_partials(a, b, c_shape, target, dtype) -> DNDarray:
    ra, rb = _role_a(a), _role_b(b)
    comm = a.comm
    if ra == INNER and rb == INNER and tuple(a.counts) != tuple(b.counts):
        b = redistribute(b, a.counts)
    counts = a.counts if ra == INNER else b.counts
    start, count = offsets_of(counts)[comm.rank], counts[comm.rank]
    a_loc = a.larray.to(dtype)
    b_loc = b.larray.to(dtype)
    if ra is None:
        a_loc = a_loc.narrow(-1, start, count)
    if rb is None:
        b_loc = b_loc.narrow(-2, start, count)
    partial = torch.matmul(a_loc, b_loc).expand(c_shape).contiguous()
    out_counts = chunk_counts(c_shape[target], comm.size)
    local = comm.handle.reduce_scatter(partial, counts=out_counts, dim=target)
    return DNDarray._make(local, c_shape, target, comm, a.device, tuple(out_counts))


def _batched(a, b, c_shape, dtype) -> DNDarray:
    """One operand is split along a batch axis: the other follows it there, then every rank
    multiplies its own batch entries."""
    if a.ndim != b.ndim or a.gshape[:-2] != b.gshape[:-2]:
        raise NotImplementedError(
            "a split batch axis needs a and b with the same batch dimensions, got shapes "
            f"{a.gshape} and {b.gshape}"
        )
    lead, other = (a, b) if _role_a(a) == BATCH else (b, a)
    axis, counts = lead.split, lead.counts
    if other.split is None:
        start = offsets_of(counts)[lead.comm.rank]
        other_loc = other.larray.narrow(axis, start, counts[lead.comm.rank])
    else:
        other_loc = resplit(other, axis, counts).larray
    a_loc, b_loc = (lead.larray, other_loc) if lead is a else (other_loc, lead.larray)
    local = torch.matmul(a_loc.to(dtype), b_loc.to(dtype))
    return DNDarray._make(local, c_shape, axis, a.comm, a.device, counts)


def _drop_axis(c: DNDarray, axis: int) -> DNDarray:
    """``c`` without its length-1 ``axis`` (never the split axis of a split result)."""
    shape = c.gshape[:axis] + c.gshape[axis + 1 :]
    split = c.split
    if split is not None and split > axis:
        split -= 1
    return DNDarray._make(c.larray.squeeze(axis), shape, split, c.comm, c.device, c._counts)


def _inner(a: DNDarray, b: DNDarray, dtype) -> DNDarray:
    """The inner product of two 1-d arrays (0-d, on every rank): local sums, one allreduce."""
    compute = torch.int64 if dtype is torch.bool else dtype
    a_loc, b_loc = _aligned_vectors(a, b)
    value = (a_loc.to(compute) * b_loc.to(compute)).sum().to(compute)
    if a.is_distributed() or b.is_distributed():
        a.comm.handle.allreduce(value)
    if dtype is torch.bool:
        value = value != 0
    return DNDarray._make(value.reshape(()), (), None, a.comm, a.device)


def _aligned_vectors(a: DNDarray, b: DNDarray):
    """The local pieces of two equally long 1-d arrays covering the same global positions."""
    if a.split is None and b.split is None:
        return a.larray, b.larray
    if a.split is not None and b.split is not None:
        if tuple(a.counts) != tuple(b.counts):
            b = redistribute(b, a.counts)
        return a.larray, b.larray
    split_one = a if a.split is not None else b
    start = split_one.offset
    count = split_one.counts[split_one.comm.rank]
    if a.split is None:
        return a.larray.narrow(0, start, count), b.larray
    return a.larray, b.larray.narrow(0, start, count)


def dot(a, b, out=None):
    """The dot product as Heat and NumPy: inner product of 1-d arrays, matrix product of 1-d/2-d
    arrays, element-wise product when either is a scalar.

    Parameters
    ----------
    a, b : DNDarray or scalar
    out : DNDarray, optional
        Receives the result (its local data and layout are replaced).

    Returns
    -------
    DNDarray
    """
    if not isinstance(a, DNDarray) or not isinstance(b, DNDarray) or a.ndim == 0 or b.ndim == 0:
        result = ew.mul(a, b)
    elif a.ndim <= 2 and b.ndim <= 2:
        result = matmul(a, b)
    else:
        raise NotImplementedError("dot of arrays with more than 2 dimensions: use matmul")
    return result if out is None else _into(check_array(out, "out"), result)


def _into(out: DNDarray, result: DNDarray) -> DNDarray:
    """``out`` holding ``result``'s data and layout (Heat's ``out=`` replaces both)."""
    out._larray, out._gshape = result.larray, result.gshape
    out._split, out._counts = result.split, result._counts
    return out


def vdot(a: DNDarray, b: DNDarray) -> DNDarray:
    """The dot product of the flattened arrays, with ``a`` complex-conjugated (NumPy's vdot).

    Parameters
    ----------
    a, b : DNDarray
        Arrays with the same number of elements.

    Returns
    -------
    DNDarray
        0-d, on every rank.
    """
    check_array(a, "a")
    check_array(b, "b")
    if a.size != b.size:
        raise ValueError(f"a and b must have the same size, got {a.size} and {b.size}")
    a1, b1 = manipulations.flatten(a), manipulations.flatten(b)
    if a1.larray.is_complex():
        a1 = ew.conj(a1)
    return _inner(a1, b1, promoted(a1, b1))


def vecdot(x1: DNDarray, x2: DNDarray, axis=None, keepdims: bool = False) -> DNDarray:
    """Dot products of vectors along ``axis`` (default the last), with broadcasting; ``x1`` is
    conjugated when complex (NumPy's vecdot).

    Parameters
    ----------
    x1, x2 : DNDarray
    axis : int, optional
    keepdims : bool

    Returns
    -------
    DNDarray
    """
    check_array(x1, "x1")
    check_array(x2, "x2")
    if x1.larray.is_complex():
        x1 = ew.conj(x1)
    product = ew.mul(x1, x2)
    return reductions.sum(
        product, axis=product.ndim - 1 if axis is None else axis, keepdims=keepdims
    )


def outer(a: DNDarray, b: DNDarray, out=None, split=None) -> DNDarray:
    """The outer product ``out[i, j] = a[i] * b[j]`` of two arrays (flattened when not 1-d).

    The split operand stays put and the other one travels around the ring when both are split.

    Parameters
    ----------
    a, b : DNDarray
    out : DNDarray, optional
        Receives the result.
    split : {None, 0, 1}
        The result's split; default 0 when either operand is split (Heat's default), else None.

    Returns
    -------
    DNDarray
        Of shape ``(a.size, b.size)``.
    """
    check_array(a, "a")
    check_array(b, "b")
    if split not in (None, 0, 1):
        raise ValueError(f"split must be None, 0 or 1, got {split!r}")
    a1 = manipulations.flatten(a) if a.ndim != 1 else a
    b1 = manipulations.flatten(b) if b.ndim != 1 else b
    if split is None and (a1.split is not None or b1.split is not None):
        split = 0
    a2, b2 = manipulations.expand_dims(a1, 1), manipulations.expand_dims(b1, 0)
    result = _product(a2, b2, (a1.gshape[0], b1.gshape[0]), split, promoted(a1, b1))
    return result if out is None else _into(check_array(out, "out"), result)
