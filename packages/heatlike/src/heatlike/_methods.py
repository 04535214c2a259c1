"""Binds the public functions to DNDarray as methods and operators (thin forwards)."""

from __future__ import annotations

import numpy as np
import torch

from . import elementwise as ew
from . import indexing, manipulations, reductions, types
from ._redistribute import balance, redistribute, resplit
from .dndarray import DNDarray

__all__: list[str] = []


def _swap(fn):
    def reflected(self, other):
        return fn(other, self)

    return reflected


def _inplace(fn):
    def inplace(self, other):
        result = fn(self, other)
        if not types.can_cast(result.dtype, self.dtype, "same_kind"):
            raise TypeError(
                f"cannot cast the result {result.dtype.__name__} to {self.dtype.__name__} in place"
            )
        from ._redistribute import align

        local = align(
            result, self.gshape, self.split, self.counts if self.split is not None else None
        )
        if tuple(result.gshape) != tuple(self.gshape):
            raise ValueError(f"non-broadcastable output of shape {self.gshape}")
        self.larray.copy_(local)
        return self

    return inplace


_OPERATORS = {
    "add": ew.add,
    "sub": ew.sub,
    "mul": ew.mul,
    "truediv": ew.div,
    "floordiv": ew.floordiv,
    "mod": ew.mod,
    "pow": ew.pow,
    "and": ew.bitwise_and,
    "or": ew.bitwise_or,
    "xor": ew.bitwise_xor,
    "lshift": ew.left_shift,
    "rshift": ew.right_shift,
    "matmul": None,
}
for _name, _fn in _OPERATORS.items():
    if _fn is None:
        continue
    setattr(DNDarray, f"__{_name}__", lambda self, other, _f=_fn: _f(self, other))
    setattr(DNDarray, f"__r{_name}__", _swap(_fn))
    setattr(DNDarray, f"__i{_name}__", _inplace(_fn))

for _name, _fn in {
    "eq": ew.eq,
    "ne": ew.ne,
    "lt": ew.lt,
    "le": ew.le,
    "gt": ew.gt,
    "ge": ew.ge,
}.items():
    setattr(DNDarray, f"__{_name}__", lambda self, other, _f=_fn: _f(self, other))
DNDarray.__hash__ = None
DNDarray.__neg__ = lambda self: ew.neg(self)
DNDarray.__pos__ = lambda self: ew.pos(self)
DNDarray.__abs__ = lambda self: ew.abs(self)
DNDarray.__invert__ = lambda self: ew.invert(self)
DNDarray.__getitem__ = indexing.getitem
DNDarray.__setitem__ = indexing.setitem

# element-wise and reduction functions as methods
for _name in [
    "abs", "absolute", "exp", "expm1", "exp2", "log", "log2", "log10", "log1p", "sqrt", "square",
    "sin", "cos", "tan", "sinh", "cosh", "tanh", "arcsin", "arccos", "arctan", "floor", "ceil",
    "trunc", "round", "clip", "isnan", "isinf", "isfinite", "conj", "sign", "nan_to_num",
    "add", "sub", "mul", "div", "pow", "mod", "fmod", "floordiv", "eq", "ne", "lt", "le", "gt", "ge",
    "isclose", "allclose",
]:  # fmt: skip
    setattr(DNDarray, _name, getattr(ew, _name))
for _name in [
    "sum", "prod", "min", "max", "mean", "var", "std", "argmin", "argmax", "all", "any",
    "cumsum", "cumprod", "median", "percentile", "count_nonzero", "average", "ptp",
]:  # fmt: skip
    setattr(DNDarray, _name, getattr(reductions, _name))
for _name in [
    "reshape", "flatten", "ravel", "transpose", "swapaxes", "moveaxis", "squeeze", "expand_dims",
    "flip", "roll", "pad", "repeat", "tile", "tril", "triu", "diagonal",
]:  # fmt: skip
    setattr(DNDarray, _name, getattr(manipulations, _name))


def _reshape_method(self, *shape, new_split=None):
    """``self`` with a new shape, given as one tuple or as separate ints (``ht.reshape``);
    ``new_split`` is the result's split (default: the current one, clipped to the new number of
    dimensions)."""
    return manipulations.reshape(self, *shape, new_split=new_split)


def _transposed(self):
    """``self`` with its axes reversed (``transpose``); local, the split axis follows."""
    return manipulations.transpose(self)


def _resplit(self, axis=None):
    """A new array split along ``axis`` (None: replicated, which gathers); one alltoallv
    between two splits. ``resplit_`` does the same in place."""
    return resplit(self, axis)


DNDarray.reshape = _reshape_method
DNDarray.T = property(_transposed)
DNDarray.resplit = _resplit


def _resplit_(self, axis=None):
    """Change the split axis in place."""
    out = resplit(self, axis)
    self._larray, self._split, self._counts = out.larray, out.split, out._counts
    return self


def _balance_(self):
    """Move rows so that the layout is balanced (in place; free if it already is)."""
    out = balance(self)
    self._larray, self._counts = out.larray, out._counts
    return self


def _redistribute_(self, lshape_map=None, target_map=None):
    """Move rows to the local shapes of ``target_map`` (default: balanced), in place."""
    if self.split is None:
        return self
    if target_map is None:
        return _balance_(self)
    counts = [int(c) for c in torch.as_tensor(target_map)[:, self.split]]
    out = redistribute(self, counts)
    self._larray, self._counts = out.larray, out._counts
    return self


DNDarray.resplit_ = _resplit_
DNDarray.balance_ = _balance_
DNDarray.redistribute_ = _redistribute_


def _numpy(self) -> np.ndarray:
    """The whole array as a NumPy array on every rank (gathers: for small results and tests)."""
    return _np_of(resplit(self, None).larray)


def _np_of(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    if t.dtype is torch.bfloat16:
        t = t.float()
    return t.numpy()


def _item(self):
    """The value of a one-element array as a Python scalar, on every rank (collective);
    ValueError for any other size."""
    if self.size != 1:
        raise ValueError("only one-element arrays can be converted to Python scalars")
    return resplit(self, None).larray.reshape(()).item()


def _astype(self, dtype, copy: bool = True):
    """``self`` cast to ``dtype`` (in place when ``copy`` is False, as in Heat)."""
    target = types.canonical_heat_type(dtype).torch_type()
    local = self.larray.to(target)
    if not copy:
        self._larray = local
        return self
    return DNDarray._make(local, self.gshape, self.split, self.comm, self.device, self._counts)


def _copy(self):
    """A copy with its own local tensor and the same layout (no communication)."""
    return DNDarray._make(
        self.larray.clone(), self.gshape, self.split, self.comm, self.device, self._counts
    )


def _tolist(self) -> list:
    """The whole array as (nested) Python lists on every rank (gathers: for small arrays)."""
    return _numpy(self).tolist()


DNDarray.numpy = _numpy
DNDarray.item = _item
DNDarray.tolist = _tolist
DNDarray.astype = _astype
DNDarray.copy = _copy
DNDarray.__array__ = lambda self, dtype=None, copy=None: (
    _np_of(self.larray) if dtype is None else _np_of(self.larray).astype(dtype)
)
DNDarray.__bool__ = lambda self: bool(_item(self))
DNDarray.__int__ = lambda self: int(_item(self))
DNDarray.__float__ = lambda self: float(_item(self))
DNDarray.__complex__ = lambda self: complex(_item(self))
DNDarray.__index__ = lambda self: (
    int(_item(self))
    if not self.larray.is_floating_point()
    else (_ for _ in ()).throw(TypeError("only integer arrays can be used as an index"))
)


def _cpu(self):
    """``self`` unchanged (Heat's method to move an array to the CPU; no data is moved)."""
    return self


def _real(self):
    """The real part, element-wise (``ht.real``)."""
    return ew.real(self)


def _imag(self):
    """The imaginary part, element-wise (``ht.imag``; zeros for a real array)."""
    return ew.imag(self)


DNDarray.cpu = _cpu
DNDarray.real = property(_real)
DNDarray.imag = property(_imag)


def _iter(self):
    for i in range(len(self)):
        yield self[i]


DNDarray.__iter__ = _iter


class _LocalIndexer:
    """``x.lloc[key]``: index this rank's local tensor directly (Heat's local indexer); no
    communication, the key is in local coordinates."""

    __slots__ = ("_array",)

    def __init__(self, array: DNDarray):
        self._array = array

    def __getitem__(self, key):
        return self._array.larray[key]

    def __setitem__(self, key, value):
        self._array.larray[key] = value.larray if isinstance(value, DNDarray) else value


DNDarray.lloc = property(_LocalIndexer)
