"""Reductions and statistics: sum, prod, min/max, all/any, mean/var/std, argmin/argmax,
cumsum/cumprod, count_nonzero, median/percentile."""

from __future__ import annotations

import builtins

import numpy as np
import torch

import hpc_comm as hc

from . import types
from ._operations import assign_out
from ._reduce import arg_reduce, moments, normalize_axes, reduce_op, scan_op
from .dndarray import DNDarray

__all__ = [
    "all",
    "any",
    "argmax",
    "argmin",
    "average",
    "count_nonzero",
    "cumprod",
    "cumsum",
    "max",
    "mean",
    "median",
    "min",
    "nanmax",
    "nanmin",
    "nansum",
    "percentile",
    "prod",
    "ptp",
    "std",
    "sum",
    "var",
]


def _check(x) -> DNDarray:
    if not isinstance(x, DNDarray):
        raise TypeError(f"x must be a DNDarray, got {type(x).__name__}")
    return x


def _finish(result: DNDarray, out) -> DNDarray:
    return result if out is None else assign_out(out, result)


def sum(x, axis=None, out=None, keepdims=False, dtype=None) -> DNDarray:
    """Sum over ``axis`` (all axes by default); ints and bools sum in int64."""
    x = _check(x)
    cast = None if dtype is None else types.canonical_heat_type(dtype).torch_type()

    def local(t, a):
        return torch.sum(t if cast is None else t.to(cast), dim=a, keepdim=True)

    return _finish(reduce_op(x, local, hc.SUM, axis, keepdims, 0), out)


def nansum(x, axis=None, out=None, keepdims=False) -> DNDarray:
    """Sum treating NaN as zero."""
    x = _check(x)
    return _finish(
        reduce_op(x, lambda t, a: torch.nansum(t, a, keepdim=True), hc.SUM, axis, keepdims, 0), out
    )


def prod(x, axis=None, out=None, keepdims=False, dtype=None) -> DNDarray:
    """Product over ``axis``; ints and bools multiply in int64."""
    x = _check(x)
    cast = None if dtype is None else types.canonical_heat_type(dtype).torch_type()

    def local(t, a):
        return torch.prod(t if cast is None else t.to(cast), dim=a, keepdim=True)

    return _finish(reduce_op(x, local, hc.PROD, axis, keepdims, 1, multi_axis=False), out)


def _extreme(t: torch.Tensor, largest: bool):
    if t.dtype is torch.bool:
        return not largest
    if t.is_floating_point():
        return -float("inf") if largest else float("inf")
    info = torch.iinfo(t.dtype)
    return info.min if largest else info.max


def _minmax(x, axis, out, keepdims, largest: bool, ignore_nan=False) -> DNDarray:
    x = _check(x)
    if x.size == 0:
        raise ValueError("zero-size array to a reduction without an identity (min/max)")
    torch_fn = torch.amax if largest else torch.amin

    def local(t, a):
        if t.dtype is torch.bool:
            return (torch.any if largest else torch.all)(t, dim=a, keepdim=True)
        if ignore_nan and t.is_floating_point():
            t = torch.where(torch.isnan(t), torch.tensor(_extreme(t, largest), dtype=t.dtype), t)
        return torch_fn(t, dim=a, keepdim=True)

    neutral = _extreme(x.larray, largest)
    propagate = not ignore_nan and (x.larray.is_floating_point())
    return _finish(
        reduce_op(
            x,
            local,
            hc.MAX if largest else hc.MIN,
            axis,
            keepdims,
            neutral,
            nan_propagates=propagate,
        ),
        out,
    )


def max(x, axis=None, out=None, keepdims=False) -> DNDarray:
    """Largest value over ``axis`` (NaN propagates)."""
    return _minmax(x, axis, out, keepdims, True)


def min(x, axis=None, out=None, keepdims=False) -> DNDarray:
    """Smallest value over ``axis`` (NaN propagates)."""
    return _minmax(x, axis, out, keepdims, False)


def nanmax(x, axis=None, out=None, keepdims=False) -> DNDarray:
    """Largest value over ``axis``, ignoring NaN; a slice of NaN only gives NaN (as NumPy,
    without its warning)."""
    return _nan_minmax(x, axis, out, keepdims, True)


def nanmin(x, axis=None, out=None, keepdims=False) -> DNDarray:
    """Smallest value over ``axis``, ignoring NaN; a slice of NaN only gives NaN (as NumPy,
    without its warning)."""
    return _nan_minmax(x, axis, out, keepdims, False)


def _nan_minmax(x, axis, out, keepdims, largest: bool) -> DNDarray:
    result = _minmax(x, axis, None, keepdims, largest, ignore_nan=True)
    if x.larray.is_floating_point():
        # a slice with no number reduced to the neutral -inf / inf: one more reduction tells it
        # apart from a slice that holds -inf / inf itself
        from .elementwise import isnan

        only_nan = all(isnan(x), axis=axis, keepdims=keepdims)
        result.larray[only_nan.larray] = float("nan")
    return _finish(result, out)


def ptp(x, axis=None, out=None, keepdims=False) -> DNDarray:
    """Range (max - min) over ``axis``."""
    return _finish(max(x, axis, keepdims=keepdims) - min(x, axis, keepdims=keepdims), out)


def all(x, axis=None, out=None, keepdims=False) -> DNDarray:
    """Whether every element over ``axis`` is true."""
    x = _check(x)
    return _finish(
        reduce_op(
            x, lambda t, a: torch.all(t.bool(), dim=a, keepdim=True), hc.MIN, axis, keepdims, True
        ),
        out,
    )


def any(x, axis=None, out=None, keepdims=False) -> DNDarray:
    """Whether some element over ``axis`` is true."""
    x = _check(x)
    return _finish(
        reduce_op(
            x, lambda t, a: torch.any(t.bool(), dim=a, keepdim=True), hc.MAX, axis, keepdims, False
        ),
        out,
    )


def count_nonzero(x, axis=None, keepdims=False) -> DNDarray:
    """Number of non-zero elements over ``axis`` (int64)."""
    x = _check(x)
    nonzero = DNDarray._make(x.larray != 0, x.gshape, x.split, x.comm, x.device, x._counts)
    return reduce_op(
        nonzero, lambda t, a: torch.sum(t, dim=a, keepdim=True), hc.SUM, axis, keepdims, 0
    )


def mean(x, axis=None, keepdims=False) -> DNDarray:
    """Arithmetic mean over ``axis`` (float32 for integer input, as in Heat)."""
    x = _check(x)
    m, _, _ = moments(x, axis, keepdims, second=False)
    return m


def var(x, axis=None, ddof: int = 0, keepdims=False, **kwargs) -> DNDarray:
    """Variance over ``axis`` with ``ddof`` delta degrees of freedom (Heat's ``bessel=True`` is
    ``ddof=1``); merged from per-rank moments, numerically stable."""
    x = _check(x)
    if "bessel" in kwargs:
        ddof = 1 if kwargs.pop("bessel") else 0
    if kwargs:
        raise TypeError(f"var got unexpected arguments {sorted(kwargs)}")
    if not isinstance(ddof, (int, np.integer)) or ddof < 0:
        raise ValueError(f"ddof must be a non-negative int, got {ddof!r}")
    _, m2, n = moments(x, axis, keepdims)
    denom = n - ddof
    m2._larray = m2.larray / denom if denom > 0 else torch.full_like(m2.larray, float("nan"))
    return m2


def std(x, axis=None, ddof: int = 0, keepdims=False, **kwargs) -> DNDarray:
    """Standard deviation over ``axis`` (see ``var``)."""
    v = var(x, axis, ddof, keepdims, **kwargs)
    v._larray = torch.sqrt(v.larray)
    return v


def average(x, axis=None, weights=None, returned=False):
    """Weighted mean over ``axis`` (``weights`` of x's shape, or 1-d along ``axis``)."""
    x = _check(x)
    if weights is None:
        result = mean(x, axis)
        scale = x.size if axis is None else x.gshape[axis]
        return (result, scale) if returned else result
    from .factories import array

    w = weights if isinstance(weights, DNDarray) else array(weights, comm=x.comm)
    if w.ndim == 1 and x.ndim > 1:
        if axis is None:
            raise TypeError("axis must be given when weights are 1-d and x is not")
        shape = [1] * x.ndim
        shape[axis] = w.gshape[0]
        from .manipulations import reshape

        w = reshape(w, shape)
    wx = x * w
    total = sum(w * (x * 0 + 1), axis)
    result = sum(wx, axis) / total
    return (result, total) if returned else result


def argmax(x, axis=None, out=None, keepdims=False) -> DNDarray:
    """Index of the first maximum over ``axis`` (of the flattened array if None)."""
    return _finish(arg_reduce(_check(x), True, axis, keepdims), out)


def argmin(x, axis=None, out=None, keepdims=False) -> DNDarray:
    """Index of the first minimum over ``axis`` (of the flattened array if None)."""
    return _finish(arg_reduce(_check(x), False, axis, keepdims), out)


def _cum(x, axis, dtype, kind):
    x = _check(x)
    if axis is None:
        from .manipulations import flatten

        x, axis = flatten(x), 0
    (axis,) = normalize_axes(axis, x.ndim)
    cast = None if dtype is None else types.canonical_heat_type(dtype).torch_type()
    return scan_op(x, kind, axis, cast)


def cumsum(x, axis=None, dtype=None, out=None) -> DNDarray:
    """Inclusive cumulative sum along ``axis`` (the flattened array if None)."""
    return _finish(_cum(x, axis, dtype, "sum"), out)


def cumprod(x, axis=None, dtype=None, out=None) -> DNDarray:
    """Inclusive cumulative product along ``axis`` (the flattened array if None)."""
    return _finish(_cum(x, axis, dtype, "prod"), out)


def percentile(x, q, axis=None, out=None, interpolation="linear", keepdims=False):
    """The ``q``-th percentile(s) (0..100) over ``axis`` (an int or None), linear
    interpolation as NumPy's default. Along the split axis the data is first resplit (one
    alltoallv) or, for the flattened array, sorted distributedly; nothing is gathered."""
    x = _check(x)
    if interpolation not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise ValueError(f"interpolation must be a NumPy method name, got {interpolation!r}")
    q_values = torch.as_tensor(q, dtype=torch.float64)
    if q_values.dim() > 1 or builtins.bool(((q_values < 0) | (q_values > 100)).any()):
        raise ValueError(f"q must be a number or 1-d list in [0, 100], got {q!r}")
    fractions = q_values / 100
    result = _quantile(x, fractions, axis, interpolation, keepdims)
    return _finish(result, out)


def median(x, axis=None, keepdims=False) -> DNDarray:
    """Median over ``axis`` (an int or None)."""
    return percentile(x, 50.0, axis, keepdims=keepdims)


def _out_float(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype in (torch.float64, torch.float32) else torch.float32


def _quantile(x: DNDarray, fractions, axis, method, keepdims) -> DNDarray:
    if x.size == 0:
        raise ValueError("percentile of an empty array")
    dtype = _out_float(x.larray.dtype)
    if axis is None or (x.ndim == 1):
        from .manipulations import flatten
        from .sorting import sort

        values, _ = sort(flatten(x) if x.ndim != 1 else x)
        picked = _select_sorted(values, fractions, method).to(dtype)
        if keepdims:
            picked = picked.reshape(*fractions.shape, *[1] * x.ndim)
        return DNDarray._make(picked, tuple(picked.shape), None, x.comm, x.device)
    (axis,) = normalize_axes(axis, x.ndim)
    if x.split == axis:
        from ._redistribute import resplit

        other = next(a for a in range(x.ndim) if a != axis)
        x = resplit(x, other)
    t = x.larray.to(torch.float64)
    if t.numel():
        local = torch.quantile(t, fractions, dim=axis, keepdim=keepdims, interpolation=method)
    else:  # an empty local block (more ranks than rows): an empty block of the result
        rest = [1 if i == axis else s for i, s in enumerate(t.shape) if keepdims or i != axis]
        local = torch.empty((*fractions.shape, *rest), dtype=torch.float64)
    local = local.to(dtype)
    lead = fractions.dim()
    if keepdims:
        shape = tuple(1 if i == axis else s for i, s in enumerate(x.gshape))
    else:
        shape = tuple(s for i, s in enumerate(x.gshape) if i != axis)
    shape = tuple(fractions.shape) + shape
    split = None
    if x.split is not None:
        split = lead + (x.split if keepdims or x.split < axis else x.split - 1)
    return DNDarray._make(
        local, shape, split, x.comm, x.device, None if split is None else tuple(x.counts)
    )


def _select_sorted(values: DNDarray, fractions, method) -> torch.Tensor:
    """Order statistics of a sorted 1-d array: each rank contributes the ones it holds, one
    small allreduce combines them."""
    n = values.gshape[0]
    pos = fractions.reshape(-1) * (n - 1)
    lo, hi = torch.floor(pos).long(), torch.ceil(pos).long()
    wanted = torch.cat([lo, hi])
    start = values.offset
    local = values.larray.to(torch.float64)
    mine = (wanted >= start) & (wanted < start + local.shape[0])
    picked = torch.zeros(wanted.shape[0], dtype=torch.float64)
    picked[mine] = local[wanted[mine] - start]
    if values.split is not None and values.comm.size > 1:
        values.comm.handle.allreduce(picked, hc.SUM)
    a, b = picked[: lo.shape[0]], picked[lo.shape[0] :]
    frac = pos - lo
    if method == "lower":
        res = a
    elif method == "higher":
        res = b
    elif method == "midpoint":
        res = (a + b) / 2
    elif method == "nearest":
        res = torch.where(frac > 0.5, b, a)
        res = torch.where(frac == 0.5, torch.where(lo % 2 == 0, a, b), res)
    else:
        res = a + (b - a) * frac
    return res.reshape(fractions.shape)
