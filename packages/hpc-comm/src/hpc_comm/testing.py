"""Helpers for tests of distributed code: per-rank data every rank can rebuild, NumPy references.

Every rank can generate every other rank's input (``rank_tensor(r, ...)`` is deterministic), so
each rank computes the expected result of a collective on its own, with NumPy, and compares.
"""

from __future__ import annotations

import numpy as np
import torch

from ._ops import ReduceOp
from .communicator import _dtype_table, movement_only_dtypes


def all_dtypes() -> list[torch.dtype]:
    """Every dtype hpc-comm supports on CPU."""
    return list(_dtype_table())


def reducible_dtypes() -> list[torch.dtype]:
    """Dtypes that reductions accept (all but float8 and complex32)."""
    return [d for d in _dtype_table() if d not in movement_only_dtypes()]


def ops_for(dtype: torch.dtype) -> list[ReduceOp]:
    """The reduction operators defined for ``dtype``."""
    if dtype.is_complex:
        return [ReduceOp.SUM, ReduceOp.PROD]
    if dtype.is_floating_point:
        return [ReduceOp.SUM, ReduceOp.PROD, ReduceOp.MIN, ReduceOp.MAX]
    return list(ReduceOp)


def rank_tensor(
    rank: int, shape, dtype: torch.dtype = torch.float32, seed: int = 0
) -> torch.Tensor:
    """Deterministic data for ``rank``: small half-integers (floats), small integers (ints),
    so sums and products over a few ranks are exact in every dtype, float16 and bfloat16 too."""
    g = torch.Generator().manual_seed(7919 * seed + rank + 1)
    shape = tuple(shape) if not isinstance(shape, int) else (shape,)
    if dtype is torch.bool:
        return torch.rand(shape, generator=g) > 0.5
    signed = (
        dtype.is_floating_point
        or dtype.is_complex
        or dtype in (torch.int8, torch.int16, torch.int32, torch.int64)
    )
    low = -4 if signed else 0
    ints = torch.randint(low, 5, shape, generator=g, dtype=torch.int64)
    if dtype.is_complex:
        imag = torch.randint(low, 5, shape, generator=g, dtype=torch.int64)
        value = torch.complex(ints.double() / 2, imag.double() / 2)
        if dtype is torch.complex32:
            return value.to(torch.complex64).to(torch.complex32)
        return value.to(dtype)
    if dtype.is_floating_point:
        if dtype in movement_only_dtypes():
            return (ints.float() / 2).to(dtype)
        return (ints.double() / 2).to(dtype)
    if dtype in (torch.uint16, torch.uint32, torch.uint64):
        return ints.to(torch.uint8).to(dtype)
    return ints.to(dtype)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A NumPy copy of ``t``, widening the dtypes NumPy lacks (bfloat16, float8, complex32) to
    float64 / complex128 and unsigned ints to int64 or uint64."""
    t = t.detach().cpu()
    if t.dtype is torch.complex32:
        return t.to(torch.complex64).numpy().astype(np.complex128)
    if t.dtype.is_floating_point and t.dtype not in (torch.float32, torch.float64, torch.float16):
        return t.to(torch.float32).numpy().astype(np.float64)
    if t.dtype in (torch.uint16, torch.uint32):
        return t.to(torch.int64).numpy()
    if t.dtype is torch.uint64:
        return t.view(torch.int64).numpy().view(np.uint64)
    return t.numpy().copy()


def numpy_reduce(arrays: list[np.ndarray], op: ReduceOp) -> np.ndarray:
    """The reference of a reduction over ranks, computed by NumPy."""
    stack = np.stack(arrays)
    if stack.dtype == np.bool_:
        if op in (ReduceOp.SUM, ReduceOp.MAX, ReduceOp.BOR):
            return np.logical_or.reduce(stack, axis=0)
        return np.logical_and.reduce(stack, axis=0)
    if op is ReduceOp.SUM:
        return np.sum(stack, axis=0, dtype=stack.dtype)
    if op is ReduceOp.PROD:
        return np.prod(stack, axis=0, dtype=stack.dtype)
    if op is ReduceOp.MIN:
        return np.min(stack, axis=0)
    if op is ReduceOp.MAX:
        return np.max(stack, axis=0)
    if op is ReduceOp.BAND:
        return np.bitwise_and.reduce(stack, axis=0)
    return np.bitwise_or.reduce(stack, axis=0)
