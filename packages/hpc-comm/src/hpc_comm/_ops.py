"""Reduction operators shared by every backend, and their meaning on each dtype family."""

from __future__ import annotations

import enum


class ReduceOp(enum.Enum):
    """Element-wise reduction applied across ranks.

    On ``bool`` tensors SUM and MAX and BOR mean logical *or*, PROD and MIN and BAND mean logical
    *and*, as ``numpy.add.reduce`` and friends do on booleans. BAND and BOR need an integer or
    boolean dtype; MIN and MAX are undefined on complex dtypes.
    """

    SUM = "sum"
    PROD = "prod"
    MIN = "min"
    MAX = "max"
    BAND = "band"
    BOR = "bor"


SUM = ReduceOp.SUM
PROD = ReduceOp.PROD
MIN = ReduceOp.MIN
MAX = ReduceOp.MAX
BAND = ReduceOp.BAND
BOR = ReduceOp.BOR

_BOOL_EQUIVALENT = {
    ReduceOp.SUM: ReduceOp.BOR,
    ReduceOp.MAX: ReduceOp.BOR,
    ReduceOp.BOR: ReduceOp.BOR,
    ReduceOp.PROD: ReduceOp.BAND,
    ReduceOp.MIN: ReduceOp.BAND,
    ReduceOp.BAND: ReduceOp.BAND,
}


def as_op(op: ReduceOp | str) -> ReduceOp:
    """Accept a ReduceOp or its name (``"sum"``, ``"MAX"``); raise ValueError naming ``op``."""
    if isinstance(op, ReduceOp):
        return op
    if isinstance(op, str):
        try:
            return ReduceOp(op.lower())
        except ValueError:
            pass
    names = ", ".join(o.name for o in ReduceOp)
    raise ValueError(f"op must be one of {names}, got {op!r}")


def effective_op(op: ReduceOp, dtype) -> ReduceOp:
    """The operator actually applied for ``dtype``; raise TypeError where it is undefined."""
    if (dtype.is_floating_point and dtype.itemsize == 1) or (
        dtype.is_complex and dtype.itemsize == 4
    ):
        raise TypeError(
            f"reductions are not supported for dtype {dtype} (torch has no "
            "arithmetic on it); it can only be moved (bcast, gather, send)"
        )
    if dtype.is_complex and op in (ReduceOp.MIN, ReduceOp.MAX, ReduceOp.BAND, ReduceOp.BOR):
        raise TypeError(f"op={op.name} is not defined for complex dtype {dtype}")
    if dtype.is_floating_point and op in (ReduceOp.BAND, ReduceOp.BOR):
        raise TypeError(f"op={op.name} needs an integer or bool tensor, got dtype {dtype}")
    if str(dtype) == "torch.bool":
        return _BOOL_EQUIVALENT[op]
    return op


def torch_apply(op: ReduceOp, a, b):
    """Combine tensors ``a`` and ``b`` into ``b`` with ``op`` (used by custom reductions)."""
    import torch

    if op is ReduceOp.SUM:
        b.add_(a)
    elif op is ReduceOp.PROD:
        b.mul_(a)
    elif op is ReduceOp.MIN:
        torch.minimum(a, b, out=b)
    elif op is ReduceOp.MAX:
        torch.maximum(a, b, out=b)
    elif op is ReduceOp.BAND:
        b.bitwise_and_(a)
    else:
        b.bitwise_or_(a)
    return b
