"""Block movement for the distributed linear algebra: a ring pass of every rank's block and a
check of argument types shared by the linalg functions."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from .. import types
from ..dndarray import DNDarray

_RING_TAG = 4101


def check_array(x, name: str) -> DNDarray:
    """``x`` if it is a DNDarray, else a TypeError naming the argument (raised on every rank)."""
    if not isinstance(x, DNDarray):
        raise TypeError(f"{name} must be a DNDarray, got {type(x).__name__}")
    return x


def check_float(x: DNDarray, name: str) -> DNDarray:
    """``x`` if its dtype is float32 or float64, else a TypeError naming the argument."""
    if x.larray.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype.__name__}")
    return x


def check_ndim(x: DNDarray, ndim: int, name: str) -> DNDarray:
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {x.gshape}")
    return x


def promoted(a: DNDarray, b: DNDarray) -> torch.dtype:
    """The torch dtype of a product of ``a`` and ``b`` (NumPy/Heat promotion)."""
    return types.promote_types(a.dtype, b.dtype).torch_type()


def block_shape(x: DNDarray, owner: int) -> list[int]:
    """The local shape of rank ``owner``'s block of ``x`` (known on every rank)."""
    shape = list(x.gshape)
    if x.split is not None:
        shape[x.split] = x.counts[owner]
    return shape


def ring(local: torch.Tensor, shapes: Sequence[Sequence[int]], comm) -> Iterator[tuple]:
    """Every rank's block, one at a time: yields ``(owner, block)``, starting with this rank's own.

    Blocks travel around the ring (each rank receives from rank + 1 and sends to rank - 1), and the
    next block is already in flight while the caller computes with the current one, so a rank holds
    at most two blocks at any moment and never the whole distributed operand. ``shapes[r]`` is rank
    r's block shape.
    """
    size, rank = comm.size, comm.rank
    current = local.contiguous()
    for step in range(size):
        owner = (rank + step) % size
        pending = ()
        if step + 1 < size:
            incoming = torch.empty(
                shapes[(owner + 1) % size], dtype=current.dtype, device=current.device
            )
            pending = (
                comm.handle.irecv(incoming, source=(rank + 1) % size, tag=_RING_TAG),
                comm.handle.isend(current, dest=(rank - 1) % size, tag=_RING_TAG),
            )
        yield owner, current
        for request in pending:
            request.wait()
        if pending:
            current = incoming
