"""Element-wise functions and operators against NumPy, for every split, on uneven shapes and on
shapes with fewer rows than ranks; broadcasting between operands of different splits."""

from __future__ import annotations

import numpy as np
import pytest

import heatlike as ht
from heatlike.testing import assert_equal_np, received_within_share, rng, splits_of

pytestmark = pytest.mark.mpi

SHAPES = [(7, 5), (2, 3, 4), (1, 4)]

UNARY = {
    "exp": np.exp,
    "expm1": np.expm1,
    "exp2": np.exp2,
    "log": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "sqrt": np.sqrt,
    "square": np.square,
    "cbrt": np.cbrt,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "arcsin": np.arcsin,
    "arccos": np.arccos,
    "arctan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "arcsinh": np.arcsinh,
    "arctanh": np.arctanh,
    "deg2rad": np.deg2rad,
    "rad2deg": np.rad2deg,
    "floor": np.floor,
    "ceil": np.ceil,
    "trunc": np.trunc,
    "sign": np.sign,
    "abs": np.abs,
    "fabs": np.fabs,
    "neg": np.negative,
    "positive": np.positive,
    "reciprocal": np.reciprocal,
    "signbit": np.signbit,
    "isfinite": np.isfinite,
}

BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "floordiv": np.floor_divide,
    "mod": np.mod,
    "fmod": np.fmod,
    "pow": np.power,
    "minimum": np.minimum,
    "maximum": np.maximum,
    "fmin": np.fmin,
    "fmax": np.fmax,
    "hypot": np.hypot,
    "arctan2": np.arctan2,
    "copysign": np.copysign,
    "logaddexp": np.logaddexp,
    "eq": np.equal,
    "ne": np.not_equal,
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
    "logical_and": np.logical_and,
    "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
}

INT_BINARY = {
    "bitwise_and": np.bitwise_and,
    "bitwise_or": np.bitwise_or,
    "bitwise_xor": np.bitwise_xor,
    "left_shift": np.left_shift,
    "right_shift": np.right_shift,
    "gcd": np.gcd,
    "lcm": np.lcm,
    "floordiv": np.floor_divide,
    "mod": np.mod,
}


@pytest.mark.parametrize("shape", SHAPES)
def test_unary_functions(comm, shape):
    data = rng(10).uniform(0.05, 0.95, shape)  # inside every function's domain
    for split in splits_of(len(shape)):
        x = ht.array(data, split=split)
        for name, ref in UNARY.items():
            y = getattr(ht, name)(x)
            assert y.split == split, name
            assert_equal_np(y, ref(data), rtol=1e-6, atol=1e-9)
    ints = rng(11).integers(-5, 6, shape)
    for split in splits_of(len(shape)):
        x = ht.array(ints, split=split)
        assert_equal_np(ht.invert(x), np.invert(ints))
        assert_equal_np(ht.abs(x), np.abs(ints))
        assert_equal_np(-x, -ints)
        assert_equal_np(ht.logical_not(x), np.logical_not(ints))


@pytest.mark.parametrize("shape", SHAPES)
def test_binary_functions_same_split(comm, shape):
    a = rng(12).uniform(0.5, 2.0, shape)
    b = rng(13).uniform(0.5, 2.0, shape) * np.where(rng(14).random(shape) < 0.5, -1, 1)
    for split in splits_of(len(shape)):
        x, y = ht.array(a, split=split), ht.array(b, split=split)
        for name, ref in BINARY.items():
            out = getattr(ht, name)(x, y)
            assert out.split == split, name
            assert_equal_np(out, ref(a, b), rtol=1e-6, atol=1e-9)
    ia = rng(15).integers(1, 40, shape)
    ib = rng(16).integers(1, 5, shape)
    for split in splits_of(len(shape)):
        x, y = ht.array(ia, split=split), ht.array(ib, split=split)
        for name, ref in INT_BINARY.items():
            assert_equal_np(getattr(ht, name)(x, y), ref(ia, ib))


@pytest.mark.parametrize("shape", [(7, 5), (2, 3, 4)])
def test_binary_between_different_splits(comm, shape):
    """Heat refuses this; heatlike redistributes one operand (never gathers it)."""
    a = rng(17).random(shape)
    b = rng(18).random(shape)
    for sa in splits_of(len(shape)):
        for sb in splits_of(len(shape)):
            out = ht.add(ht.array(a, split=sa), ht.array(b, split=sb))
            assert out.split == (sa if sa is not None else sb)
            assert_equal_np(out, a + b)


def test_broadcasting_against_numpy(comm):
    g = rng(19)
    cases = [
        ((7, 5), (5,)),
        ((7, 5), (7, 1)),
        ((7, 1), (1, 5)),
        ((2, 3, 4), (3, 1)),
        ((2, 1, 4), (3, 4)),
        ((1, 4), (6, 1)),
    ]
    for sa_shape, sb_shape in cases:
        a, b = g.random(sa_shape), g.random(sb_shape)
        for sa in splits_of(len(sa_shape)):
            for sb in splits_of(len(sb_shape)):
                x, y = ht.array(a, split=sa), ht.array(b, split=sb)
                assert_equal_np(x * y, a * b)
                assert_equal_np(y - x, b - a)


def test_operators_and_scalars(comm):
    a = rng(20).uniform(1.0, 3.0, (7, 5))
    ia = rng(21).integers(1, 20, (7, 5))
    for split in splits_of(2):
        x = ht.array(a, split=split)
        i = ht.array(ia, split=split)
        assert_equal_np(x + 2, a + 2)
        assert_equal_np(2 - x, 2 - a)
        assert_equal_np(x * 0.5, a * 0.5)
        assert_equal_np(3 / x, 3 / a)
        assert_equal_np(x // 0.7, a // 0.7)
        assert_equal_np(x % 0.7, a % 0.7)
        assert_equal_np(x**2, a**2)
        assert_equal_np(2**x, 2**a)
        assert_equal_np(i & 6, ia & 6)
        assert_equal_np(i | 8, ia | 8)
        assert_equal_np(i ^ 5, ia ^ 5)
        assert_equal_np(i << 2, ia << 2)
        assert_equal_np(i >> 1, ia >> 1)
        assert_equal_np(~i, ~ia)
        assert_equal_np(x < 2, a < 2)
        assert_equal_np(x >= 2, a >= 2)
        assert_equal_np(x == x, a == a)
        assert_equal_np(x != 2, a != 2)
        assert_equal_np(abs(-x), a)
        assert_equal_np(+x, a)


def test_inplace_operators(comm):
    a = rng(22).uniform(1.0, 3.0, (7, 5))
    b = rng(23).uniform(1.0, 3.0, (7, 5))
    for split in splits_of(2):
        for other_split in splits_of(2):
            x = ht.array(a, split=split)
            y = ht.array(b, split=other_split)
            x += y
            x *= 2
            x -= 1
            x /= y
            x **= 2
            assert x.split == split
            assert_equal_np(x, (((a + b) * 2 - 1) / b) ** 2)
    i = ht.arange(6, split=0)
    with pytest.raises(TypeError):
        i += 1.5  # float result cannot be stored in an int array (same_kind casting)
    i += 1
    assert_equal_np(i, np.arange(6) + 1)


@pytest.mark.parametrize("split", [None, 0, 1])
def test_rounding_clip_where_isclose(comm, split):
    a = rng(24).normal(0.0, 3.0, (7, 5))
    b = a + rng(25).normal(0.0, 1e-7, (7, 5))
    x = ht.array(a, split=split)
    assert_equal_np(ht.round(x), np.round(a))
    assert_equal_np(ht.round(x, 2), np.round(a, 2))
    assert_equal_np(ht.clip(x, -1.0, 2.0), np.clip(a, -1.0, 2.0))
    assert_equal_np(ht.clip(x, None, 0.5), np.clip(a, None, 0.5))
    lo = rng(26).normal(-1.0, 0.1, (7, 1))
    assert_equal_np(ht.clip(x, ht.array(lo, split=0), 1.0), np.clip(a, lo, 1.0))
    cond = a > 0
    assert_equal_np(ht.where(ht.array(cond, split=split), x, -x), np.where(cond, a, -a))
    assert_equal_np(ht.where(x > 0, x, 0.0), np.where(a > 0, a, 0.0))
    y = ht.array(b, split=0)
    assert_equal_np(ht.isclose(x, y), np.isclose(a, b))
    assert_equal_np(ht.isclose(x, y, rtol=0, atol=1e-9), np.isclose(a, b, rtol=0, atol=1e-9))
    assert ht.allclose(x, y) == bool(np.allclose(a, b))
    assert not ht.allclose(x, y + 1)
    frac, whole = ht.modf(x)
    nfrac, nwhole = np.modf(a)
    assert_equal_np(frac, nfrac)
    assert_equal_np(whole, nwhole)


@pytest.mark.parametrize("split", [None, 0])
def test_nan_and_inf_predicates(comm, split):
    a = np.array([1.0, np.nan, np.inf, -np.inf, 0.0, -2.0, np.nan])
    x = ht.array(a, split=split)
    assert_equal_np(ht.isnan(x), np.isnan(a))
    assert_equal_np(ht.isinf(x), np.isinf(a))
    assert_equal_np(ht.isfinite(x), np.isfinite(a))
    assert_equal_np(ht.isposinf(x), np.isposinf(a))
    assert_equal_np(ht.isneginf(x), np.isneginf(a))
    assert_equal_np(ht.nan_to_num(x), np.nan_to_num(a).astype(np.float64), rtol=0, atol=0)
    assert_equal_np(ht.minimum(x, 0.0), np.minimum(a, 0.0))
    assert_equal_np(ht.fmax(x, 0.0), np.fmax(a, 0.0))


def test_complex_functions(comm):
    a = rng(27).normal(size=(5, 3)) + 1j * rng(28).normal(size=(5, 3))
    for split in splits_of(2):
        x = ht.array(a, split=split)
        assert x.dtype is ht.complex128
        assert_equal_np(ht.real(x), a.real)
        assert_equal_np(ht.imag(x), a.imag)
        assert_equal_np(ht.conj(x), np.conj(a))
        assert_equal_np(ht.angle(x), np.angle(a))
        assert_equal_np(ht.abs(x), np.abs(a))
        assert_equal_np(x * x, a * a)


def test_dtype_promotion_of_results(comm):
    i32 = ht.arange(5, split=0)
    f64 = ht.ones(5, dtype=ht.float64, split=0)
    u8 = ht.ones(5, dtype=ht.uint8)
    b = ht.ones(5, dtype=ht.bool)
    assert (i32 + f64).dtype is ht.float64
    assert (i32 + u8).dtype is ht.int32
    assert (b + b).dtype is ht.bool
    assert (u8 + 1).dtype is ht.uint8
    assert (i32 * 1.0).dtype is ht.float32
    assert (i32 < 2).dtype is ht.bool
    assert ht.exp(i32).dtype is ht.float32
    assert (ht.ones(3, dtype=ht.float16) + ht.ones(3, dtype=ht.bfloat16)).dtype is ht.float32


def test_binary_with_different_splits_does_not_gather(comm):
    a = rng(29).random((240, 30))
    x = ht.array(a, split=0)
    y = ht.array(a, split=1)
    # y is moved to x's layout: each rank receives at most its share of y
    received_within_share(lambda: x + y, a.nbytes, comm.size)


def test_bad_operands_raise(comm):
    x = ht.zeros((4, 3), split=0)
    with pytest.raises(ValueError):
        x + ht.zeros((5, 3), split=0)
    with pytest.raises(TypeError):
        x + "a"
    with pytest.raises(TypeError):
        ht.exp("a")


def test_isreal_iscomplex(comm):
    a = np.array([1 + 0j, 2 + 1j, -3j, 4 + 0j, 0j])
    r = np.arange(5.0)
    for split in (None, 0):
        assert_equal_np(ht.isreal(ht.array(a, split=split)), np.isreal(a))
        assert_equal_np(ht.iscomplex(ht.array(a, split=split)), np.iscomplex(a))
        assert_equal_np(ht.isreal(ht.array(r, split=split)), np.isreal(r))
        assert_equal_np(ht.iscomplex(ht.array(r, split=split)), np.iscomplex(r))
