"""Generic element-wise kernels: n-ary ops with NumPy broadcasting across any splits, unary ops."""

from __future__ import annotations

import numbers

import numpy as np
import torch

from ._redistribute import align
from .communication import sanitize_comm
from .devices import sanitize_device
from .dndarray import DNDarray

__all__ = ["assign_out", "local_op", "nary_op", "to_operand"]

_SCALARS = (numbers.Number, np.generic)


def to_operand(obj, ref: DNDarray | None):
    """A DNDarray or a Python scalar (kept as a scalar so promotion treats it as weak)."""
    if isinstance(obj, DNDarray):
        return obj
    if isinstance(obj, bool | int | float | complex):
        return obj
    if isinstance(obj, _SCALARS):
        return obj.item()
    if isinstance(obj, (torch.Tensor, np.ndarray, list, tuple)):
        from .factories import array

        comm = ref.comm if ref is not None else None
        device = ref.device if ref is not None else None
        return array(obj, comm=comm, device=device)
    raise TypeError(f"operand must be a DNDarray, array-like or scalar, got {type(obj).__name__}")


def _choose_layout(operands, out_shape):
    """The split and counts of the result: those of the largest operand that is split along an
    axis it does not broadcast (the first such operand on ties); replicated if there is none."""
    best = None
    for x in operands:
        if not isinstance(x, DNDarray) or x.split is None:
            continue
        lead = len(out_shape) - x.ndim
        if x.gshape[x.split] != out_shape[x.split + lead]:
            continue
        if best is None or x.size > best[0].size:
            best = (x, x.split + lead)
    if best is None:
        return None, None
    return best[1], tuple(best[0].counts)


def broadcast_shape(*shapes) -> tuple:
    """NumPy's broadcast of ``shapes`` (ValueError if they do not broadcast).

    Plain Python: ``torch.broadcast_shapes`` goes through symbolic-shape guards and cost about
    half of a small element-wise operation."""
    ndim = max(len(s) for s in shapes)
    out = [1] * ndim
    for shape in shapes:
        for i, n in enumerate(shape, ndim - len(shape)):
            if n != out[i]:
                if out[i] != 1 and n != 1:
                    raise ValueError(
                        f"operands could not be broadcast together with shapes {shapes}"
                    )
                if out[i] == 1:
                    out[i] = int(n)
    return tuple(out)


def nary_op(fn, *operands, out: DNDarray | None = None, where=None, **kwargs) -> DNDarray:
    """Apply ``fn`` (a torch function of local tensors) to operands of any splits.

    The result takes the layout of its largest operand that is split along a non-broadcast axis;
    each other operand is brought into that layout by ``align`` (one alltoallv at most), so no
    operand is gathered onto one rank.
    """
    ref = next((o for o in operands if isinstance(o, DNDarray)), None)
    if ref is None:
        raise TypeError("at least one operand must be a DNDarray")
    ops = [to_operand(o, ref) for o in operands]
    arrays = [o for o in ops if isinstance(o, DNDarray)]
    _check_same_comm(arrays)
    out_shape = broadcast_shape(*[a.gshape for a in arrays])
    split, counts = _choose_layout(arrays, out_shape)
    local = [align(o, out_shape, split, counts) if isinstance(o, DNDarray) else o for o in ops]
    result = fn(*local, **kwargs)
    if where is not None:
        mask = to_operand(where, ref)
        mask_local = align(mask, out_shape, split, counts) if isinstance(mask, DNDarray) else mask
        base = (
            align(out, out_shape, split, counts).to(result.dtype)
            if out is not None
            else torch.zeros_like(result)
        )
        result = torch.where(torch.as_tensor(mask_local, dtype=torch.bool), result, base)
    wrapped = _wrap(result, out_shape, split, counts, ref)
    return wrapped if out is None else assign_out(out, wrapped)


def _check_same_comm(arrays) -> None:
    sizes = {a.comm.size for a in arrays}
    if len(sizes) > 1:
        raise ValueError("operands must live on the same communicator")


def _wrap(local: torch.Tensor, out_shape, split, counts, ref: DNDarray) -> DNDarray:
    if split is not None and local.shape[split] != counts[ref.comm.rank]:
        raise RuntimeError("internal layout error")  # pragma: no cover
    return DNDarray._make(local, tuple(out_shape), split, ref.comm, ref.device, counts)


def assign_out(out: DNDarray, result: DNDarray) -> DNDarray:
    """Write ``result`` into ``out`` in ``out``'s layout and dtype (``out=`` arguments)."""
    if not isinstance(out, DNDarray):
        raise TypeError(f"out must be a DNDarray, got {type(out).__name__}")
    if tuple(out.gshape) != broadcast_shape(out.gshape, result.gshape):
        raise ValueError(f"out has shape {out.gshape}, the result has shape {result.gshape}")
    local = align(result, out.gshape, out.split, out.counts if out.split is not None else None)
    out.larray.copy_(local)
    return out


def local_op(fn, x, out: DNDarray | None = None, **kwargs) -> DNDarray:
    """Apply ``fn`` to the local tensor of ``x`` (no communication); same layout."""
    if not isinstance(x, DNDarray):
        raise TypeError(f"x must be a DNDarray, got {type(x).__name__}")
    result = fn(x.larray, **kwargs)
    wrapped = DNDarray._make(result, x.gshape, x.split, x.comm, x.device, x._counts)
    return wrapped if out is None else assign_out(out, wrapped)


def new_like_layout(x: DNDarray, local: torch.Tensor, gshape=None, split="same", counts="same"):
    """A DNDarray on ``x``'s communicator and device."""
    split = x.split if split == "same" else split
    counts = x._counts if counts == "same" else counts
    return DNDarray._make(
        local, tuple(x.gshape if gshape is None else gshape), split, x.comm, x.device, counts
    )


def replicated(local: torch.Tensor, comm=None, device=None) -> DNDarray:
    """A replicated DNDarray of a tensor every rank holds."""
    comm, device = sanitize_comm(comm), sanitize_device(device)
    return DNDarray._make(local, tuple(local.shape), None, comm, device)
