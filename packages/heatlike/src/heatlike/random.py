"""Counter-based random numbers: every element is a hash of (seed, call counter, global index), so
a seed gives the same array whatever the number of ranks or the split."""

from __future__ import annotations

import math
import time

import torch

from . import types
from .communication import sanitize_comm
from .devices import sanitize_device
from .dndarray import DNDarray
from .factories import _local_block, sanitize_shape, sanitize_split

__all__ = [
    "get_state",
    "normal",
    "permutation",
    "rand",
    "randint",
    "randn",
    "random",
    "random_integer",
    "random_sample",
    "randperm",
    "ranf",
    "sample",
    "seed",
    "set_state",
    "standard_normal",
    "uniform",
]


def _signed(c: int) -> int:
    return c - (1 << 64) if c >= 1 << 63 else c


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_MIX1 = _signed(0xBF58476D1CE4E5B9)
_MIX2 = _signed(0x94D049BB133111EB)
_state = {"seed": 0, "counter": 0}


def _srl(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 bits."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def _mix(z: torch.Tensor) -> torch.Tensor:
    """SplitMix64's finaliser (a bijection on 64-bit words with strong avalanche)."""
    z = (z ^ _srl(z, 30)) * _MIX1
    z = (z ^ _srl(z, 27)) * _MIX2
    return z ^ _srl(z, 31)


def _bits(gidx: torch.Tensor, stream: int) -> torch.Tensor:
    key = _mix(torch.tensor(_state["seed"] * 2 + stream, dtype=torch.int64) * _GOLDEN + 1)
    z = (gidx + _state["counter"]) * _GOLDEN + key
    return _mix(_mix(z) ^ key)


def _unit(gidx: torch.Tensor, stream: int = 0) -> torch.Tensor:
    """Uniform float64 in [0, 1) with 53 random bits."""
    return _srl(_bits(gidx, stream), 11).double() * (2.0**-53)


def _global_indices(shape, split, comm):
    """Row-major global index of each element of this rank's block."""
    local, offset, counts = _local_block(shape, split, comm)
    idx = torch.zeros(local, dtype=torch.int64)
    stride = 1
    for d in reversed(range(len(shape))):
        start = offset if d == split else 0
        ar = torch.arange(start, start + local[d], dtype=torch.int64) * stride
        idx = idx + ar.reshape([-1 if i == d else 1 for i in range(len(shape))])
        stride *= shape[d]
    return idx, counts


def _generate(shape, split, device, comm, make, dtype) -> DNDarray:
    shape = sanitize_shape(shape)
    split = sanitize_split(split, len(shape))
    device, comm = sanitize_device(device), sanitize_comm(comm)
    gidx, counts = _global_indices(shape, split, comm)
    values = make(gidx).to(dtype).to(device.torch_device)
    _state["counter"] += math.prod(shape)
    return DNDarray._make(values, shape, split, comm, device, counts)


def _shape_args(args):
    if len(args) == 1 and not isinstance(args[0], int):
        return tuple(args[0])
    return tuple(args)


def _float_dtype(dtype) -> torch.dtype:
    t = types.canonical_heat_type(dtype).torch_type()
    if not t.is_floating_point:
        raise ValueError(f"dtype must be a floating type, got {t}")
    return t


def seed(seed: int | None = None) -> None:
    """Set the seed (None: from the clock, agreed on every rank) and reset the counter."""
    if seed is None:
        seed = sanitize_comm(None).handle.bcast_obj(time.time_ns() % (1 << 62), 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    _state["seed"], _state["counter"] = int(seed), 0


def get_state() -> tuple:
    """(``"Threefry"``-style name, seed, counter, 0, 0.0), as Heat's get_state."""
    return ("Counter", _state["seed"], _state["counter"], 0, 0.0)


def set_state(state: tuple) -> None:
    """Restore a state from ``get_state``."""
    if not isinstance(state, tuple) or len(state) < 3:
        raise ValueError("state must be a tuple from get_state()")
    _state["seed"], _state["counter"] = int(state[1]), int(state[2])


def rand(*args, dtype=types.float32, split=None, device=None, comm=None) -> DNDarray:
    """Uniform samples in [0, 1) of shape ``args`` (float32 unless ``dtype``)."""
    shape = _shape_args(args) if args else (1,)
    return _generate(shape, split, device, comm, _unit, _float_dtype(dtype))


def random(shape=None, dtype=types.float32, split=None, device=None, comm=None) -> DNDarray:
    """Uniform samples in [0, 1) of ``shape``."""
    return rand(
        *(() if shape is None else sanitize_shape(shape)),
        dtype=dtype,
        split=split,
        device=device,
        comm=comm,
    )


random_sample = ranf = sample = random


def _normal(gidx: torch.Tensor) -> torch.Tensor:
    u1 = 1.0 - _unit(gidx, 0)  # (0, 1], so the log is finite
    u2 = _unit(gidx, 1)
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)


def randn(*args, dtype=types.float32, split=None, device=None, comm=None) -> DNDarray:
    """Standard normal samples of shape ``args`` (Box-Muller on two counter streams)."""
    shape = _shape_args(args) if args else (1,)
    return _generate(shape, split, device, comm, _normal, _float_dtype(dtype))


def standard_normal(shape=None, dtype=types.float32, split=None, device=None, comm=None):
    """Standard normal samples of ``shape`` given as one tuple (``randn``'s numbers); None gives
    one sample of shape (1,)."""
    return randn(
        *(() if shape is None else sanitize_shape(shape)),
        dtype=dtype,
        split=split,
        device=device,
        comm=comm,
    )


def normal(mean=0.0, std=1.0, shape=None, dtype=types.float32, split=None, device=None, comm=None):
    """Normal samples with ``mean`` and ``std`` (scalars)."""
    if std < 0:
        raise ValueError(f"std must be non-negative, got {std}")
    shape = (1,) if shape is None else sanitize_shape(shape)
    return _generate(
        shape, split, device, comm, lambda g: mean + std * _normal(g), _float_dtype(dtype)
    )


def uniform(low=0.0, high=1.0, size=None, dtype=types.float32, split=None, device=None, comm=None):
    """Uniform samples in [low, high)."""
    shape = (1,) if size is None else sanitize_shape(size)
    return _generate(
        shape, split, device, comm, lambda g: low + (high - low) * _unit(g), _float_dtype(dtype)
    )


def randint(low, high=None, size=None, dtype=types.int32, split=None, device=None, comm=None):
    """Integers uniform in [low, high) (``[0, low)`` if ``high`` is None); int32 unless
    ``dtype``, as in Heat."""
    if high is None:
        low, high = 0, low
    if not (isinstance(low, int) and isinstance(high, int)):
        raise TypeError("low and high must be ints")
    if high <= low:
        raise ValueError(f"high must be greater than low, got low={low}, high={high}")
    shape = (1,) if size is None else sanitize_shape(size)
    target = types.canonical_heat_type(dtype).torch_type()
    span = high - low

    def make(g):
        return low + torch.floor(_unit(g) * span).long().clamp_max(span - 1)

    return _generate(shape, split, device, comm, make, target)


random_integer = randint


def randperm(n: int, dtype=types.int64, split=None, device=None, comm=None) -> DNDarray:
    """A random permutation of ``range(n)``: random 64-bit keys per index, sorted (a sample
    sort when split), so it does not depend on the number of ranks."""
    from .sorting import argsort

    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    keys = _generate((n,), split, device, comm, lambda g: _bits(g, 2), torch.int64)
    perm = argsort(keys, 0)
    return perm.astype(dtype, copy=False)


def permutation(x, split=None):
    """A permuted ``range(x)`` for an int, or ``x`` with its first axis permuted."""
    if isinstance(x, int):
        return randperm(x, split=split)
    if not isinstance(x, DNDarray):
        raise TypeError(f"x must be an int or a DNDarray, got {type(x).__name__}")
    from .indexing import take

    perm = randperm(x.gshape[0], comm=x.comm)
    return take(x, perm.larray, 0)
