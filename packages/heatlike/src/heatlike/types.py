"""Data types of heatlike: Heat-style type classes over torch dtypes, and the promotion rules."""

from __future__ import annotations

import builtins

import numpy as np
import torch

__all__ = [
    "bfloat16",
    "bool",
    "bool_",
    "can_cast",
    "canonical_heat_type",
    "cdouble",
    "cfloat",
    "complex64",
    "complex128",
    "complexfloating",
    "datatype",
    "double",
    "finfo",
    "flexible",
    "float",
    "float16",
    "float32",
    "float64",
    "floating",
    "half",
    "heat_type_of",
    "iinfo",
    "int",
    "int8",
    "int16",
    "int32",
    "int64",
    "integer",
    "issubdtype",
    "long",
    "number",
    "promote_types",
    "result_type",
    "short",
    "signedinteger",
    "uint8",
    "unsignedinteger",
]


class datatype:
    """Base of every heatlike type. Calling a type builds an array: ``ht.float32([1, 2])``."""

    _torch: torch.dtype | None = None
    _char = "?"

    def __new__(cls, *value, device=None, comm=None):
        from .factories import array

        if cls._torch is None:
            raise TypeError(f"cannot create an array of abstract type {cls.__name__}")
        if not value:
            value = (0,)
        if len(value) > 1:
            raise TypeError(f"{cls.__name__}() takes at most one value, got {len(value)}")
        return array(value[0], dtype=cls, device=device, comm=comm)

    @classmethod
    def torch_type(cls) -> torch.dtype:
        """The torch dtype this type stands for."""
        if cls._torch is None:
            raise TypeError(f"{cls.__name__} is an abstract type without a torch dtype")
        return cls._torch

    @classmethod
    def char(cls) -> str:
        """NumPy's one-letter code of the type."""
        return cls._char


class bool(datatype):
    """Booleans (torch.bool); also ``ht.bool_``."""

    _torch, _char = torch.bool, "?"


class number(datatype):
    """Abstract: every numeric type (for ``issubdtype``); cannot build arrays."""


class integer(number):
    """Abstract: the signed and unsigned integer types."""


class signedinteger(integer):
    """Abstract: int8, int16, int32 and int64."""


class unsignedinteger(integer):
    """Abstract: uint8."""


class floating(number):
    """Abstract: float16, bfloat16, float32 and float64."""


class complexfloating(number):
    """Abstract: complex64 and complex128."""


class flexible(datatype):
    """Abstract, for NumPy's hierarchy; no heatlike type derives from it."""


class int8(signedinteger):
    """8-bit signed integers (torch.int8)."""

    _torch, _char = torch.int8, "b"


class int16(signedinteger):
    """16-bit signed integers (torch.int16); also ``ht.short``."""

    _torch, _char = torch.int16, "h"


class int32(signedinteger):
    """32-bit signed integers (torch.int32); also ``ht.int``."""

    _torch, _char = torch.int32, "i"


class int64(signedinteger):
    """64-bit signed integers (torch.int64); also ``ht.long``."""

    _torch, _char = torch.int64, "l"


class uint8(unsignedinteger):
    """8-bit unsigned integers (torch.uint8)."""

    _torch, _char = torch.uint8, "B"


class float16(floating):
    """IEEE half precision (torch.float16); also ``ht.half``."""

    _torch, _char = torch.float16, "e"


class bfloat16(floating):
    """Brain floating point, 8 exponent and 7 mantissa bits (torch.bfloat16)."""

    _torch, _char = torch.bfloat16, "E"


class float32(floating):
    """IEEE single precision (torch.float32), the default float; also ``ht.float``."""

    _torch, _char = torch.float32, "f"


class float64(floating):
    """IEEE double precision (torch.float64); also ``ht.double``."""

    _torch, _char = torch.float64, "d"


class complex64(complexfloating):
    """Complex numbers of two float32 (torch.complex64); also ``ht.cfloat``."""

    _torch, _char = torch.complex64, "F"


class complex128(complexfloating):
    """Complex numbers of two float64 (torch.complex128); also ``ht.cdouble``."""

    _torch, _char = torch.complex128, "D"


bool_ = bool
half = float16
float = float32
double = float64
int = int32
short = int16
long = int64
cfloat = complex64
cdouble = complex128

_CONCRETE = (
    bool,
    uint8,
    int8,
    int16,
    int32,
    int64,
    float16,
    bfloat16,
    float32,
    float64,
    complex64,
    complex128,
)
_FROM_TORCH = {t._torch: t for t in _CONCRETE}
_FROM_NAME = {t.__name__: t for t in _CONCRETE}
_FROM_NAME.update(
    {"bool_": bool, "half": float16, "double": float64, "float": float32, "int": int64}
)
_PYTHON = {builtins.bool: bool, builtins.int: int32, builtins.float: float32, complex: complex64}


def canonical_heat_type(dtype) -> type[datatype]:
    """The heatlike type for ``dtype``: a heatlike type, a torch dtype, a NumPy dtype, a Python
    type (``int`` -> int32, ``float`` -> float32, as in Heat) or a name such as ``"float64"``."""
    if isinstance(dtype, type) and issubclass(dtype, datatype):
        if dtype._torch is None:
            raise TypeError(f"dtype must be a concrete type, got the abstract {dtype.__name__}")
        return dtype
    if isinstance(dtype, torch.dtype):
        try:
            return _FROM_TORCH[dtype]
        except KeyError:
            raise TypeError(f"dtype {dtype} is not supported by heatlike") from None
    if dtype in _PYTHON:
        return _PYTHON[dtype]
    if isinstance(dtype, str) and dtype in _FROM_NAME:
        return _FROM_NAME[dtype]
    try:
        name = np.dtype(dtype).name
    except TypeError:
        raise TypeError(f"dtype must be a data type, got {dtype!r}") from None
    if name not in _FROM_NAME:
        raise TypeError(f"dtype {name} is not supported by heatlike")
    return _FROM_NAME[name]


def heat_type_of(obj) -> type[datatype]:
    """The heatlike type of an array, tensor, NumPy array or Python scalar/sequence."""
    dtype = getattr(obj, "dtype", None)
    if dtype is not None:
        return canonical_heat_type(dtype)
    if isinstance(obj, (builtins.bool, builtins.int, builtins.float, complex)):
        return _PYTHON[type(obj)] if type(obj) is not builtins.int else int64
    return canonical_heat_type(torch.as_tensor(obj).dtype)


def _torch_dtype(dtype) -> torch.dtype:
    return canonical_heat_type(dtype)._torch


def promote_types(type1, type2) -> type[datatype]:
    """The smallest type both ``type1`` and ``type2`` can be cast to safely (torch's lattice)."""
    return _FROM_TORCH[torch.promote_types(_torch_dtype(type1), _torch_dtype(type2))]


def _operand_for_promotion(arg):
    """A stand-in that torch.result_type understands: a 1-d tensor for arrays, the scalar itself."""
    if isinstance(arg, (builtins.bool, builtins.int, builtins.float, complex)):
        return arg
    if (isinstance(arg, type) and issubclass(arg, datatype)) or isinstance(arg, torch.dtype):
        return torch.empty(1, dtype=_torch_dtype(arg))
    if isinstance(arg, (str, np.dtype)):
        return torch.empty(1, dtype=_torch_dtype(arg))
    dtype = getattr(arg, "dtype", None)
    if dtype is None:
        raise TypeError(f"result_type got an unsupported argument {arg!r}")
    zero_dim = getattr(arg, "ndim", 1) == 0
    return (
        torch.empty((), dtype=_torch_dtype(dtype))
        if zero_dim
        else torch.empty(1, dtype=_torch_dtype(dtype))
    )


def result_type(*arrays_and_types) -> type[datatype]:
    """The type of an operation's result on these arrays, types and scalars: arrays and types
    promote along the lattice; Python scalars only lift the category (bool < int < float <
    complex), so ``int32 array + 1.5`` is float32, as in Heat and torch."""
    if not arrays_and_types:
        raise ValueError("result_type needs at least one argument")
    operands = [_operand_for_promotion(a) for a in arrays_and_types]
    current = operands[0]
    if len(operands) == 1:
        if isinstance(current, torch.Tensor):
            return _FROM_TORCH[current.dtype]
        return heat_type_of(current)
    for nxt in operands[1:]:
        current = (
            torch.empty(1, dtype=torch.result_type(current, nxt))
            if not (isinstance(current, torch.Tensor) or isinstance(nxt, torch.Tensor))
            else _promote_pair(current, nxt)
        )
    return _FROM_TORCH[current.dtype]


def _promote_pair(a, b) -> torch.Tensor:
    dtype = torch.result_type(a, b)
    dims = [x.dim() for x in (a, b) if isinstance(x, torch.Tensor)]
    return torch.empty((1,) if max(dims) > 0 else (), dtype=dtype)


_KIND_ORDER = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def _kind(t: torch.dtype) -> str:
    if t is torch.bool:
        return "b"
    if t.is_complex:
        return "c"
    if t.is_floating_point:
        return "f"
    return "u" if t is torch.uint8 else "i"


def can_cast(from_, to, casting: str = "intuitive") -> builtins.bool:
    """Whether ``from_`` (a type, array or scalar) can be cast to ``to`` under ``casting``:
    ``no``, ``safe`` (no information lost), ``same_kind``, ``unsafe`` or Heat's default
    ``intuitive`` (safe, plus integers to floats of any width)."""
    if casting not in ("no", "safe", "same_kind", "unsafe", "intuitive"):
        raise ValueError(
            "casting must be one of 'no', 'safe', 'same_kind', 'unsafe', 'intuitive', "
            f"got {casting!r}"
        )
    source = heat_type_of(from_)._torch if not _is_type(from_) else _torch_dtype(from_)
    target = _torch_dtype(to)
    if casting == "unsafe":
        return True
    if casting == "no":
        return source == target
    safe = torch.promote_types(source, target) == target
    if casting == "safe":
        return safe
    if casting == "intuitive":
        return safe or (_kind(source) in "ui" and _kind(target) == "f")
    return safe or _KIND_ORDER[_kind(source)] <= _KIND_ORDER[_kind(target)]


def _is_type(obj) -> builtins.bool:
    return (
        isinstance(obj, (torch.dtype, np.dtype, str))
        or (isinstance(obj, type) and issubclass(obj, datatype))
        or obj in _PYTHON
    )


def issubdtype(arg1, arg2) -> builtins.bool:
    """Whether type ``arg1`` is ``arg2`` or below it in the hierarchy (``ht.floating`` ...)."""
    first = (
        arg1 if isinstance(arg1, type) and issubclass(arg1, datatype) else canonical_heat_type(arg1)
    )
    if isinstance(arg2, type) and issubclass(arg2, datatype):
        return issubclass(first, arg2)
    return issubclass(first, canonical_heat_type(arg2))


class finfo:
    """Machine limits of a floating type: ``bits``, ``eps``, ``max``, ``min``, ``tiny``."""

    def __init__(self, dtype):
        t = _torch_dtype(dtype)
        if not (t.is_floating_point or t.is_complex):
            raise TypeError(f"finfo needs a floating type, got {t}")
        info = torch.finfo(t)
        self.bits, self.eps, self.max, self.min = info.bits, info.eps, info.max, info.min
        self.tiny, self.resolution, self.dtype = info.tiny, info.resolution, _FROM_TORCH[t]


class iinfo:
    """Machine limits of an integer type: ``bits``, ``max``, ``min``."""

    def __init__(self, dtype):
        t = _torch_dtype(dtype)
        if t.is_floating_point or t.is_complex or t is torch.bool:
            raise TypeError(f"iinfo needs an integer type, got {t}")
        info = torch.iinfo(t)
        self.bits, self.max, self.min, self.dtype = info.bits, info.max, info.min, _FROM_TORCH[t]
