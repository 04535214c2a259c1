"""Vector and matrix norms (NumPy's ``ord`` values) and the trace, built on distributed
reductions; the spectral and nuclear norms use the distributed SVD."""

from __future__ import annotations

import math

import torch

from .. import elementwise as ew
from .. import manipulations, reductions, types
from ..dndarray import DNDarray
from ._blocks import check_array
from .products import _into

__all__ = ["matrix_norm", "matrix_transpose", "norm", "trace", "vector_norm"]

_MATRIX_ORDS = ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf)


def _axes_tuple(axis, ndim: int, name: str = "axis") -> tuple:
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for ax in axes:
        if isinstance(ax, bool) or not isinstance(ax, int):
            raise TypeError(f"{name} must be an int or a tuple of ints, got {axis!r}")
        if not -ndim <= ax < ndim:
            raise ValueError(f"{name}={axis} is out of range for {ndim} dimensions")
        out.append(ax % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat an axis, got {axis!r}")
    return tuple(out)


def vector_norm(x: DNDarray, axis=None, keepdims: bool = False, ord=None) -> DNDarray:
    """The vector norm of ``x`` along ``axis`` (all axes, i.e. the flattened array, by default).

    Parameters
    ----------
    x : DNDarray
    axis : int or tuple of ints, optional
    keepdims : bool
    ord : {None, 2, inf, -inf, 0, 1, -1, any other non-zero number}
        As NumPy: None and 2 are Euclidean, inf/-inf the largest/smallest magnitude, 0 the
        number of non-zeros, p the ``sum(|x|**p)**(1/p)``.

    Returns
    -------
    DNDarray
    """
    check_array(x, "x")
    if isinstance(ord, str) or isinstance(ord, bool):
        raise ValueError(f"ord={ord!r} is not a vector norm order")
    if axis is not None:
        axis = _axes_tuple(axis, x.ndim)
        axis = axis[0] if len(axis) == 1 else axis
    magnitude = ew.abs(x)
    if ord is None or ord == 2:
        return ew.sqrt(reductions.sum(magnitude * magnitude, axis=axis, keepdims=keepdims))
    if ord == math.inf:
        return reductions.max(magnitude, axis=axis, keepdims=keepdims)
    if ord == -math.inf:
        return reductions.min(magnitude, axis=axis, keepdims=keepdims)
    if ord == 0:
        return reductions.sum(ew.ne(x, 0), axis=axis, keepdims=keepdims).astype(magnitude.dtype)
    if ord == 1:
        return reductions.sum(magnitude, axis=axis, keepdims=keepdims)
    if not isinstance(ord, (int, float)):
        raise ValueError(f"ord={ord!r} is not a vector norm order")
    powered = reductions.sum(ew.pow(magnitude, float(ord)), axis=axis, keepdims=keepdims)
    return ew.pow(powered, 1.0 / ord)


def matrix_norm(x: DNDarray, axis=None, keepdims: bool = False, ord=None) -> DNDarray:
    """The matrix norm of ``x`` over the two axes ``axis`` (default the last two).

    Parameters
    ----------
    x : DNDarray
        At least 2-d.
    axis : tuple of 2 ints, optional
    keepdims : bool
    ord : {None, 'fro', 'nuc', 1, -1, 2, -2, inf, -inf}
        As NumPy: Frobenius (None, 'fro'), nuclear, max/min absolute column sum (1/-1), largest/
        smallest singular value (2/-2), max/min absolute row sum (inf/-inf).

    Returns
    -------
    DNDarray
    """
    check_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 dimensions for a matrix norm, got {x.ndim}")
    axes = _axes_tuple((-2, -1) if axis is None else axis, x.ndim)
    if len(axes) != 2:
        raise ValueError(f"axis must name two axes for a matrix norm, got {axis!r}")
    row, col = axes
    ord = "fro" if ord is None else ord
    if ord not in _MATRIX_ORDS:
        raise ValueError(f"ord={ord!r} is not a matrix norm order, use one of {_MATRIX_ORDS}")
    if ord == "fro":
        magnitude = ew.abs(x)
        result = ew.sqrt(reductions.sum(magnitude * magnitude, axis=(row, col), keepdims=True))
    elif ord in (1, -1, math.inf, -math.inf):
        summed_axis, kept_axis = (row, col) if ord in (1, -1) else (col, row)
        sums = reductions.sum(ew.abs(x), axis=summed_axis, keepdims=True)
        pick = reductions.max if ord > 0 else reductions.min
        result = pick(sums, axis=kept_axis, keepdims=True)
    else:
        result = _singular_value_norm(x, row, col, ord)
    if not keepdims:
        result = manipulations.squeeze(result, axis=(row, col))
    return result


def _singular_value_norm(x: DNDarray, row: int, col: int, ord) -> DNDarray:
    """Nuclear, 2- or -2-norm (kept dims of length 1)."""
    from .svd import svd

    def reduce(s: torch.Tensor) -> torch.Tensor:
        if ord == "nuc":
            return s.sum(-1)
        return s.max(-1).values if ord == 2 else s.min(-1).values

    if x.ndim == 2:
        matrix = x if (row, col) == (0, 1) else manipulations.transpose(x)
        s = svd(matrix, compute_uv=False).larray
        value = reduce(s).reshape(1, 1)
        return DNDarray._make(value, (1, 1), None, x.comm, x.device)
    if x.split in (row, col):
        raise NotImplementedError("spectral/nuclear norms of batches split on a matrix axis")
    others = [a for a in range(x.ndim) if a not in (row, col)]
    local = x.larray.permute(*others, row, col)
    values = reduce(torch.linalg.svdvals(local))
    for ax in sorted((row, col)):
        values = values.unsqueeze(ax)
    shape = tuple(1 if a in (row, col) else s for a, s in enumerate(x.gshape))
    return DNDarray._make(values, shape, x.split, x.comm, x.device, x._counts)


def norm(x: DNDarray, axis=None, keepdims: bool = False, ord=None) -> DNDarray:
    """A vector or matrix norm, as NumPy's ``norm`` but with Heat's argument order
    ``norm(x, axis, keepdims, ord)`` (pass ``ord`` by keyword to be unambiguous).

    With ``axis=None``: ``ord=None`` gives the 2-norm of the flattened array; otherwise ``x`` must
    be 1-d (vector norm) or 2-d (matrix norm). An int ``axis`` gives vector norms, a 2-tuple
    matrix norms.

    Parameters
    ----------
    x : DNDarray
    axis : int or tuple of 2 ints, optional
    keepdims : bool
    ord : see ``vector_norm`` and ``matrix_norm``

    Returns
    -------
    DNDarray
    """
    check_array(x, "x")
    if axis is None:
        if ord is None:
            result = vector_norm(x, None, False, None)
            if keepdims:
                result = manipulations.reshape(result, (1,) * x.ndim)
            return result
        if x.ndim == 1:
            return vector_norm(x, None, keepdims, ord)
        if x.ndim == 2:
            return matrix_norm(x, (0, 1), keepdims, ord)
        raise ValueError(f"ord={ord!r} with axis=None needs a 1-d or 2-d array, got {x.ndim}-d")
    axes = _axes_tuple(axis, x.ndim)
    if len(axes) == 1:
        return vector_norm(x, axes[0], keepdims, ord)
    if len(axes) == 2:
        return matrix_norm(x, axes, keepdims, ord)
    raise ValueError(f"axis must name one or two axes, got {axis!r}")


def trace(x: DNDarray, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype=None, out=None):
    """The sum along the ``offset``-th diagonal of the 2-d sub-arrays spanned by ``axis1`` and
    ``axis2``: a Python number for a 2-d array (as Heat), else a DNDarray over the other axes.

    Every rank sums the diagonal elements it holds; one allreduce combines them when the split
    axis is one of the two (a split elsewhere stays split, with no communication).

    Parameters
    ----------
    x : DNDarray
        At least 2-d.
    offset : int
    axis1, axis2 : int
    dtype : heatlike or torch dtype, optional
        The accumulator and result type (default ``x``'s).
    out : DNDarray, optional
        Receives the result (only for more than 2 dimensions).

    Returns
    -------
    number or DNDarray
    """
    check_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 dimensions, got {x.ndim}")
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise TypeError(f"offset must be an int, got {type(offset).__name__}")
    a1, a2 = _axes_tuple(axis1, x.ndim, "axis1")[0], _axes_tuple(axis2, x.ndim, "axis2")[0]
    if a1 == a2:
        raise ValueError(f"axis1 and axis2 must differ, got {axis1} and {axis2}")
    if out is not None and x.ndim == 2:
        raise ValueError("out is not applicable for a 2-d x (the trace is a number)")
    others = [a for a in range(x.ndim) if a not in (a1, a2)]
    local = x.larray.permute(*others, a1, a2)
    rows = torch.arange(local.shape[-2], device=local.device) + (x.offset if x.split == a1 else 0)
    cols = torch.arange(local.shape[-1], device=local.device) + (x.offset if x.split == a2 else 0)
    on_diagonal = (cols[None, :] - rows[:, None]) == offset
    if dtype is not None:
        local = local.to(types.canonical_heat_type(dtype).torch_type())
    sums = torch.where(on_diagonal, local, local.new_zeros(())).sum((-2, -1))
    sums = sums.to(local.dtype)
    shape = tuple(x.gshape[a] for a in others)
    if x.split in (a1, a2):
        if x.is_distributed():
            x.comm.handle.allreduce(sums)
        result = DNDarray._make(sums, shape, None, x.comm, x.device)
    else:
        split = None if x.split is None else others.index(x.split)
        result = DNDarray._make(sums, shape, split, x.comm, x.device, x._counts)
    if x.ndim == 2:
        return result.larray.item()
    if out is not None:
        return _into(check_array(out, "out"), result)
    return result


def matrix_transpose(x: DNDarray) -> DNDarray:
    """``x`` with its last two axes swapped (no communication; the split axis follows)."""
    check_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 dimensions, got {x.ndim}")
    return manipulations.swapaxes(x, -1, -2)
