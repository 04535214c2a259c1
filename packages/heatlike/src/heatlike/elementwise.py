"""Element-wise functions: arithmetic, bitwise, comparison, logical, exp/log, trigonometric,
rounding, clip, where, isnan/isclose ... (NumPy names and Heat's aliases)."""

from __future__ import annotations

import torch

from ._operations import local_op, nary_op, to_operand
from .dndarray import DNDarray

__all__: list[str] = []


def _binary(name: str, torch_fn, doc: str, aliases=()):
    def fn(t1, t2, /, out=None, where=None):
        return nary_op(torch_fn, t1, t2, out=out, where=where)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"{doc} (element-wise, NumPy broadcasting, any splits)."
    for n in (name, *aliases):
        globals()[n] = fn
        __all__.append(n)
    return fn


def _unary(name: str, torch_fn, doc: str, aliases=()):
    def fn(x, /, out=None):
        return local_op(torch_fn, _as_array(x), out=out)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"{doc} (element-wise; no communication)."
    for n in (name, *aliases):
        globals()[n] = fn
        __all__.append(n)
    return fn


def _as_array(x) -> DNDarray:
    x = to_operand(x, None)
    if isinstance(x, DNDarray):
        return x
    from .factories import array

    return array(x)


def _shift(fn):
    def run(a, b):
        return fn(a, b)

    return run


_binary("add", torch.add, "Sum")
_binary("sub", torch.sub, "Difference", ("subtract",))
_binary("mul", torch.mul, "Product", ("multiply",))
_binary("div", torch.true_divide, "True quotient", ("divide", "true_divide"))
_binary("floordiv", torch.floor_divide, "Quotient rounded down", ("floor_divide",))
_binary("mod", torch.remainder, "Remainder with the sign of the divisor", ("remainder",))
_binary("fmod", torch.fmod, "Remainder with the sign of the dividend")
_binary("pow", torch.pow, "Power", ("power",))
_binary("bitwise_and", torch.bitwise_and, "Bitwise and")
_binary("bitwise_or", torch.bitwise_or, "Bitwise or")
_binary("bitwise_xor", torch.bitwise_xor, "Bitwise exclusive or")
_binary("left_shift", torch.bitwise_left_shift, "Left shift")
_binary("right_shift", torch.bitwise_right_shift, "Right shift")
_binary("eq", torch.eq, "Equality test", ("equal",))
_binary("ne", torch.ne, "Inequality test", ("not_equal",))
_binary("lt", torch.lt, "Less-than test", ("less",))
_binary("le", torch.le, "Less-or-equal test", ("less_equal",))
_binary("gt", torch.gt, "Greater-than test", ("greater",))
_binary("ge", torch.ge, "Greater-or-equal test", ("greater_equal",))
_binary("logical_and", lambda a, b: torch.logical_and(_t(a), _t(b)), "Logical and")
_binary("logical_or", lambda a, b: torch.logical_or(_t(a), _t(b)), "Logical or")
_binary("logical_xor", lambda a, b: torch.logical_xor(_t(a), _t(b)), "Logical exclusive or")
_binary("minimum", lambda a, b: torch.minimum(_t(a), _t(b)), "Smaller of two (NaN wins)")
_binary("maximum", lambda a, b: torch.maximum(_t(a), _t(b)), "Larger of two (NaN wins)")
_binary("fmin", lambda a, b: torch.fmin(_t(a), _t(b)), "Smaller of two (NaN ignored)")
_binary("fmax", lambda a, b: torch.fmax(_t(a), _t(b)), "Larger of two (NaN ignored)")
_binary("hypot", lambda a, b: torch.hypot(*_floats(a, b)), "Hypotenuse")
_binary("arctan2", lambda a, b: torch.atan2(*_floats(a, b)), "Quadrant-aware arctan", ("atan2",))
_binary("copysign", lambda a, b: torch.copysign(*_floats(a, b)), "Magnitude of a, sign of b")
_binary("logaddexp", lambda a, b: torch.logaddexp(*_floats(a, b)), "log(exp(a) + exp(b))")
_binary("logaddexp2", lambda a, b: torch.logaddexp2(*_floats(a, b)), "log2(2**a + 2**b)")
_binary("gcd", lambda a, b: torch.gcd(_t(a), _t(b)), "Greatest common divisor")
_binary("lcm", lambda a, b: torch.lcm(_t(a), _t(b)), "Least common multiple")


def _t(v):
    return v if isinstance(v, torch.Tensor) else torch.tensor(v)


def _floats(a, b):
    a, b = _t(a), _t(b)
    dtype = torch.result_type(a, b)
    if not (dtype.is_floating_point or dtype.is_complex):
        dtype = torch.float32
    return a.to(dtype), b.to(dtype)


def _float(x: torch.Tensor) -> torch.Tensor:
    return x if x.is_floating_point() or x.is_complex() else x.to(torch.float32)


_unary("neg", torch.neg, "Negative", ("negative",))
_unary("pos", lambda x: x.clone(), "Copy (unary plus)", ("positive",))
_unary("abs", torch.abs, "Absolute value", ("absolute",))
_unary("fabs", lambda x: torch.abs(_float(x)), "Absolute value as float")
_unary("invert", torch.bitwise_not, "Bitwise not", ("bitwise_not",))
_unary("logical_not", torch.logical_not, "Logical not")
_unary("exp", torch.exp, "Exponential")
_unary("exp2", torch.exp2, "2 to the power x")
_unary("expm1", torch.expm1, "exp(x) - 1")
_unary("log", torch.log, "Natural logarithm")
_unary("log2", torch.log2, "Base-2 logarithm")
_unary("log10", torch.log10, "Base-10 logarithm")
_unary("log1p", torch.log1p, "log(1 + x)")
_unary("sqrt", torch.sqrt, "Square root")
_unary("square", torch.square, "Square")
_unary("cbrt", lambda x: torch.sign(_float(x)) * torch.abs(_float(x)) ** (1 / 3), "Cube root")
_unary("sin", torch.sin, "Sine")
_unary("cos", torch.cos, "Cosine")
_unary("tan", torch.tan, "Tangent")
_unary("arcsin", torch.asin, "Inverse sine", ("asin",))
_unary("arccos", torch.acos, "Inverse cosine", ("acos",))
_unary("arctan", torch.atan, "Inverse tangent", ("atan",))
_unary("sinh", torch.sinh, "Hyperbolic sine")
_unary("cosh", torch.cosh, "Hyperbolic cosine")
_unary("tanh", torch.tanh, "Hyperbolic tangent")
_unary("arcsinh", torch.asinh, "Inverse hyperbolic sine", ("asinh",))
_unary("arccosh", torch.acosh, "Inverse hyperbolic cosine", ("acosh",))
_unary("arctanh", torch.atanh, "Inverse hyperbolic tangent", ("atanh",))
_unary("deg2rad", lambda x: torch.deg2rad(_float(x)), "Degrees to radians", ("radians",))
_unary("rad2deg", lambda x: torch.rad2deg(_float(x)), "Radians to degrees", ("degrees",))
_unary("floor", lambda x: torch.floor(x) if x.is_floating_point() else x.clone(), "Round down")
_unary("ceil", lambda x: torch.ceil(x) if x.is_floating_point() else x.clone(), "Round up")
_unary("trunc", lambda x: torch.trunc(x) if x.is_floating_point() else x.clone(), "Round to 0")
_unary("sign", torch.sign, "Sign (-1, 0, 1)")
_unary("sgn", torch.sgn, "Sign, x/|x| for complex")
_unary("signbit", torch.signbit, "Whether the sign bit is set")
_unary("isnan", torch.isnan, "Whether x is NaN")
_unary("isinf", torch.isinf, "Whether x is infinite")
_unary("isfinite", torch.isfinite, "Whether x is finite")
_unary("isposinf", torch.isposinf, "Whether x is +inf")
_unary("isneginf", torch.isneginf, "Whether x is -inf")
_unary("reciprocal", lambda x: torch.reciprocal(_float(x)), "1 / x")
_unary("conj", torch.conj_physical, "Complex conjugate", ("conjugate",))
_unary("real", lambda x: torch.real(x).clone(), "Real part")
_unary(
    "imag",
    lambda x: torch.imag(x).clone() if x.is_complex() else torch.zeros_like(x),
    "Imaginary part",
)
_unary("angle", lambda x: torch.angle(_float(x)), "Complex argument")
_unary(
    "isreal",
    lambda x: torch.imag(x) == 0 if x.is_complex() else torch.ones_like(x, dtype=torch.bool),
    "Whether the imaginary part is zero",
)
_unary(
    "iscomplex",
    lambda x: torch.imag(x) != 0 if x.is_complex() else torch.zeros_like(x, dtype=torch.bool),
    "Whether the imaginary part is non-zero",
)


def round(x, decimals: int = 0, out=None, dtype=None):
    """Round half to even to ``decimals`` places (element-wise)."""
    if not isinstance(decimals, int):
        raise TypeError(f"decimals must be an int, got {type(decimals).__name__}")
    res = local_op(
        lambda t: torch.round(t, decimals=decimals) if t.is_floating_point() else t.clone(),
        _as_array(x),
        out=out,
    )
    return res if dtype is None else res.astype(dtype)


def clip(x, min=None, max=None, out=None):
    """Values limited to ``[min, max]`` (bounds may be arrays; either may be None)."""
    if min is None and max is None:
        raise ValueError("clip needs min or max")
    x = _as_array(x)
    lo = x if min is None else min
    hi = x if max is None else max
    return nary_op(
        lambda a, b, c: torch.minimum(
            torch.maximum(_t(a), _t(b).to(_t(a).dtype)), _t(c).to(_t(a).dtype)
        ),
        x,
        lo,
        hi,
        out=out,
    )


def where(cond, x=None, y=None):
    """``x`` where ``cond`` holds, else ``y``; with only ``cond``, its nonzero indices."""
    if x is None and y is None:
        from .indexing import nonzero

        return nonzero(cond)
    if x is None or y is None:
        raise ValueError("where needs both x and y, or neither")
    cond = _as_array(cond) if not isinstance(cond, DNDarray) else cond
    return nary_op(lambda c, a, b: torch.where(_t(c).bool(), _t(a), _t(b)), cond, x, y)


def isclose(x, y, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
    """Whether ``|x - y| <= atol + rtol * |y|`` element-wise."""

    def close(a, b):
        a, b = _t(a), _t(b)
        dtype = torch.promote_types(a.dtype, b.dtype)
        if not (dtype.is_floating_point or dtype.is_complex):
            dtype = torch.float64
        return torch.isclose(a.to(dtype), b.to(dtype), rtol=rtol, atol=atol, equal_nan=equal_nan)

    return nary_op(close, x, y)


def allclose(x, y, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """Whether ``isclose`` holds everywhere (a Python bool, the same on every rank)."""
    from .reductions import all as all_

    return bool(all_(isclose(x, y, rtol, atol, equal_nan)).item())


def nan_to_num(x, nan: float = 0.0, posinf=None, neginf=None, out=None):
    """NaN and infinities replaced by finite numbers."""
    return local_op(
        lambda t: torch.nan_to_num(t, nan=nan, posinf=posinf, neginf=neginf), _as_array(x), out=out
    )


def modf(x):
    """Fractional and integral parts, both with the sign of x."""
    x = _as_array(x)
    whole = local_op(lambda t: torch.trunc(_float(t)), x)
    frac = local_op(lambda t: _float(t) - torch.trunc(_float(t)), x)
    return frac, whole


def divmod(x, y):
    """``(floordiv(x, y), mod(x, y))``."""
    return globals()["floordiv"](x, y), globals()["mod"](x, y)


__all__ += [
    "allclose",
    "clip",
    "divmod",
    "isclose",
    "modf",
    "nan_to_num",
    "round",
    "where",
]
